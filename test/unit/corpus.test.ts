// The diagnosis against real vLLM logs from public issues (test/fixtures/vllm-logs, each file citing its
// source): recall per class, and no alarm on healthy start-ups.
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
      const lines = text.filter((l) => !/^# (source|class|note): /.test(l)).map((l) => l.replace(/^> ?/, ''));
      out.push({ file: `${cls.name}/${f}`, source, expected, lines });
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

test('recall on the real-log corpus, per class; no false alarm on healthy start-ups', (t) => {
  const byClass = new Map<string, { right: number; all: number; missed: string[] }>();
  for (const c of CASES) {
    const got = diagnose(input(c.lines));
    const ok = c.expected === 'none' ? got.code === 'unknown' : got.code === c.expected;
    const row = byClass.get(c.expected) ?? { right: 0, all: 0, missed: [] };
    row.all++;
    if (ok) row.right++;
    else row.missed.push(`${c.file} -> ${got.code}`);
    byClass.set(c.expected, row);
  }
  let right = 0;
  let all = 0;
  for (const [cls, r] of [...byClass].sort()) {
    t.log(`${cls.padEnd(16)} ${r.right}/${r.all}${r.missed.length ? `  missed: ${r.missed.join(', ')}` : ''}`);
    if (cls === 'none') continue;
    right += r.right;
    all += r.all;
  }
  t.log(`recall: ${right}/${all} = ${((100 * right) / all).toFixed(0)}%`);
  t.true(right / all >= 0.95, `recall ${right}/${all}`);
  const healthy = byClass.get('none');
  if (healthy) t.is(healthy.right, healthy.all, 'a healthy start-up is never diagnosed as a failure');
});

test('healthy start-ups: no line is taken for the engine dying', (t) => {
  for (const c of CASES.filter((x) => x.expected === 'none')) {
    const fatal = c.lines.map(bareLine).filter(isFatalLine);
    t.deepEqual(fatal, [], c.file);
  }
});
