// How soon the supervisor reacts to files (figures, not pass/fail; these left the tests as wall-clock
// limits): complete tiktoken files -> the start decided, a burst of config saves -> reloads, and how
// long hostile configs take to be refused.
import { mkdtemp, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadConfig, parseConfig } from '../src/config/load.js';
import { readConfigIsolated } from '../src/reader/isolated.js';
import { cleanup, setup } from '../test/helpers/scenario.js';
import { genuineEncoding } from '../test/helpers/tiktoken.js';
import { tmpdir } from 'node:os';
import { printTable, type Row } from './report.js';

const TRIALS = Number(process.env['BENCH_TRIALS'] ?? 5);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/** The tiktoken files put in place (renamed, whole) -> the supervisor's decision to start, from its log. */
async function encodingsToStart(): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < TRIALS; i++) {
    const s = await setup('bench-enc', {}, { encodings: false });
    try {
      await s.daemon.waitFor((r) => r.event === 'waiting', 15_000);
      const mark = s.daemon.mark;
      for (const n of ['cl100k_base', 'o200k_base'] as const) {
        await writeFile(join(s.dirs.encodings, `.${n}.part`), await genuineEncoding(n));
      }
      const t0 = Date.now();
      await rename(join(s.dirs.encodings, '.cl100k_base.part'), join(s.dirs.encodings, 'cl100k_base.tiktoken'));
      await rename(join(s.dirs.encodings, '.o200k_base.part'), join(s.dirs.encodings, 'o200k_base.tiktoken'));
      const decided = await s.daemon.waitFor((r) => r.msg.startsWith('status: starting'), 10_000, mark);
      out.push(Date.parse(decided['time'] as string) - t0);
    } finally {
      await cleanup(s);
    }
  }
  return out;
}

/** 20 saves of the config 40 ms apart -> how many reloads and recreates, and when the reload came. */
async function burst(): Promise<{ reloads: number; recreates: number; reloadAfterLastSaveMs: number }> {
  const s = await setup('bench-burst');
  try {
    await s.daemon.waitState('serving', 30_000);
    const mark = s.daemon.mark;
    let last = 0;
    for (let i = 0; i < 20; i++) {
      await writeFile(s.configFile, stringify({ ...s.raw, model: { maxModelLen: i % 2 ? 16384 : 8192 + i } }));
      last = Date.now();
      await sleep(40);
    }
    const r = await s.daemon.waitFor((x) => x.event === 'config-reloaded', 10_000, mark);
    await s.daemon.waitState('serving', 30_000, s.daemon.after(r));
    return {
      reloads: s.daemon.events('config-reloaded', mark).length,
      recreates: s.daemon.events('container-started', mark).length,
      reloadAfterLastSaveMs: Date.parse(r['time'] as string) - last,
    };
  } finally {
    await cleanup(s);
  }
}

/** Refusing hostile configs: in-process, and as the daemon does it (a reader process of its own). */
async function hostileConfigs(): Promise<Array<{ what: string; inProcessMs: number; isolatedMs: number }>> {
  const dir = await mkdtemp(join(tmpdir(), 'gptoss-bench-cfg-'));
  const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 10; i++) {
    const k = 'abcdefghij'[i] ?? 'z';
    lines.push(
      `${k}: &${k} [${Array(10)
        .fill(`*${'abcdefghij'[i - 1]}`)
        .join(', ')}]`,
    );
  }
  const cases: Array<[string, string]> = [
    ['an alias bomb', `${lines.join('\n')}\n`],
    ['a 2 MiB comment', `# ${'x'.repeat(2 * 1024 * 1024)}\n`],
    ['the shipped config', stringify({ model: { id: 'openai/gpt-oss-120b' } })],
  ];
  const out = [];
  for (const [what, text] of cases) {
    const file = join(dir, `${out.length}.yaml`);
    await writeFile(file, text);
    let t0 = performance.now();
    await loadConfig(file);
    const inProcessMs = performance.now() - t0;
    t0 = performance.now();
    await readConfigIsolated(file);
    out.push({ what, inProcessMs: Math.round(inProcessMs), isolatedMs: Math.round(performance.now() - t0) });
  }
  parseConfig('', 'warm-up');
  return out;
}

const enc = await encodingsToStart();
const b = await burst();
const cfg = await hostileConfigs();
const rows: Row[] = [
  [
    'tiktoken files in place -> start decided (median / max)',
    `${median(enc)} / ${Math.max(...enc)} ms`,
    `n=${enc.length}, the file watcher (200 ms debounce) and both hashes`,
  ],
  [
    '20 config saves, 40 ms apart -> reloads / recreates',
    `${b.reloads} / ${b.recreates}`,
    `the reload ${b.reloadAfterLastSaveMs} ms after the last save (300 ms debounce)`,
  ],
  ...cfg.map((c): [string, string, string] => [
    `refusing ${c.what}: in-process / reader process`,
    `${c.inProcessMs} / ${c.isolatedMs} ms`,
    'the daemon uses the reader process',
  ]),
];
printTable(rows);
