// Hostile and broken input, as the security review found it: each row was accepted (or crashed) before.
import { execFileSync } from 'node:child_process';
import { readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { readStateIsolated } from '../../src/reader/isolated.js';
import { formatProblem, loadConfig, parseConfig, type LoadResult } from '../../src/config/load.js';
import { checkExtraArgs } from '../../src/config/vllm-flags.js';
import { renderDockerRun } from '../../src/container/docker-run.js';
import { sameSpec } from '../../src/container/same.js';
import { buildSpec } from '../../src/container/spec.js';
import { jsonOf, propsOf, scrubProps, type Context } from '../../src/dbus/props.js';
import { humanStatus } from '../../src/cli/daemon-client.js';
import { evaluate } from '../../src/core/rules/checks.js';
import { exposureWarning } from '../../src/core/rules/exposure.js';
import { coversV4, ipAllow, PUBLIC } from '../../src/core/rules/ip-allow.js';
import { exposureOf } from '../../src/preflight/gather.js';
import { createLogger } from '../../src/log/logger.js';
import { initialState } from '../../src/core/model/state.js';
import { defaultConfig } from '../../src/config/schema.js';
import { tempDir } from '../helpers/temp.js';

const F = '/etc/gptoss/config.yaml';
const problems = (r: LoadResult) => (r.ok ? [] : r.problems.map(formatProblem));
const ctx0: Context = {
  image: 'img',
  servedName: 'gpt-oss-120b',
  endpoint: 'http://127.0.0.1:8000/v1',
  configPath: F,
  specHash: 'spec',
};
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
  // Flags that make vLLM load code: a file (the HF cache is writable from the container) or a class.
  [['--tool-parser-plugin', '/root/.cache/huggingface/p.py'], /--tool-parser-plugin is refused: vLLM imports/],
  [['--tool-parser-pl=/x.py'], /--tool-parser-pl is refused: vLLM takes it for --tool-parser-plugin/],
  [['--reasoning_parser_plugin=/x.py'], /vLLM reads it as --reasoning-parser-plugin\) is refused: vLLM imports/],
  [['--worker-extension-cls', 'evil.Ext'], /--worker-extension-cls is refused: vLLM imports/],
  [['--worker-cls=evil.W'], /--worker-cls is refused: vLLM imports/],
  [['--scheduler-cls', 'evil.S'], /--scheduler-cls is refused: vLLM imports/],
  [['--logits-processors', 'evil.LP'], /--logits-processors is refused: vLLM imports/],
  [['--logits-processor-pattern', '.*'], /--logits-processor-pattern is refused: .*clients/],
  [['--middleware', 'evil.mw'], /--middleware is refused: vLLM imports/],
  [['--log-config-file', '/x.json'], /--log-config-file is refused: /],
  [['--kv-transfer-config.kv_connector_module_path=evil'], /--kv-transfer-config is refused: vLLM imports/],
  [['--allowed-local-media-path=/'], /--allowed-local-media-path is refused: API clients could read/],
  // A secret on the command line: any user of the host reads it with ps.
  [['--api-key', 'sk-0123456789'], /--api-key is refused: .*ps.*set VLLM_API_KEY in container\.env/],
  [['--api_k=sk-0123456789'], /vLLM takes it for --api-key, which is refused/],
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
  t.deepEqual(
    checkExtraArgs(['--compilation-config.level=3', '--tool-call-parser', 'openai', '--api-server-count=1']),
    [],
  );
  // A flag of its own that is a prefix of a refused one (--reasoning-parser-plugin): argparse takes it as itself.
  t.deepEqual(checkExtraArgs(['--reasoning-parser', 'openai_gptoss', '--reasoning_parser=openai_gptoss']), []);
});

test('model.id, servedName and quantization may not start with "-": vLLM would read them as flags', (t) => {
  for (const key of ['id', 'servedName', 'quantization']) {
    const p = problems(parseConfig(`model:\n  ${key}: "--trust-remote-code"\n`, F));
    t.deepEqual(p.length, 1, p.join('\n'));
    t.regex(
      p[0] ?? '',
      new RegExp(
        `^${F}:2:\\d+: model\\.${key}: must not start with "-": vLLM would read "--trust-remote-code" as a flag`,
      ),
    );
  }
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
  // Their families: the loader's LD_*, Python's that load code, the cache's other names, the CAs.
  [
    'LD_AUDIT',
    'container:\n  env:\n    LD_AUDIT: /x.so\n',
    /:3:15: container\.env\.LD_AUDIT: LD_AUDIT is refused: the dyn/,
  ],
  ['LD_BIND_NOW (LD_*)', 'container:\n  env:\n    LD_BIND_NOW: 1\n', /LD_BIND_NOW is refused: the dynamic loader/],
  ['HF_HUB_CACHE', 'container:\n  env:\n    HF_HUB_CACHE: /x\n', /HF_HUB_CACHE is refused: it moves the model cache/],
  ['TRANSFORMERS_CACHE', 'container:\n  env:\n    TRANSFORMERS_CACHE: /x\n', /TRANSFORMERS_CACHE is refused: it moves/],
  [
    'HUGGINGFACE_HUB_CACHE',
    'container:\n  env:\n    HUGGINGFACE_HUB_CACHE: /x\n',
    /HUGGINGFACE_HUB_CACHE is refused: it/,
  ],
  [
    'REQUESTS_CA_BUNDLE',
    'container:\n  env:\n    REQUESTS_CA_BUNDLE: /x.pem\n',
    /REQUESTS_CA_BUNDLE is refused: .*HF token/,
  ],
  ['SSL_CERT_FILE', 'container:\n  env:\n    SSL_CERT_FILE: /x.pem\n', /SSL_CERT_FILE is refused: .*certificate/],
  ['CURL_CA_BUNDLE', 'container:\n  env:\n    CURL_CA_BUNDLE: /x.pem\n', /CURL_CA_BUNDLE is refused/],
  [
    'VLLM_ALLOW_RUNTIME_LORA_UPDATING',
    'container:\n  env:\n    VLLM_ALLOW_RUNTIME_LORA_UPDATING: "1"\n',
    /VLLM_ALLOW_RUNTIME_LORA_UPDATING is refused: API clients could load/,
  ],
  [
    'PYTHONUSERBASE',
    'container:\n  env:\n    PYTHONUSERBASE: /x\n',
    /PYTHONUSERBASE is refused: it makes Python load other code/,
  ],
  ['PYTHONPYCACHEPREFIX', 'container:\n  env:\n    PYTHONPYCACHEPREFIX: /x\n', /PYTHONPYCACHEPREFIX is refused/],
  ['BASH_ENV', 'container:\n  env:\n    BASH_ENV: /x.sh\n', /BASH_ENV is refused: .*entrypoint/],
  [
    'VLLM_LOGGING_CONFIG_PATH',
    'container:\n  env:\n    VLLM_LOGGING_CONFIG_PATH: /x\n',
    /is refused: a logging config/,
  ],
  ['NCCL_NET_PLUGIN', 'container:\n  env:\n    NCCL_NET_PLUGIN: x\n', /NCCL_NET_PLUGIN is refused: .*library/],
  ['paths.huggingface: /', 'paths:\n  huggingface: /\n', /\/ is a system folder/],
  ['paths.huggingface: /etc', 'paths:\n  huggingface: /etc\n', /\/etc is a system folder/],
  ['paths.encodings: /var/run', 'paths:\n  encodings: /var/run\n', /\/var\/run is a system folder/],
  [
    'paths.huggingface: /vllm/../etc',
    'paths:\n  huggingface: /vllm/../etc\n',
    /\/etc \(\/vllm\/\.\.\/etc once normalised\) is a system folder/,
  ],
  // Sensitive places refused by prefix, not only by name.
  ['paths.huggingface: /root/.ssh', 'paths:\n  huggingface: /root/.ssh\n', /\/root\/\.ssh is in root's home folder/],
  ['paths.huggingface: /home/alice', 'paths:\n  huggingface: /home/alice\n', /\/home\/alice is in a home folder/],
  [
    'paths.encodings: /var/spool/cron',
    'paths:\n  encodings: /var/spool/cron\n',
    /\/var\/spool\/cron is in the system's spool/,
  ],
  [
    'paths.huggingface: /var/lib/gptoss-supervisor',
    'paths:\n  huggingface: /var/lib/gptoss-supervisor\n',
    /\/var\/lib\/gptoss-supervisor is in the supervisor's own state/,
  ],
  [
    'paths.huggingface: /var/lib/docker/volumes/x',
    'paths:\n  huggingface: /var/lib/docker/volumes/x\n',
    /\/var\/lib\/docker\/volumes\/x is in a container engine's state/,
  ],
  [
    'paths.cache: /var/backups',
    'paths:\n  cache: /var/backups\n',
    /paths\.cache: \/var\/backups is in the system's backups/,
  ],
  ['paths.cache: /boot/efi', 'paths:\n  cache: /boot/efi\n', /paths\.cache: \/boot\/efi is a system folder/],
  // Control characters in what goes on the command line, into the environment or into a path.
  [
    'a newline in servedName',
    'model:\n  servedName: "gpt\\nExecStartPre=/bin/sh"\n',
    /:2:15: model\.servedName: must not contain control characters \(found "\\n"\)/,
  ],
  ['a tab in model.id', 'model:\n  id: "openai/gpt\\t"\n', /:2:7: model\.id: must not contain control characters/],
  [
    'a carriage return in an extraArgs item',
    'model:\n  extraArgs: ["--max-num-seqs=1\\r"]\n',
    /:2:15: model\.extraArgs\.0: must not contain control characters/,
  ],
  [
    'a newline in an env value',
    'container:\n  env:\n    NOTE: "a\\nb"\n',
    /:3:11: container\.env\.NOTE: must not contain control characters/,
  ],
  ['a newline in a mount path', 'paths:\n  cache: "/vllm/c\\nd"\n', /:2:10: paths\.cache: must not contain control/],
  ['a newline in hfToken.file', 'hfToken:\n  file: "/etc/x\\ny"\n', /:2:9: hfToken\.file: must not contain control/],
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

test('a risky variable of a family is allowed once listed, and harmless Python settings need nothing', (t) => {
  const r = parseConfig(
    'container:\n  env: {LD_AUDIT: /x.so, SSL_CERT_FILE: /ca.pem, PYTHONUNBUFFERED: "1"}\n' +
      '  allowEnv: [LD_AUDIT, SSL_CERT_FILE]\n',
    F,
  );
  t.true(r.ok, problems(r).join('\n'));
});

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
    container: {
      ...base.container,
      // A secret by its look, under a name that says nothing: a proxy's password.
      env: { VLLM_API_KEY: 'sk-env-0123456789', HTTPS_PROXY: 'http://ops:proxy-pw-0123@proxy.lan:3128' },
    },
  };
  const spec = buildSpec(config, undefined);
  const shown = renderDockerRun(spec);
  for (const secret of ['sk-live-0123456789', 'pw-0123456789', 'sk-env-0123456789', 'proxy-pw-0123'])
    t.false(shown.includes(secret), secret);
  t.regex(shown, /-e HTTPS_PROXY=\*{8}/);
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
  const dir = await tempDir(t, 'gptoss-hostile-');
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
  const dir = await tempDir(t, 'gptoss-state-');
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
  const dir = await tempDir(t, 'gptoss-state-');
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

test('the model open beyond loopback with no API key: doctor warns, the start-up check warns, status says so', (t) => {
  const cfg = (text: string) => {
    const r = parseConfig(text, F);
    if (!r.ok) throw new Error(problems(r).join('\n'));
    return r.config;
  };
  const open = cfg('container:\n  bindAddress: ""\n');
  const warning = exposureWarning(exposureOf(open));
  t.is(
    warning,
    `the model's API (port 8000) is open on every interface (container.bindAddress "") with no API key: anyone ` +
      'who reaches this host can use it; set gate.apiKeyFile, or container.bindAddress: 127.0.0.1 to keep it on ' +
      'this machine',
  );
  // doctor and the pre-start checks (whose warnings the daemon logs once at start) say it as a warning.
  const check = evaluate({ exposure: exposureOf(open) }).find((r) => r.id === 'exposure');
  t.is(check?.status, 'warn');
  t.regex(check?.fix ?? '', /^set gate\.apiKeyFile, or container\.bindAddress: 127\.0\.0\.1/);
  // status (and D-Bus, and status --json) carry it.
  const p = propsOf(initialState(0), 'serving', { ...ctx0, exposure: warning ?? '' });
  t.is(p.Exposure, warning ?? 'none');
  t.regex(humanStatus(p), /\n {2}WARNING: {4}the model's API \(port 8000\) is open on every interface/);
  t.is(jsonOf(p)['exposure'], warning);
  // Another address, the gate off: the key is vLLM's own.
  t.regex(
    exposureWarning(exposureOf(cfg('container:\n  bindAddress: 192.0.2.7\ngate:\n  enabled: false\n'))) ?? '',
    /open on 192\.0\.2\.7 \(container\.bindAddress\) with no API key.*set VLLM_API_KEY in container\.env/,
  );
  // None: loopback; a key file at the gate; VLLM_API_KEY in the container.
  for (const text of [
    'container:\n  bindAddress: 127.0.0.1\n',
    'container:\n  bindAddress: "::1"\n',
    'container:\n  bindAddress: ""\ngate:\n  apiKeyFile: /etc/gptoss/api_keys\n',
    'container:\n  bindAddress: 0.0.0.0\n  env:\n    VLLM_API_KEY: k-12345\n',
  ]) {
    const e = exposureOf(cfg(text));
    t.is(exposureWarning(e), undefined, text);
    t.is(evaluate({ exposure: e })[0]?.status, 'pass', text);
    t.is(propsOf(initialState(0), 'serving', ctx0).Exposure, '');
  }
  t.notRegex(humanStatus(propsOf(initialState(0), 'serving', ctx0)), /WARNING/);
});

test('a problem never quotes the value of a URL or a secret (config errors reach the journal, status, D-Bus)', (t) => {
  const SECRET = 'T0123/B0456/xoxb-SECRET-part';
  const rows: Array<[string, RegExp]> = [
    // A Slack URL is a secret, an ntfy topic nearly one: wrong in each way the schema sees.
    [`alerts:\n  webhooks:\n    - name: s\n      url: "ftp://hooks.example/${SECRET}"\n`, /alerts\.webhooks\.0\.url/],
    [`alerts:\n  webhooks:\n    - name: s\n      url: "https://u:SECRETpw@ntfy.example/t"\n`, /user or password/],
    [`alerts:\n  webhooks:\n    - name: s\n      url: "http://ntfy.example/${SECRET}"\n      tokenFile: /t\n`, /http:/],
    [`alerts:\n  webhooks:\n    - name: s\n      urlFile: "${SECRET}"\n`, /absolute path/],
    [`alerts:\n  webhooks:\n    - name: s\n      tokenFile: "${SECRET}"\n      url: https://x.example/\n`, /absolute/],
    [`gate:\n  apiKeyFile: "${SECRET}"\n`, /absolute path/],
    [`container:\n  env:\n    MY_VAR: ["${SECRET}"]\n`, /container\.env/],
  ];
  for (const [text, want] of rows) {
    const p = problems(parseConfig(text, F));
    t.true(p.length > 0, text);
    t.regex(p.join('\n'), want, text);
    t.notRegex(p.join('\n'), /SECRET/, `the value is quoted: ${p.join('\n')}`);
  }
  // A value that is no secret is still quoted, which helps.
  t.regex(problems(parseConfig('container:\n  port: 99999\n', F)).join('\n'), /got 99999/);
});

test('the IP firewall allows only what the config names: never any, never metadata, the LAN or multicast', (t) => {
  const never = ['169.254.169.254', '10.0.0.1', '172.17.0.1', '192.168.1.1', '100.64.0.1', '224.0.0.251', '0.0.0.1'];
  const none = (allow: readonly string[]) => {
    t.false(
      allow.some((a) => a === 'any' || a === '0.0.0.0/0' || a === '::/0' || a === '::/1'),
      allow.join(' '),
    );
    for (const ip of never) t.false(coversV4(allow, ip), `${ip} is allowed`);
  };
  // The internet, by blocks: the public addresses are in it, none of the others.
  none(PUBLIC);
  for (const ip of ['1.1.1.1', '8.8.8.8', '172.32.0.1', '100.128.0.1', '223.255.255.255'])
    t.true(coversV4(PUBLIC, ip), ip);
  // A scraper and a webhook at an address: those only.
  t.deepEqual(
    ipAllow({ allowFrom: ['192.0.2.2/32'], webhooks: [{ name: 'box', host: '192.0.2.9', addresses: ['192.0.2.9'] }] })
      .allow,
    ['192.0.2.2/32', '192.0.2.9'],
  );
  // A service by name (its addresses change): the internet, never a private range.
  const ntfy = ipAllow({ allowFrom: [], webhooks: [{ name: 'n', host: 'ntfy.sh', addresses: ['159.203.148.75'] }] });
  none(ntfy.allow);
  t.true(coversV4(ntfy.allow, '159.203.148.75'));
  // A LAN host by name: its address now (and a note), not its network; one that does not resolve: the internet.
  const lan = ipAllow({ allowFrom: [], webhooks: [{ name: 'l', host: 'alerts.lan', addresses: ['10.0.0.7'] }] });
  t.deepEqual(lan.allow, ['10.0.0.7']);
  t.regex(lan.notes.join('\n'), /alerts\.lan is 10\.0\.0\.7 now/);
  const gone = ipAllow({ allowFrom: [], webhooks: [{ name: 'g', host: 'gone.example', addresses: [] }] });
  none(gone.allow);
  t.regex(gone.notes.join('\n'), /does not resolve now/);
  // Nothing named: nothing beyond loopback.
  t.deepEqual(ipAllow({ allowFrom: [], webhooks: [] }).allow, []);
});
