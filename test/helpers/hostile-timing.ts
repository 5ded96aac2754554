// The hostile-input suite's clock, run as its own process with the daemon's V8 flags
// (test/unit/hostile.test.ts starts it): every pattern that container output, the kernel's log, a
// registry's error or the model's /metrics meets, timed on inputs built to make it backtrack.
// Prints {slowest, over} as JSON.
//
// The patterns: each row of the tables (the diagnosis, the load phases), the patterns the modules
// build from parts, and every regular expression literal in the files that read such text, found
// in their source, so that a pattern added there later is timed without anyone listing it here.
import { readFileSync } from 'node:fs';
import ts from 'typescript';
import type { FailureInput } from '../../src/core/model/diagnosis.js';
import { diagnose } from '../../src/core/rules/diagnose.js';
import { RULES } from '../../src/core/rules/diagnose-rules.js';
import { exitTail } from '../../src/core/rules/exit-tail.js';
import { kernelFinding } from '../../src/core/rules/kernel.js';
import { PHASE_TABLE, recogniseLoadLine } from '../../src/core/rules/load-phases.js';
import { bareLine, isFatalLine, LOG_PATTERNS, statsLine, unknownEnv } from '../../src/core/rules/log-lines.js';
import { classifyPullError, PULL_PATTERNS } from '../../src/core/rules/pull-text.js';
import { parseExposition } from '../../src/health/prom-text.js';
import { wantsKernel } from '../../src/systemd/kernel-log.js';
import { attacksFor, timeSubjects, type Attack, type Subject, type Timing } from './redos.js';

/** The files whose patterns read text from outside: the container, the kernel's log, a registry, /metrics. */
export const HOSTILE_TEXT_FILES = [
  'src/core/rules/diagnose-rules.ts',
  'src/core/rules/diagnose.ts',
  'src/core/rules/kernel.ts',
  'src/core/rules/load-phases.ts',
  'src/core/rules/log-lines.ts',
  'src/core/rules/exit-tail.ts',
  'src/core/rules/pull-text.ts',
  'src/core/machine/moves.ts',
  'src/core/machine/engine.ts',
  'src/systemd/kernel-log.ts',
  'src/health/prom-text.ts',
  'src/health/probe.ts',
  'src/runtime/effects/engine-log.ts',
];

const ROOT = new URL('../../../', import.meta.url);

/** Every regular expression literal in a source file. */
function literalsIn(file: string): RegExp[] {
  const text = readFileSync(new URL(file, ROOT), 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: RegExp[] = [];
  const visit = (n: ts.Node): void => {
    if (ts.isRegularExpressionLiteral(n)) {
      const m = /^\/(.*)\/([a-z]*)$/s.exec(n.text);
      if (m) out.push(new RegExp(m[1] ?? '', m[2]));
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

/** One pattern as a subject: searched the way the code searches it (all matches when global). */
function patternSubject(name: string, re: RegExp): Subject {
  const run = re.global ? (s: string) => s.replace(re, '') : (s: string) => re.exec(s);
  return { name: `${name}: ${String(re).slice(0, 100)}`, run, attacks: attacksFor(re) };
}

const named = (name: string, list: readonly RegExp[]): Array<[string, RegExp]> =>
  list.map((re, i) => [list.length > 1 ? `${name}[${i}]` : name, re]);

export function subjects(): Subject[] {
  const literals = (f: string) => named(f, literalsIn(f));
  const groups = {
    diagnosis: [
      ...RULES.map((r): [string, RegExp] => [`RULES ${r.code}`, r.test]),
      ...literals(HOSTILE_TEXT_FILES[0]!),
    ],
    kernel: [...literals('src/core/rules/kernel.ts'), ...literals('src/systemd/kernel-log.ts')],
    phases: [
      ...PHASE_TABLE.map((r): [string, RegExp] => [`PHASE_TABLE ${r.phase}`, r.re]),
      ...literals('src/core/rules/load-phases.ts'),
    ],
    lines: [
      ...Object.entries(LOG_PATTERNS).map(([k, re]): [string, RegExp] => [`log-lines ${k}`, re]),
      ...literals('src/core/rules/log-lines.ts'),
      ...literals('src/core/rules/exit-tail.ts'),
      ...literals('src/runtime/effects/engine-log.ts'),
    ],
    pull: [
      ...Object.entries(PULL_PATTERNS).map(([k, re]): [string, RegExp] => [`pull-text ${k}`, re]),
      ...literals('src/core/rules/pull-text.ts'),
    ],
    other: [
      ...literals('src/core/rules/diagnose.ts'),
      ...literals('src/core/machine/moves.ts'),
      ...literals('src/core/machine/engine.ts'),
    ],
    http: [...literals('src/health/prom-text.ts'), ...literals('src/health/probe.ts')],
  };
  const each = Object.fromEntries(
    Object.entries(groups).map(([k, list]) => [k, list.map(([name, re]) => patternSubject(name, re))]),
  ) as Record<keyof typeof groups, Subject[]>;
  const attacksOf = (...ks: Array<keyof typeof groups>): Attack[] => [
    ...new Map(ks.flatMap((k) => each[k].flatMap((s) => s.attacks)).map((a) => [`${a.head}\0${a.unit}`, a])).values(),
  ];
  const f: FailureInput = {
    ...{ exitCode: 1, oom: false, lines: [], utilization: 0.9, maxModelLen: 8192, port: 8000 },
    ...{ encodingsDir: '/e', modelId: 'm', image: 'i' },
  };
  // The functions the daemon calls, end to end, on the attacks of the patterns they use.
  const fns: Array<[string, (s: string) => unknown, Attack[]]> = [
    ['diagnose()', (s) => diagnose({ ...f, lines: [s], kernel: [s] }), attacksOf('diagnosis', 'kernel', 'lines')],
    ['kernelFinding()', (s) => kernelFinding([s], f), attacksOf('kernel')],
    ['wantsKernel()', (s) => wantsKernel(1, false, s), attacksOf('kernel')],
    ['exitTail()', (s) => exitTail([s, s]), attacksOf('lines')],
    ['bareLine()', (s) => bareLine(s), attacksOf('lines')],
    ['recogniseLoadLine()', (s) => recogniseLoadLine(s), attacksOf('phases', 'lines')],
    [
      'statsLine() isFatalLine() unknownEnv()',
      (s) => [statsLine(s), isFatalLine(s), unknownEnv(s)],
      attacksOf('lines'),
    ],
    ['classifyPullError()', (s) => classifyPullError(s), attacksOf('pull')],
    ['parseExposition()', (s) => parseExposition(`vllm:num_requests_running{a="b"} ${s}\nx ${s}`), attacksOf('http')],
  ];
  // A pattern both in a table and written out in its file is timed once.
  const patterns = [
    ...new Map(
      Object.values(groups)
        .flat()
        .map(([name, re]) => [String(re), [name, re] as const]),
    ).values(),
  ];
  return [
    ...patterns.map(([name, re]) => patternSubject(name, re)),
    ...fns.map(([name, run, attacks]) => ({ name, run, attacks })),
  ];
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const size = Number(process.argv[2] ?? 1 << 20);
  const limitMs = Number(process.argv[3] ?? 50);
  // Each figure over the limit as it comes, on stderr: a run killed for its time still says which.
  const onOver = (t: Timing) =>
    process.stderr.write(`${t.ms.toFixed(1)} ms on ${t.size} characters: ${t.name}: ${t.attack}\n`);
  const r = timeSubjects(subjects(), { size, screen: Math.min(size, 64 << 10), limitMs, onOver });
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
