import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { formatProblem, loadConfig, parseConfig, resolveConfigPath, type LoadResult } from '../../src/config/load.js';
import { defaultConfig } from '../../src/config/schema.js';
import { resolveToken } from '../../src/config/token.js';
import { tempDir } from '../helpers/temp.js';

const F = '/etc/gptoss/config.yaml';

function problems(r: LoadResult): string[] {
  return r.ok ? [] : r.problems.map(formatProblem);
}

test('every default is the guide value', (t) => {
  const c = defaultConfig();
  t.deepEqual(c.model, {
    id: 'openai/gpt-oss-120b',
    servedName: 'gpt-oss-120b',
    quantization: 'mxfp4',
    gpuMemoryUtilization: 0.85,
    maxModelLen: 32768,
    extraArgs: [],
  });
  t.like(c.container, {
    name: 'vllm-gpt-oss',
    image: 'nvcr.io/nvidia/vllm:25.09-py3',
    port: 8000,
    bindAddress: '',
    gpus: 'all',
    ipc: 'host',
    env: {},
    stopTimeout: 30_000,
    stopOnExit: true,
  });
  t.deepEqual(c.container.ulimits, { memlock: -1, stack: 67108864 });
  t.deepEqual(c.paths, { encodings: '/vllm/encodings', huggingface: '/vllm/huggingface', cache: '/vllm/cache' });
  t.deepEqual(c.hfToken, { credential: 'hf_token', file: '/etc/gptoss/hf_token', env: 'HF_TOKEN' });
  t.deepEqual(c.health, {
    startup: { period: 10_000, timeout: 900_000, stallTimeout: null },
    liveness: { period: 10_000, timeout: 5_000, failureThreshold: 3 },
    readiness: { period: 10_000, timeout: 5_000 },
    stall: { enabled: true, window: 180_000, failureThreshold: 2 },
    slow: { enabled: true, baseline: 3_600_000, window: 300_000, slower: 0.25 },
  });
  t.like(c.gpu, { releaseTimeout: 180_000, telemetryPeriod: 30_000, throttleAlertAfter: 300_000 });
  t.deepEqual(c.memoryGuard, { enabled: true, floor: 'auto', pressure: 'auto', stuckThreshold: 8 * 1024 ** 3 });
  t.deepEqual(c.restart, {
    initialDelay: 10_000,
    multiplier: 2,
    maxDelay: 300_000,
    jitter: 0.1,
    resetAfter: 600_000,
    crashLoopAfter: 3,
    budget: null,
  });
  t.deepEqual(c.notify, { ready: 'serving' });
});

const sameAsDefaults = [
  '',
  '\n\n',
  '# only a comment\n',
  '---\n',
  'model: {}\n',
  'model:\n',
  'container: ~\nhealth:\n  startup:\n',
];
for (const text of sameAsDefaults) {
  test(`${JSON.stringify(text)} means all defaults`, (t) => {
    const r = parseConfig(text, F);
    t.true(r.ok, problems(r).join('\n'));
    if (r.ok) t.deepEqual(r.config, defaultConfig());
  });
}

test('the shipped config is valid and equals the defaults', async (t) => {
  const r = await loadConfig(new URL('../../../etc/gptoss/config.yaml', import.meta.url).pathname);
  t.true(r.ok, problems(r).join('\n'));
  if (r.ok) t.deepEqual(r.config, defaultConfig());
});

test('values given replace defaults; ulimits merge', (t) => {
  const r = parseConfig(
    'model:\n  gpuMemoryUtilization: 0.8\ncontainer:\n  gpus: [0, "GPU-abc"]\n  ulimits: {memlock: 8388608, nofile: ' +
      '{soft: 1024, hard: 4096}}\n  env: {A: 1, B: true}\n  stopTimeout: 1m30s\n',
    F,
  );
  t.true(r.ok, problems(r).join('\n'));
  if (!r.ok) return;
  t.is(r.config.model.gpuMemoryUtilization, 0.8);
  t.deepEqual(r.config.container.gpus, [0, 'GPU-abc']);
  t.deepEqual(r.config.container.ulimits, { memlock: 8388608, stack: 67108864, nofile: { soft: 1024, hard: 4096 } });
  t.deepEqual(r.config.container.env, { A: '1', B: 'true' });
  t.is(r.config.container.stopTimeout, 90_000);
});

// One row per rule: the text, and the exact located line(s) it must produce.
const bad: [string, string, string[]][] = [
  [
    'typo suggests the nearest key',
    'model:\n  gpuMemoryUtilisation: 0.8\n',
    [`${F}:2:3: model.gpuMemoryUtilisation: unknown key in model; did you mean "gpuMemoryUtilization"?`],
  ],
  [
    'unknown top-level key',
    'modle:\n  id: x\n',
    [`${F}:1:1: modle: unknown key at the top level; did you mean "model"?`],
  ],
  [
    'unknown key with no near match lists the known ones',
    'paths:\n  zzz: /x\n',
    [`${F}:2:3: paths.zzz: unknown key in paths; known keys here: encodings, huggingface, cache`],
  ],
  [
    'utilization above 1',
    'model:\n  gpuMemoryUtilization: 1.5\n',
    [`${F}:2:25: model.gpuMemoryUtilization: must be at most 1 (it is a fraction of GPU memory, e.g. 0.85); got 1.5`],
  ],
  [
    'utilization 0',
    'model:\n  gpuMemoryUtilization: 0\n',
    [`${F}:2:25: model.gpuMemoryUtilization: must be above 0 (it is a fraction of GPU memory, e.g. 0.85); got 0`],
  ],
  [
    'utilization as text',
    'model:\n  gpuMemoryUtilization: high\n',
    [`${F}:2:25: model.gpuMemoryUtilization: expected a number between 0 and 1, e.g. 0.85; got "high"`],
  ],
  [
    'maxModelLen not whole',
    'model:\n  maxModelLen: 1.5\n',
    [`${F}:2:16: model.maxModelLen: expected a whole number; got 1.5`],
  ],
  [
    'forbidden flag',
    'model:\n  extraArgs: ["--trust-remote-code"]\n',
    [
      `${F}:2:15: model.extraArgs.0: --trust-remote-code is refused: gpt-oss needs no remote code; running it would ` +
        `execute code from the model repository; remove it`,
    ],
  ],
  [
    'forbidden flag with =',
    'model:\n  extraArgs:\n    - --enable-auto-tool-choice=true\n',
    [
      `${F}:3:7: model.extraArgs.0: --enable-auto-tool-choice is refused: gpt-oss enables tool use by itself; this ` +
        `flag breaks it; remove it`,
    ],
  ],
  [
    'owned flag',
    'model:\n  extraArgs: ["--max-num-seqs", "64", "--quantization", "fp8"]\n',
    [
      `${F}:2:39: model.extraArgs.2: --quantization is set by model.quantization; set that key instead of repeating ` +
        `the flag`,
    ],
  ],
  [
    'bad container name',
    'container:\n  name: "vllm gpt"\n',
    [
      `${F}:2:9: container.name: is not a valid container name: use letters, digits, "_", "." and "-", starting with ` +
        `a letter or digit, at least 2 characters; got "vllm gpt"`,
    ],
  ],
  ['port out of range', 'container:\n  port: 70000\n', [`${F}:2:9: container.port: must be 1-65535; got 70000`]],
  [
    'bad bind address',
    'container:\n  bindAddress: localhost\n',
    [
      `${F}:2:16: container.bindAddress: expected an IP address such as 127.0.0.1, or "" for all interfaces; got ` +
        `"localhost"`,
    ],
  ],
  [
    'bad gpus',
    'container:\n  gpus: some\n',
    [
      `${F}:2:9: container.gpus: expected "all", "none", a GPU count such as 1, or a list of device ids such as [0, ` +
        `1]; got "some"`,
    ],
  ],
  [
    'ipc not host',
    'container:\n  ipc: private\n',
    [
      `${F}:2:8: container.ipc: must be "host": vLLM shares memory between its processes through the host IPC ` +
        `namespace (the guide forbids dropping --ipc=host); got "private"`,
    ],
  ],
  [
    'unknown ulimit',
    'container:\n  ulimits: {memlok: -1}\n',
    [
      `${F}:2:21: container.ulimits.memlok: unknown ulimit "memlok"; known: core, cpu, data, fsize, locks, memlock, ` +
        `msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack`,
    ],
  ],
  [
    'managed env',
    'container:\n  env:\n    TIKTOKEN_ENCODINGS_BASE: /x\n',
    [
      `${F}:3:30: container.env.TIKTOKEN_ENCODINGS_BASE: TIKTOKEN_ENCODINGS_BASE is managed by the supervisor: it ` +
        `must point at the read-only mount of paths.encodings; remove it`,
    ],
  ],
  [
    'duration without unit',
    'container:\n  stopTimeout: 30\n',
    [`${F}:2:16: container.stopTimeout: expected a duration such as 30s, 10m or 1h; got 30`],
  ],
  [
    'duration with bad unit',
    'restart:\n  maxDelay: 5 minutes\n',
    [`${F}:2:13: restart.maxDelay: "5 minutes" is not a duration; write it like 30s, 10m, 1h or 1m30s`],
  ],
  [
    'probe period too short',
    'health:\n  liveness:\n    period: 0s\n',
    [`${F}:3:13: health.liveness.period: must be at least 100ms; got "0s"`],
  ],
  [
    'crashLoopAfter zero',
    'restart:\n  crashLoopAfter: 0\n',
    [`${F}:2:19: restart.crashLoopAfter: must be at least 1; got 0`],
  ],
  [
    'maxDelay below initialDelay',
    'restart:\n  initialDelay: 1m\n  maxDelay: 30s\n',
    [`${F}:3:13: restart.maxDelay: must not be shorter than restart.initialDelay`],
  ],
  [
    'relative path',
    'paths:\n  encodings: vllm/encodings\n',
    [`${F}:2:14: paths.encodings: must be an absolute path (starting with /); got "vllm/encodings"`],
  ],
  ['section that is a list', 'model: [1, 2]\n', [`${F}:1:8: model: expected an object; got a list`]],
  [
    'top level a list',
    '- model\n',
    [
      `${F}:1:1: the top level must be a mapping of sections (model:, container:, paths:, ...), not a list or a ` +
        `single value`,
    ],
  ],
  [
    'top level a scalar',
    'hello\n',
    [
      `${F}:1:1: the top level must be a mapping of sections (model:, container:, paths:, ...), not a list or a ` +
        `single value`,
    ],
  ],
  [
    'duplicate key',
    'model:\n  id: a\n  id: b\n',
    [`${F}:3:3: this key appears twice in the same mapping; keep one (the second would silently win)`],
  ],
  ['tab indentation', 'model:\n\tid: a\n', [`${F}:2:1: YAML does not allow tabs for indentation; indent with spaces`]],
  [
    'null value for a setting',
    'container:\n  port:\n',
    [`${F}:2:8: container.port: expected a port number; got null (an empty value)`],
  ],
];
for (const [name, text, want] of bad) {
  test(`rejects: ${name}`, (t) => {
    t.deepEqual(problems(parseConfig(text, F)), want);
  });
}

test('every problem is reported at once, in file order', (t) => {
  const text = 'model:\n  gpuMemoryUtilization: 2\n  maxModelLen: 0\ncontainer:\n  port: 0\n  nmae: x\n';
  const p = problems(parseConfig(text, F));
  t.is(p.length, 4);
  t.deepEqual(
    p.map((l) => l.split(':').slice(1, 3).join(':')),
    ['2:25', '3:16', '5:9', '6:3'],
  );
});

test('YAML syntax errors are located, without a stack trace', (t) => {
  const p = problems(parseConfig('model:\n  id: [unclosed\n', F));
  t.true(p.length >= 1);
  t.regex(p[0] ?? '', /^\/etc\/gptoss\/config\.yaml:\d+:\d+: YAML syntax error: /);
  t.false(p.join('\n').includes('    at '));
});

const unclosedRows: [string, string, RegExp][] = [
  [
    'a quote',
    'model:\n  id: "openai/gpt\ncontainer:\n  port: 1\n',
    /:2:7: YAML syntax error: .*the quote " that opens here is never closed \(the file ends at line 4\)$/,
  ],
  [
    'a single quote',
    "model:\n  id: 'it''s\n",
    /:2:7: .*the quote ' that opens here is never closed \(the file ends at line 2\)$/,
  ],
  [
    'a list',
    'model:\n  extraArgs: ["--a",\n  id: x\n',
    /:2:14: .*the list "\[" that opens here is never closed \(the file ends at line 3\)$/,
  ],
  [
    'a mapping on a 1-line file',
    'model: {id: x\n',
    /:1:8: .*the mapping "\{" that opens here is never closed \(the file ends at line 1\)$/,
  ],
];
for (const [what, text, want] of unclosedRows) {
  test(`a YAML syntax error for ${what} that never closes points at where it opened`, (t) => {
    const p = problems(parseConfig(text, F));
    t.regex(p[0] ?? '', want);
    const lines = text.replace(/\n$/, '').split('\n').length;
    for (const line of p) t.true(Number(/:(\d+):\d+: /.exec(line)?.[1]) <= lines, `${line}: a line the file has`);
  });
}

test('an alias bomb is refused', (t) => {
  const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 10; i++)
    lines.push(
      `${'abcdefghij'[i]}: &${'abcdefghij'[i]} [${Array(10)
        .fill(`*${'abcdefghij'[i - 1]}`)
        .join(', ')}]`,
    );
  // How quickly: npm run bench (config parse times).
  const p = problems(parseConfig(`${lines.join('\n')}\n`, F));
  t.is(p.length, 1);
  t.regex(p[0] ?? '', /:2:\d+: expands YAML aliases more than 100 times \(an "alias bomb"\)/);
});

test('a few aliases are fine but unknown keys still fail', (t) => {
  const p = problems(parseConfig('x: &t 5s\nhealth:\n  startup:\n    period: *t\n', F));
  t.deepEqual(p, [
    `${F}:1:1: x: unknown key at the top level; known keys here: model, container, paths, encodings, gpu, ` +
      `memoryGuard, hfToken, health, restart, waits, rollback, schedule, notify, gate, metrics, alerts`,
  ]);
});

const files: [string, (dir: string) => Promise<string>, RegExp][] = [
  ['missing', (d) => Promise.resolve(join(d, 'nope.yaml')), /:1:1: no such file; create it .* or pass --config PATH$/],
  ['a directory', (d) => Promise.resolve(d), /:1:1: is a directory, not a config file/],
  [
    'binary',
    async (d) => {
      const f = join(d, 'b.yaml');
      await writeFile(f, Buffer.from([0x6d, 0x3a, 0x00, 0xff, 0xfe]));
      return f;
    },
    /:1:1: is not UTF-8 text/,
  ],
  [
    'binary but valid UTF-8 with NUL',
    async (d) => {
      const f = join(d, 'n.yaml');
      await writeFile(f, 'model:\n  id: a\0b\n');
      return f;
    },
    /:2:8: contains a NUL byte/,
  ],
  [
    'huge',
    async (d) => {
      const f = join(d, 'h.yaml');
      await writeFile(f, `# ${'x'.repeat(2 * 1024 * 1024)}\n`);
      return f;
    },
    /:1:1: is over the 65536-byte limit for a config \(64 KiB\); is this the right file\?/,
  ],
];
for (const [name, make, want] of files) {
  test(`a config file that is ${name} gets a located error`, async (t) => {
    const d = await tempDir(t, 'gptoss-config-');
    const p = problems(await loadConfig(await make(d)));
    t.is(p.length, 1);
    t.regex(p[0] ?? '', want);
  });
}

test('a config reached through a symlink loads', async (t) => {
  const d = await tempDir(t, 'gptoss-config-');
  await mkdir(join(d, 'real'));
  await writeFile(join(d, 'real', 'c.yaml'), 'model: {maxModelLen: 16384}\n');
  await symlink(join(d, 'real', 'c.yaml'), join(d, 'link.yaml'));
  const r = await loadConfig(join(d, 'link.yaml'));
  t.true(r.ok);
  if (r.ok) t.is(r.config.model.maxModelLen, 16384);
});

test('config path: --config, then GPTOSS_CONFIG, then /etc', (t) => {
  t.is(resolveConfigPath('/a.yaml', { GPTOSS_CONFIG: '/b.yaml' }), '/a.yaml');
  t.is(resolveConfigPath(undefined, { GPTOSS_CONFIG: '/b.yaml' }), '/b.yaml');
  t.is(resolveConfigPath(undefined, {}), '/etc/gptoss/config.yaml');
});

test('schedule: cron expressions checked at load, located; empty turns a job off', (t) => {
  const bad = parseConfig(
    'schedule:\n  deepProbe:\n    cron: "61 * * * *"\n  maintenanceRestart:\n    cron: "0 4 * *"\n',
    F,
  );
  t.false(bad.ok);
  t.deepEqual(problems(bad), [
    '/etc/gptoss/config.yaml:3:11: schedule.deepProbe.cron: "61 * * * *" is not a cron expression (61 is an invalid ' +
      'expression for minute); write 5 fields (minute hour day month weekday), or 6 with seconds first, e.g. "*/15 ' +
      '* * * *"',
    '/etc/gptoss/config.yaml:5:11: schedule.maintenanceRestart.cron: "0 4 * *" is not a cron expression (expected 5 ' +
      'or 6 fields but got 4); write 5 fields (minute hour day month weekday), or 6 with seconds first, e.g. "*/15 ' +
      '* * * *"',
  ]);
  const off = parseConfig(
    'schedule:\n  deepProbe:\n    cron: ""\n  maintenanceRestart:\n    cron: "*/30 * * * * *"\n',
    F,
  );
  t.true(off.ok);
  if (off.ok)
    t.deepEqual(
      [off.config.schedule.deepProbe.cron, off.config.schedule.maintenanceRestart.cron],
      [null, '*/30 * * * * *'],
    );
});

test(
  'HF token: the credential, then the file, then the environment; a file edited since the credential was loaded ' +
    'wins',
  async (t) => {
    const dir = await tempDir(t, 'gptoss-token-');
    // The credential as systemd would place it, beside the token file it was loaded from.
    const cfg2 = { credential: 'hf_token.cred', file: join(dir, 'hf_token'), env: 'HF_TOKEN' };
    await writeFile(join(dir, 'hf_token.cred'), 'hf_OLD\n');
    const credEnv = { CREDENTIALS_DIRECTORY: dir, HF_TOKEN: 'hf_ENV' };
    const cfg = cfg2;
    t.deepEqual(
      await resolveToken(cfg2, credEnv),
      { value: 'hf_OLD', source: 'credential hf_token.cred' },
      'no file: the credential',
    );
    await writeFile(cfg.file, 'hf_OLD\n');
    t.deepEqual(
      await resolveToken(cfg2, credEnv),
      { value: 'hf_OLD', source: 'credential hf_token.cred' },
      'the same in both: the credential',
    );
    await writeFile(cfg.file, 'hf_NEW\n');
    t.deepEqual(await resolveToken(cfg2, credEnv), {
      value: 'hf_NEW',
      source: `file ${cfg.file} (changed since the service loaded credential hf_token.cred)`,
    });
    t.deepEqual(await resolveToken(cfg2, { HF_TOKEN: 'hf_ENV' }), { value: 'hf_NEW', source: `file ${cfg.file}` });
    await writeFile(cfg.file, '\n');
    t.deepEqual(await resolveToken(cfg2, { HF_TOKEN: 'hf_ENV' }), { value: 'hf_ENV', source: 'environment HF_TOKEN' });
    t.is(await resolveToken(cfg2, {}), undefined);
  },
);
