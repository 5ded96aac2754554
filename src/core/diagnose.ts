// Why the model container died or would not start, from its exit, its log and the kernel's: a code, a summary, a fix.
import { RULES, type Rule } from './diagnose-rules.js';
import { kernelFinding } from './kernel.js';
import { bareLine, quoteLine } from './log-lines.js';
import type { WaitReason } from './wait.js';

export type DiagnosisCode =
  | 'encodings'
  | 'gpu-memory'
  | 'kv-cache'
  | 'cuda-oom'
  | 'oom-killed'
  | 'host-oom'
  | 'gpu-xid'
  | 'hf-auth'
  | 'model-not-found'
  | 'unsupported-gpu'
  | 'port-in-use'
  | 'image-missing'
  | 'gpu-runtime'
  | 'bad-args'
  | 'engine-dead'
  | 'engine-stalled'
  | 'load-stalled'
  | 'unknown';

export interface Diagnosis {
  /** Stable: scripts, the journal's DIAGNOSIS field and D-Bus carry it. */
  code: DiagnosisCode;
  /** What happened, in one line. */
  summary: string;
  /** What to do about it. */
  remedy: string;
  /**
   * Set when restarting cannot help: the supervisor waits for this instead, and starts again at
   * once when it changes. Unset: restart with backoff.
   */
  waitFor?: WaitReason;
}

export interface FailureInput {
  exitCode: number | null;
  oom: boolean;
  /** The last lines of the container's log, or the message of a refused `docker start`. */
  lines: readonly string[];
  /** The kernel's messages around the exit (journalctl -k), when they were read. */
  kernel?: readonly string[];
  /** Settings the remedies quote. */
  utilization: number;
  maxModelLen: number;
  port: number;
  encodingsDir: string;
  modelId: string;
  image: string;
}

/** A utilization that fits `free` of `total` with a little room, floored to hundredths; undefined below 0.05. */
export function fittingUtilization(freeGiB: number, totalGiB: number): number | undefined {
  if (!(totalGiB > 0)) return undefined;
  const u = Math.floor(((freeGiB - 0.5) / totalGiB) * 100) / 100;
  return u >= 0.05 ? Math.min(u, 0.99) : undefined;
}

export type Found = Diagnosis & { evidence?: string };

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
