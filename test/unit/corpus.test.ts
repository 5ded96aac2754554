// The diagnosis against real vLLM logs from public issues (test/fixtures/vllm-logs, each file citing its
// source): every file gets its class's code (healthy ones none), and recall is reported apart for the
// files the rules were written from and for the held-out ones no rule was written from.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { diagnose } from '../../src/core/rules/diagnose.js';
import type { DiagnosisCode } from '../../src/core/model/diagnosis.js';
import { bareLine, isFatalLine } from '../../src/core/rules/log-lines.js';

const DIR = new URL('../../../test/fixtures/vllm-logs/', import.meta.url).pathname;

/** Folder -> the code the diagnosis must give (healthy: none at all). */
const EXPECTED: Record<string, DiagnosisCode | 'none'> = {
  'gpu-memory': 'gpu-memory',
  'kv-cache': 'kv-cache',
  'cuda-oom': 'cuda-oom',
  'hf-auth': 'hf-auth',
  'model-not-found': 'model-not-found',
  encodings: 'encodings',
  'engine-dead': 'engine-dead',
  'unsupported-gpu': 'unsupported-gpu',
  'bad-args': 'bad-args',
  'port-in-use': 'port-in-use',
  healthy: 'none',
};

interface Case {
  file: string;
  source: string;
  expected: DiagnosisCode | 'none';
  /** `held-out`: no rule was written from it (`# set: held-out`); else the rules were written from it. */
  set: 'rules' | 'held-out';
  lines: string[];
}

/**
 * A fixture: `# source:`, `# class:`, `# note:` lines, then the log as the issue shows it. Lines
 * quoted in the issue with Markdown's `> ` lose that marker (it is GitHub's, not the log's).
 */
function load(): Case[] {
  const out: Case[] = [];
  for (const cls of readdirSync(DIR, { withFileTypes: true })) {
    if (!cls.isDirectory()) continue;
    const expected = EXPECTED[cls.name];
    if (!expected) throw new Error(`test/fixtures/vllm-logs/${cls.name}: a class with no expected code`);
    for (const f of readdirSync(join(DIR, cls.name)).filter((n) => n.endsWith('.log'))) {
      const text = readFileSync(join(DIR, cls.name, f), 'utf8').split('\n');
      const source = /^# source: (\S+)/.exec(text[0] ?? '')?.[1];
      if (!source) throw new Error(`${cls.name}/${f}: the first line must be "# source: URL"`);
      const set = text.some((l) => l.startsWith('# set: held-out')) ? 'held-out' : 'rules';
      const lines = text.filter((l) => !/^# (source|class|note|set): /.test(l)).map((l) => l.replace(/^> ?/, ''));
      out.push({ file: `${cls.name}/${f}`, source, expected, set, lines });
    }
  }
  return out;
}

const CASES = load();
const input = (lines: string[]) => ({
  exitCode: 1,
  oom: false,
  lines,
  utilization: 0.85,
  maxModelLen: 131072,
  port: 8000,
  encodingsDir: '/vllm/encodings',
  modelId: 'openai/gpt-oss-120b',
  image: 'nvcr.io/nvidia/vllm:25.09-py3',
});

test('every fixture cites its source', (t) => {
  t.true(CASES.length >= 30, `${CASES.length} fixtures`);
  for (const c of CASES) t.regex(c.source, /^https:\/\//, c.file);
});

const codeOf = (c: Case) => {
  const got = diagnose(input(c.lines)).code;
  return got === 'unknown' && c.expected === 'none' ? 'none' : got;
};

for (const c of CASES) {
  test(`${c.file} -> ${c.expected}`, (t) => {
    t.is(codeOf(c), c.expected);
  });
}

test('recall, apart for the files the rules were written from and the held-out ones', (t) => {
  for (const set of ['rules', 'held-out'] as const) {
    const failures = CASES.filter((c) => c.set === set && c.expected !== 'none');
    const healthy = CASES.filter((c) => c.set === set && c.expected === 'none');
    const right = failures.filter((c) => codeOf(c) === c.expected).length;
    const alarms = healthy.filter((c) => codeOf(c) !== 'none').length;
    t.log(`${set}: ${right} of ${failures.length} failures recognised; ${alarms} of ${healthy.length} healthy alarmed`);
  }
  // The held-out set must not shrink by accident (SOURCES.md: 15 failures and 9 healthy start-ups).
  const held = CASES.filter((c) => c.set === 'held-out');
  t.is(held.filter((c) => c.expected !== 'none').length, 15);
  t.is(held.filter((c) => c.expected === 'none').length, 9);
});

test('healthy start-ups: no line is taken for the engine dying', (t) => {
  for (const c of CASES.filter((x) => x.expected === 'none')) {
    const fatal = c.lines.map(bareLine).filter(isFatalLine);
    t.deepEqual(fatal, [], c.file);
  }
});
