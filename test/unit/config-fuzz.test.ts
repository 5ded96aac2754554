// validate over generated YAML: random trees of the config's own keys with hostile values. Whatever comes
// in, the answer is a valid config or located problems; never a throw, never a stack trace.
import test from 'ava';
import { stringify } from 'yaml';
import { formatProblem, parseConfig } from '../../src/config/load.js';
import { defaultConfig } from '../../src/config/schema.js';

const CASES = 1500;
const F = '/etc/gptoss/config.yaml';

/** A small seeded generator (mulberry32): a failing case can be replayed from its number. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HOSTILE: unknown[] = [
  '',
  ' ',
  '__proto__',
  'constructor',
  'toString',
  '../../../../etc',
  '/',
  '/dev/zero',
  '-1',
  '1e400',
  'NaN',
  'Infinity',
  '99999999d',
  '0s',
  '1ms',
  '24.9d',
  'hf_abcdefghijklmnopqrstuvwxyz0123456789AB',
  '--trust_remote_code',
  '--config=x',
  '${HF_TOKEN}',
  '$(reboot)',
  '`id`',
  "'; rm -rf / #",
  'a\nb',
  'ü\u0000x',
  '\u202e',
  'x'.repeat(3000),
  '*/0 * * * *',
  'GPU-1,2',
  'NVCR.IO/X:Y',
  'https://x y',
  'localhost',
  '::1',
  '0.0.0.0',
  0,
  -1,
  1.5,
  2 ** 53,
  -(2 ** 31),
  1e308,
  true,
  false,
  null,
  [],
  {},
  [1, 'a', null],
  { __proto__: null, a: 1 },
  { soft: -2, hard: 'x' },
];

/** Keys of generated mappings: the hostile strings among the values. */
const KEYS = HOSTILE.filter((v): v is string => typeof v === 'string');

/** The config's own key paths, from the defaults: [['model'], ['model', 'id'], ...]. */
function keyPaths(v: unknown, prefix: string[] = []): string[][] {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return [];
  return Object.entries(v).flatMap(([k, child]) => [[...prefix, k], ...keyPaths(child, [...prefix, k])]);
}
const PATHS = keyPaths(defaultConfig());

function hostileValue(r: () => number, depth = 0): unknown {
  const pick = r();
  if (pick < 0.6 || depth > 2) return HOSTILE[Math.floor(r() * HOSTILE.length)];
  if (pick < 0.8) return Array.from({ length: Math.floor(r() * 4) }, () => hostileValue(r, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = 0; i < 3; i++) o[KEYS[Math.floor(r() * KEYS.length)] ?? 'k'] = hostileValue(r, depth + 1);
  return o;
}

function generate(seed: number): string {
  const r = rng(seed);
  const tree: Record<string, unknown> = {};
  for (let i = 0, n = 1 + Math.floor(r() * 6); i < n; i++) {
    const path = PATHS[Math.floor(r() * PATHS.length)] ?? ['model'];
    let node = tree;
    for (const k of path.slice(0, -1)) {
      if (!node[k] || typeof node[k] !== 'object') node[k] = {};
      node = node[k] as Record<string, unknown>;
    }
    node[path.at(-1) ?? 'x'] = hostileValue(r);
  }
  let text = stringify(tree);
  // Now and then what stringify would never write: a tag, an alias, a cut-off file, a tab.
  const extra = r();
  if (extra < 0.05) text = `x: !!python/object:os.system ls\n${text}`;
  else if (extra < 0.1) text = `a: &a [1, 2]\nb: *a\n${text}`;
  else if (extra < 0.15) text = text.slice(0, Math.floor(r() * text.length));
  else if (extra < 0.2) text = text.replace(/\n {2}/, '\n\t');
  return text;
}

test('1500 hostile configs: a valid config or located problems, never a throw or a stack trace', (t) => {
  t.timeout(120_000, 'the whole run, not one case: a pathological parse would blow it');
  let valid = 0;
  for (let seed = 1; seed <= CASES; seed++) {
    const text = generate(seed);
    let r;
    try {
      r = parseConfig(text, F);
    } catch (err) {
      t.fail(`seed ${seed} threw ${(err as Error).stack ?? String(err)}\n${text}`);
      return;
    }
    if (r.ok) {
      valid++;
      continue;
    }
    const lines = r.problems.map(formatProblem);
    if (lines.length === 0 || !lines.every((l) => /^\/etc\/gptoss\/config\.yaml:\d+:\d+: \S/.test(l))) {
      t.fail(`seed ${seed}: not located:\n${lines.join('\n')}\n--\n${text}`);
      return;
    }
    if (lines.some((l) => /\n\s+at /.test(l) || /function Object\(\)|\[object Object\]/.test(l))) {
      t.fail(`seed ${seed}: leaks internals:\n${lines.join('\n')}`);
      return;
    }
    if (lines.some((l) => l.includes('hf_abcdefghijklmnopqrstuvwxyz0123456789AB'))) {
      t.fail(`seed ${seed}: quotes a token:\n${lines.join('\n')}`);
      return;
    }
  }
  t.log(`${CASES} cases, ${valid} valid`);
  t.pass();
});
