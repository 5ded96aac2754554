// Hostile and broken input, as the security review found it: each row was accepted (or crashed) before.
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { readStateIsolated } from '../../src/reader/isolated.js';
import { formatProblem, loadConfig, parseConfig, type LoadResult } from '../../src/config/load.js';
import { checkExtraArgs } from '../../src/config/vllm-flags.js';
import { renderDockerRun } from '../../src/container/docker-run.js';
import { sameSpec } from '../../src/container/same.js';
import { buildSpec } from '../../src/container/spec.js';
import { propsOf, scrubProps } from '../../src/dbus/props.js';
import { createLogger } from '../../src/log/logger.js';
import { initialState } from '../../src/core/model/state.js';
import { defaultConfig } from '../../src/config/schema.js';

const F = '/etc/gptoss/config.yaml';
const problems = (r: LoadResult) => (r.ok ? [] : r.problems.map(formatProblem));
const TOKEN = 'hf_abcdefghijklmnopqrstuvwxyz0123456789AB';

const flagRows: Array<[string[], RegExp]> = [
  [['--trust_remote_code'], /--trust_remote_code \(vLLM reads it as --trust-remote-code\) is refused: gpt-oss needs/],
  [['--trust-remote'], /--trust-remote is refused: vLLM takes it for --trust-remote-code, which is refused/],
  [['--enable_auto_tool_choice'], /is refused: gpt-oss enables tool use by itself/],
  [
    ['--gpu_memory_utilization=0.99'],
    /vLLM reads it as --gpu-memory-utilization\) is set by model\.gpuMemoryUtilization/,
  ],
  [['--config', 'more.yaml'], /--config is refused: vLLM reads further flags from that file/],
  [['--config=more.yaml'], /--config is refused/],
  [['--max-model', '100'], /vLLM takes it for --max-model-len, which model\.maxModelLen sets/],
  [['-qawq'], /-q is set by model\.quantization/],
  [['--Served-Model-Name=x'], /is set by model\.servedName/],
];
for (const [args, want] of flagRows) {
  test(`extraArgs ${JSON.stringify(args)} is refused the way vLLM would read it`, (t) => {
    const found = checkExtraArgs(args);
    t.is(found.length, 1);
    t.regex(found[0]?.message ?? '', want);
    t.regex(problems(parseConfig(`model:\n  extraArgs: ${JSON.stringify(args)}\n`, F))[0] ?? '', want);
  });
}

test('extraArgs that are fine pass: real flags, values, a flag longer than an owned one', (t) => {
  t.deepEqual(checkExtraArgs(['--max-num-seqs=64', '--enable-prefix-caching', '--model-impl', 'vllm', '-tp', '1']), []);
});

const configRows: Array<[string, string, RegExp]> = [
  [
    'a 30-day timeout (a timer fires such at once)',
    'health:\n  liveness:\n    timeout: 30d\n',
    /timeout: must be at most 10m/,
  ],
  ['a 0s restart delay (a busy loop)', 'restart:\n  initialDelay: 0s\n', /initialDelay: must be at least 100ms/],
  ['__proto__ smuggling a model id', '__proto__:\n  model:\n    id: evil/model\n', /"__proto__" is not a config key/],
  ['a key named constructor', 'model:\n  constructor: 1\n', /"constructor" is not a config key/],
  [
    'HF_ENDPOINT',
    'container:\n  env:\n    HF_ENDPOINT: https://evil.example\n',
    /HF_ENDPOINT is refused: it sends the HF token to another host/,
  ],
  [
    'HUGGING_FACE_HUB_TOKEN',
    'container:\n  env:\n    HUGGING_FACE_HUB_TOKEN: x\n',
    /is refused: it is a second HF token/,
  ],
  ['HF_TOKEN_PATH', 'container:\n  env:\n    HF_TOKEN_PATH: /x\n', /HF_TOKEN_PATH is refused/],
  ['LD_PRELOAD', 'container:\n  env:\n    LD_PRELOAD: /x.so\n', /LD_PRELOAD is refused: it loads other code/],
  ['paths.huggingface: /', 'paths:\n  huggingface: /\n', /\/ is a system folder/],
  ['paths.huggingface: /etc', 'paths:\n  huggingface: /etc\n', /\/etc is a system folder/],
  ['paths.encodings: /var/run', 'paths:\n  encodings: /var/run\n', /\/var\/run is a system folder/],
  [
    'paths.huggingface: /vllm/../etc',
    'paths:\n  huggingface: /vllm/../etc\n',
    /\/etc \(\/vllm\/\.\.\/etc once normalised\) is a system folder/,
  ],
  ['an unknown YAML tag', 'model:\n  id: !!python/object x\n', /YAML: .*tag/i],
  ['a URL with a space', 'encodings:\n  baseUrl: "https://x y"\n', /baseUrl: expected an http\(s\) URL/],
  [
    'an upper-case image',
    'container:\n  image: NVCR.io/Nvidia/VLLM:25.09\n',
    /image: is not an image reference Docker accepts/,
  ],
  ['a GPU id with a comma', 'container:\n  gpus: ["GPU-1,2"]\n', /is not a GPU index or UUID/],
];
for (const [what, text, want] of configRows) {
  test(`config refuses ${what}, with a located error`, (t) => {
    const p = problems(parseConfig(text, F));
    t.true(
      p.some((l) => want.test(l)),
      p.join('\n'),
    );
    t.true(p.every((l) => /^\/etc\/gptoss\/config\.yaml:\d+:\d+: /.test(l)));
  });
}

test('what is allowed stays allowed: an opted-in variable, a normalised path, a registry with a port', (t) => {
  const r = parseConfig(
    'container:\n  env: {HF_ENDPOINT: "https://mirror.internal"}\n  allowEnv: [HF_ENDPOINT]\n' +
      '  image: "registry.local:5000/team/vllm:26.05-py3"\n  gpus: [0, "GPU-8f2d1c2e-aa00-4e6f-bc2f-1a2b3c4d5e6f"]\n' +
      'paths:\n  huggingface: /vllm//cache/../huggingface/\n',
    F,
  );
  if (!r.ok) return t.fail(problems(r).join('\n'));
  t.is(r.config.paths.huggingface, '/vllm/huggingface');
});

test('a token pasted into the config is never echoed: not by validate, not by the D-Bus error property', (t) => {
  for (const text of [
    `hfToken: "${TOKEN}"\n`,
    `model:\n  id: 1\nhfToken: ${TOKEN}\n`,
    `model:\n  maxModelLen: ${TOKEN}\n`,
  ]) {
    const p = problems(parseConfig(text, F));
    t.true(p.length > 0);
    t.false(p.join('\n').includes(TOKEN), p.join('\n'));
  }
  const log = createLogger({ format: 'text', level: 'info', write: () => undefined });
  const state = { ...initialState(0), configError: `${F}:1:10: hfToken: expected an object; got "${TOKEN}"` };
  const ctx = { image: 'i', servedName: 's', endpoint: 'e', configPath: F, specHash: 'x' };
  const props = scrubProps(propsOf(state, `config invalid: ${TOKEN}`, ctx), (s) => log.scrub(s));
  t.false(JSON.stringify(props, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)).includes(TOKEN));
});

test('secret flags and variables are masked wherever the container is shown: render, drift', (t) => {
  const base = defaultConfig();
  const config = {
    ...base,
    model: { ...base.model, extraArgs: ['--api-key', 'sk-live-0123456789', '--ssl-keyfile-password=pw-0123456789'] },
    container: { ...base.container, env: { VLLM_API_KEY: 'sk-env-0123456789' } },
  };
  const spec = buildSpec(config, undefined);
  const shown = renderDockerRun(spec);
  for (const secret of ['sk-live-0123456789', 'pw-0123456789', 'sk-env-0123456789'])
    t.false(shown.includes(secret), secret);
  t.regex(shown, /--api-key \*{8}/);
  t.regex(shown, /-e VLLM_API_KEY=\*{8}/);
  const running = buildSpec({ ...config, model: { ...config.model, maxModelLen: 8 } }, undefined);
  const inspected = {
    Id: 'x',
    Name: '/x',
    Image: running.body.Image,
    State: { Status: 'running', Running: true, ExitCode: 0, OOMKilled: false, StartedAt: '', FinishedAt: '' },
    Config: { Image: running.body.Image, Cmd: running.body.Cmd, Env: running.body.Env, Labels: {} },
    HostConfig: running.body.HostConfig,
  };
  const drift = sameSpec(spec, inspected).differences.join('\n');
  t.regex(drift, /command: /);
  for (const secret of ['sk-live-0123456789', 'pw-0123456789']) t.false(drift.includes(secret), drift);
});

test('config files that are not files: a FIFO, /dev/zero behind a symlink, a huge file; each refused', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gptoss-hostile-'));
  execFileSync('mkfifo', [join(dir, 'fifo.yaml')]);
  await symlink('/dev/zero', join(dir, 'zero.yaml'));
  await writeFile(join(dir, 'big.yaml'), `# ${'x'.repeat(200 * 1024)}\n`);
  t.regex(
    problems(await loadConfig(join(dir, 'fifo.yaml')))[0] ?? '',
    /:1:1: is a FIFO \(named pipe\), not a regular file/,
  );
  t.regex(
    problems(await loadConfig(join(dir, 'zero.yaml')))[0] ?? '',
    /:1:1: is a character device, not a regular file/,
  );
  t.regex(problems(await loadConfig(join(dir, 'big.yaml')))[0] ?? '', /:1:1: is over the 65536-byte limit/);
});

test('duplicate keys are found in one pass, among thousands: the one duplicate, located', (t) => {
  const keys = Array.from({ length: 8000 }, (_, i) => `k${i}: 1`);
  keys.push('k17: 2');
  const p = problems(parseConfig(`model: {${keys.join(', ')}}\n`, F));
  const dup = p.filter((l) => /appears twice/.test(l));
  t.is(dup.length, 1);
  t.regex(dup[0] ?? '', /:1:\d+: this key appears twice/);
});

test('a state record with wrong types is refused in full; a right one passes', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gptoss-state-'));
  const rows: Array<[string, unknown, RegExp]> = [
    [
      'a date where a time belongs',
      { restarts: 1, totalRestarts: 1, lastDeep: { at: 'yesterday', ok: true, detail: '' } },
      /lastDeep\.at/,
    ],
    ['a negative count', { restarts: -1, totalRestarts: 1 }, /restarts/],
    ['a fraction', { restarts: 1.5, totalRestarts: 1 }, /restarts/],
    ['1e400 (Infinity)', '{"restarts": 1e400, "totalRestarts": 1}', /restarts/],
    ['not JSON', '{"restarts": ', /not JSON/],
  ];
  for (const [what, value, want] of rows) {
    const file = join(dir, 'state.json');
    await writeFile(file, typeof value === 'string' ? value : JSON.stringify(value));
    const r = await readStateIsolated(file);
    t.true('problem' in r && want.test(r.problem), `${what}: ${JSON.stringify(r)}`);
  }
  await writeFile(join(dir, 'ok.json'), JSON.stringify({ restarts: 2, totalRestarts: 5, savedAt: 'x' }));
  t.deepEqual(await readStateIsolated(join(dir, 'ok.json')), { record: { restarts: 2, totalRestarts: 5 } });
  t.deepEqual(await readdir(dir), ['ok.json', 'state.json']);
});

test('a state record with the last load by phase, no download among them (most loads), is read back', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gptoss-state-'));
  const lastLoad = {
    spec: 'a'.repeat(64),
    took: 61_000,
    phases: { starting: 900, weights: 30_000, api: 2_000 },
    at: 1.8e12,
  };
  await writeFile(join(dir, 'state.json'), JSON.stringify({ restarts: 2, totalRestarts: 5, lastLoad }));
  t.deepEqual(await readStateIsolated(join(dir, 'state.json')), {
    record: { restarts: 2, totalRestarts: 5, lastLoad },
  });
  // A phase that is not one stays refused.
  await writeFile(
    join(dir, 'bad.json'),
    JSON.stringify({ restarts: 2, totalRestarts: 5, lastLoad: { ...lastLoad, phases: { boot: 1 } } }),
  );
  const bad = await readStateIsolated(join(dir, 'bad.json'));
  t.true('problem' in bad && /lastLoad\.phases/.test(bad.problem), JSON.stringify(bad));
});
