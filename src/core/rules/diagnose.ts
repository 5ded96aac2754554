// Why the model container died or would not start, from its exit, its log and the kernel's: a code, a summary, a fix.
import type { DiagnosisCode, FailureInput, Found } from '../model/diagnosis.js';
import { RULES, type Rule } from './diagnose-rules.js';
import { kernelFinding } from './kernel.js';
import { bareLine, quoteLine } from './log-lines.js';

/** The last line of `lines` that `rule` recognises, made into its diagnosis. */
function lastMatch(rule: Rule, lines: readonly string[], f: FailureInput): Found | undefined {
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i] ?? '';
    const m = line.match(rule.test);
    if (m) return { code: rule.code, ...rule.make(m, f), evidence: quoteLine(line) };
  }
  return undefined;
}

/** Codes that say what broke, not only that something did: a root cause found anywhere in the tail wins over them. */
const SYMPTOMS: ReadonlySet<DiagnosisCode> = new Set(['cuda-oom', 'engine-dead']);

/**
 * Classifies a failure. The root cause may be anywhere in the tail: vLLM prints it in the engine
 * core's traceback, then `RuntimeError: Engine core initialization failed. See root cause above`
 * (once per worker), then shutdown noise. So rules are tried in order of how much they explain,
 * each over the whole tail (its last match quoted); the kernel's log explains what the container's
 * could not (an OOM kill, an Xid).
 */
export function diagnose(f: FailureInput): Found {
  const lines = f.lines.map(bareLine);
  let symptom: Found | undefined;
  for (const r of RULES) {
    const d = lastMatch(r, lines, f);
    if (!d) continue;
    if (!SYMPTOMS.has(d.code)) return d;
    symptom ??= d;
  }
  const kernel = f.kernel?.length ? kernelFinding(f.kernel, f) : undefined;
  if (kernel) return kernel;
  if (symptom) return symptom;
  if (f.oom) {
    return {
      code: 'oom-killed',
      summary: 'the kernel killed the container for memory (OOMKilled)',
      remedy:
        `lower model.maxModelLen (now ${f.maxModelLen}) or model.gpuMemoryUtilization (now ${f.utilization}); ` +
        `on the GB10 CPU and GPU share memory, so also stop other large processes`,
    };
  }
  const code = f.exitCode === null ? 'removed' : `exit ${f.exitCode}`;
  return {
    code: 'unknown',
    summary: `the container failed (${code}) for a reason not recognised`,
    remedy: 'read its log: `docker logs --tail 100 <container>`',
  };
}
