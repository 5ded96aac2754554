// `export`: Kubernetes objects valid against the Kubernetes OpenAPI schemas with probes equal to the config's,
// Quadlet keys that Podman documents, a Compose file with the same container; secrets never inline.
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { Deployment as K8sDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { Service } from 'kubernetes-models/v1/Service';
import { parse, parseAllDocuments } from 'yaml';
import { configSchema, defaultConfig, type Config } from '../../src/config/schema.js';
import { composeOf } from '../../src/export/compose.js';
import { deploymentOf } from '../../src/export/deployment.js';
import { CannotExpress, kubernetesOf } from '../../src/export/kubernetes.js';
import { quadletOf } from '../../src/export/quadlet.js';
import { CLI } from '../helpers/daemon.js';
import { GUIDE_IMAGE } from '../fixtures/guide.js';
import { tempDir } from '../helpers/temp.js';
import { unitWords } from '../helpers/unit-words.js';

const run = promisify(execFile);
const KEYS = new URL('../../../test/fixtures/quadlet/container-keys.txt', import.meta.url).pathname;

const cfg = (over: Record<string, unknown> = {}): Config => configSchema.parse(over);

/** The command the default config gives the image's entrypoint, flag by flag. */
const VLLM_ARGS = [
  'vllm',
  'serve',
  'openai/gpt-oss-120b',
  '--quantization',
  'mxfp4',
  '--gpu-memory-utilization',
  '0.85',
  '--max-model-len',
  '32768',
  '--served-model-name',
  'gpt-oss-120b',
];

interface Probe {
  httpGet: { path: string; port: number };
  periodSeconds: number;
  timeoutSeconds: number;
  failureThreshold?: number;
}

function k8s(c: Config) {
  const docs = parseAllDocuments(kubernetesOf(deploymentOf(c), 'config.yaml')).map((d) => d.toJS() as unknown);
  const dep = docs.find((d) => (d as { kind?: string })?.kind === 'Deployment') as Record<string, unknown>;
  const svc = docs.find((d) => (d as { kind?: string })?.kind === 'Service') as Record<string, unknown>;
  return { dep, svc };
}

test('kubernetes: the Deployment and Service validate against the Kubernetes OpenAPI schemas', (t) => {
  for (const c of [
    cfg(),
    cfg({ container: { gpus: 2, env: { VLLM_LOGGING_LEVEL: 'DEBUG' } } }),
    cfg({ container: { gpus: 'none' } }),
  ]) {
    const { dep, svc } = k8s(c);
    t.notThrows(() => new K8sDeployment(dep).validate());
    t.notThrows(() => new Service(svc).validate());
  }
  // The validator is not a rubber stamp.
  t.throws(() => new K8sDeployment({ metadata: { name: 'x' }, spec: { replicas: 'one' } } as never).validate());
});

test("kubernetes: probes equal the config's health settings; the start-up budget is failureThreshold x period", (t) => {
  const c = cfg({
    health: {
      startup: { period: '15s', timeout: '20m' },
      liveness: { period: '20s', timeout: '4s', failureThreshold: 5 },
      readiness: { period: '7s', timeout: '3s' },
    },
  });
  const { dep } = k8s(c);
  const spec = (dep['spec'] as { template: { spec: Record<string, unknown> } }).template.spec;
  const ctr = (spec['containers'] as Array<Record<string, unknown>>)[0]!;
  const s = ctr['startupProbe'] as Probe;
  const l = ctr['livenessProbe'] as Probe;
  const r = ctr['readinessProbe'] as Probe;
  t.deepEqual([s.httpGet.path, s.periodSeconds, s.timeoutSeconds], ['/health', 15, 4]);
  t.is(s.failureThreshold! * s.periodSeconds, 20 * 60, 'the budget: 80 x 15s = 20m');
  t.deepEqual([l.httpGet.path, l.periodSeconds, l.timeoutSeconds, l.failureThreshold], ['/health', 20, 4, 5]);
  t.deepEqual([r.httpGet.path, r.periodSeconds, r.timeoutSeconds], ['/v1/models', 7, 3]);
  t.is(spec['hostIPC'], true);
  t.is(spec['terminationGracePeriodSeconds'], 30);
  t.is((dep['spec'] as { strategy: { type: string } }).strategy.type, 'Recreate');
  t.deepEqual(ctr['args'], VLLM_ARGS, 'args, so the image entrypoint still runs');
  t.false('command' in ctr);
});

test('kubernetes: GPU device ids cannot be expressed: refused, said why', (t) => {
  const e = t.throws(() => kubernetesOf(deploymentOf(cfg({ container: { gpus: ['GPU-1234'] } })), 'c'), {
    instanceOf: CannotExpress,
  });
  t.regex(e.message, /container\.gpus lists device ids \(GPU-1234\).*set container\.gpus to a count/);
});

/** Keys of the [Container] section Podman's Quadlet accepts (test/fixtures/quadlet/container-keys.txt, cited there). */
async function quadletKeys(): Promise<Set<string>> {
  const text = await readFile(KEYS, 'utf8');
  return new Set(text.split('\n').filter((l) => l && !l.startsWith('#')));
}

test('quadlet: every key of [Container] is one Podman documents; only the sections Quadlet reads', async (t) => {
  const known = await quadletKeys();
  t.true(known.size > 50, `${known.size} documented keys`);
  for (const c of [cfg(), cfg({ container: { gpus: 2, bindAddress: '127.0.0.1' } })]) {
    const text = quadletOf(deploymentOf(c), 'c');
    let section = '';
    for (const line of text.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const sec = /^\[(\w+)\]$/.exec(line);
      if (sec) {
        section = sec[1]!;
        t.true(['Unit', 'Container', 'Service', 'Install'].includes(section), section);
        continue;
      }
      const key = line.split('=')[0]!;
      if (section === 'Container') t.true(known.has(key), `[Container] ${key} is not a Quadlet key`);
    }
    t.regex(text, /^Notify=healthy$/m);
    t.regex(text, /^HealthOnFailure=kill$/m);
    t.regex(text, /^HealthStartupRetries=90$/m, '15m of start-up budget at 10s');
  }
});

test('compose: the same container (image, command, env, ipc, ulimits, port, mounts, GPUs, stop grace)', (t) => {
  const c = cfg({ container: { bindAddress: '127.0.0.1', gpus: 1, stopTimeout: '45s' } });
  const doc = parse(composeOf(deploymentOf(c), 'c')) as { services: Record<string, Record<string, unknown>> };
  const s = doc.services['vllm-gpt-oss']!;
  t.is(s['image'], GUIDE_IMAGE);
  t.deepEqual(s['command'], VLLM_ARGS);
  t.is(s['ipc'], 'host');
  t.deepEqual(s['ulimits'], { memlock: { soft: -1, hard: -1 }, stack: { soft: 67108864, hard: 67108864 } });
  t.deepEqual(s['ports'], ['127.0.0.1:8000:8000']);
  t.is(s['stop_grace_period'], '45s');
  t.deepEqual((s['healthcheck'] as Record<string, unknown>)['retries'], 3);
  t.deepEqual(s['deploy'], { resources: { reservations: { devices: [{ capabilities: ['gpu'], count: 1 }] } } });
});

test('no export carries a secret: the token and secret env are references, secret flags masked', async (t) => {
  const dir = await tempDir(t, 'gptoss-export-');
  const token = 'hf_SECRETexport0123456789abcdefghij';
  await writeFile(join(dir, 'hf_token'), `${token}\n`, { mode: 0o600 });
  const config = join(dir, 'config.yaml');
  await writeFile(
    config,
    `hfToken:\n  file: ${join(dir, 'hf_token')}\ncontainer:\n  env:\n    VLLM_API_KEY: sk-apikey-secret\n` +
      `model:\n  extraArgs: ["--ssl-keyfile-password", "sk-flag-secret"]\n`,
  );
  for (const format of ['compose', 'kubernetes', 'quadlet']) {
    const { stdout } = await run(process.execPath, [CLI, 'export', '--format', format, '--config', config], {
      env: { ...process.env, HF_TOKEN: token },
    });
    for (const secret of [token, 'sk-apikey-secret', 'sk-flag-secret']) t.false(stdout.includes(secret), `${format}`);
    t.regex(stdout, /HF_TOKEN/);
    t.regex(stdout, /VLLM_API_KEY/);
    t.regex(stdout, /secret flag's value in model\.extraArgs is printed as \*{8}/);
  }
});

test('export: an unknown or missing format is a usage error; what cannot be expressed exits 5', async (t) => {
  const fail = (args: string[]) =>
    run(process.execPath, [CLI, 'export', ...args]).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );
  const dir = await tempDir(t, 'gptoss-export-');
  const config = join(dir, 'config.yaml');
  await writeFile(config, 'container:\n  gpus: [0, 1]\n');
  const unknown = await fail(['--format', 'helm', '--config', config]);
  t.is(unknown.code, 64);
  t.regex(unknown.stderr, /unknown format "helm"; use --format compose\|kubernetes\|quadlet/);
  t.is((await fail(['--config', config])).code, 64);
  const ids = await fail(['--format', 'kubernetes', '--config', config]);
  t.is(ids.code, 5);
  t.regex(ids.stderr, /container\.gpus lists device ids \(0, 1\)/);
});

test('quadlet: a newline, "%" or "$" in a value stays inside its word; no line is injected', (t) => {
  const base = defaultConfig();
  const evil = 'gpt\nExecStartPre=/bin/touch /tmp/pwned %n $HOME';
  const c: Config = {
    ...base,
    model: { ...base.model, servedName: evil, extraArgs: ['--chat-template', 'a\tb\r\x01%%'] },
    container: { ...base.container, env: { NOTE: `x\ny=%h $USER`, TOKENIZERS_PARALLELISM: 'false' } },
    paths: { ...base.paths, huggingface: '/vllm/h%i' },
    hfToken: { ...base.hfToken, file: '/etc/gptoss/tok\nExecStartPre=/bin/evil' },
  };
  const text = quadletOf(deploymentOf(c), '/etc/gptoss/config.yaml\nExecStartPost=/bin/evil');
  const keys = text.split('\n').filter((l) => l && !l.startsWith('#') && !l.startsWith('['));
  for (const l of keys) t.regex(l, /^[A-Za-z]+=/, l);
  t.false(/^ExecStart(Pre|Post)?=/m.test(text), text);
  const exec = /^Exec=(.*)$/m.exec(text)?.[1] ?? '';
  t.deepEqual(unitWords(exec), deploymentOf(c).args);
  const env = [...text.matchAll(/^Environment=(.*)$/gm)].map((m) => unitWords(m[1]!)[0]);
  t.deepEqual(env, ['TIKTOKEN_ENCODINGS_BASE=/etc/encodings', 'NOTE=x\ny=%h $USER', 'TOKENIZERS_PARALLELISM=false']);
  t.regex(text, /^Description=gpt\\nExecStartPre=\/bin\/touch \/tmp\/pwned %%n \$HOME on vLLM/m);
  t.regex(text, /^Volume=\/vllm\/h%%i:\/root\/\.cache\/huggingface$/m);
});

test('no export prints a value that looks like a secret, whatever its name: a proxy password, an HF token', (t) => {
  const base = defaultConfig();
  const hf = 'hf_abcdefghijklmnopqrstuvwxyz0123456789AB';
  const c: Config = {
    ...base,
    container: {
      ...base.container,
      env: { HTTPS_PROXY: 'http://ops:pw-0123456789@proxy.lan:3128', NOTE: hf, TOKENIZERS_PARALLELISM: 'false' },
    },
  };
  const d = deploymentOf(c);
  for (const [format, text] of [
    ['compose', composeOf(d, 'c')],
    ['kubernetes', kubernetesOf(d, 'c')],
    ['quadlet', quadletOf(d, 'c')],
  ] as const) {
    for (const secret of ['pw-0123456789', hf]) t.false(text.includes(secret), `${format}: ${secret}`);
    t.regex(text, /HTTPS_PROXY/, format);
    t.regex(text, /TOKENIZERS_PARALLELISM/, format);
  }
  t.deepEqual(
    d.secrets.map((s) => s.name),
    ['HF_TOKEN', 'HTTPS_PROXY', 'NOTE'],
  );
});
