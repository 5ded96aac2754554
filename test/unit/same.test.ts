import test from 'ava';
import { configSchema } from '../../src/config/schema.js';
import { publishedOf, sameSpec, sameToken, type Inspected } from '../../src/container/same.js';
import { buildSpec } from '../../src/container/spec.js';
import { GUIDE_IMAGE, GUIDE_NAME, guideOption, VLLM_SERVE, withToken } from '../fixtures/guide.js';

/**
 * What `docker inspect` shows for a container made by hand with the guide's command (test/fixtures/guide.ts),
 * run with HF_TOKEN=tok; the image adds PATH and CUDA_VERSION.
 */
function guideContainer(): Inspected {
  return {
    Id: 'abc',
    Name: `/${GUIDE_NAME}`,
    Image: 'sha256:1',
    State: { Status: 'running', Running: true, ExitCode: 0, OOMKilled: false, StartedAt: '', FinishedAt: '' },
    Config: {
      Image: GUIDE_IMAGE,
      Cmd: [...VLLM_SERVE],
      Env: [...withToken(guideOption('-e'), 'tok'), 'PATH=/usr/bin', 'CUDA_VERSION=13.0'],
      Labels: { 'com.nvidia.build': '1' },
    },
    HostConfig: {
      IpcMode: 'host',
      Ulimits: [
        { Name: 'memlock', Soft: -1, Hard: -1 },
        { Name: 'stack', Soft: 67108864, Hard: 67108864 },
      ],
      PortBindings: { '8000/tcp': [{ HostIp: '', HostPort: '8000' }] },
      Binds: guideOption('-v'),
      DeviceRequests: [{ Driver: '', Count: -1, DeviceIDs: null, Capabilities: [['gpu']], Options: {} }],
    },
  };
}
const IMAGE_ENV = ['PATH=/usr/bin', 'CUDA_VERSION=13.0'];
/** Without the gate: the guide's own port binding is wanted. */
const GUIDE = configSchema.parse({ gate: { enabled: false } });
const spec = buildSpec(GUIDE, 'tok');

test('a hand-made guide container is the same spec', (t) => {
  const r = sameSpec(spec, guideContainer(), IMAGE_ENV);
  // Without the cache mounts (paths.cache): not drift; they come with the next recreate.
  t.is(r.same, true);
  t.deepEqual(r.differences, []);
  t.is(r.deferred?.length, 4);
  t.deepEqual(
    sameSpec(buildSpec({ ...GUIDE, paths: { ...GUIDE.paths, cache: null } }, undefined), guideContainer(), IMAGE_ENV),
    {
      same: true,
      differences: [],
      byLabel: false,
    },
  );
});

test('with the gate: a container publishing the guide port keeps it until its next recreate; another is drift', (t) => {
  const gated = buildSpec(configSchema.parse({ paths: { cache: null } }), 'tok');
  const r = sameSpec(gated, guideContainer(), IMAGE_ENV);
  t.is(r.same, true, 'adopted as it is: 8 minutes of service saved');
  t.deepEqual(r.deferred, ['port 127.0.0.1::8000 missing', 'port 8000:8000 not wanted']);
  const other = guideContainer();
  other.HostConfig.PortBindings = { '8000/tcp': [{ HostIp: '', HostPort: '8001' }] };
  const d = sameSpec(gated, other, IMAGE_ENV);
  t.is(d.same, false);
  t.deepEqual(d.differences, ['port 127.0.0.1::8000 missing', 'port 8001:8000 not wanted']);
  t.deepEqual(publishedOf(guideContainer()), { host: '0.0.0.0', port: 8000 });
  const picked = {
    ...guideContainer(),
    NetworkSettings: { Ports: { '8000/tcp': [{ HostIp: '127.0.0.1', HostPort: '40123' }] } },
  };
  t.deepEqual(publishedOf(picked), { host: '127.0.0.1', port: 40123 }, 'what Docker published wins');
});

test('the hash label is a fast path', (t) => {
  const c = guideContainer();
  c.Config.Labels = { 'org.gptoss.spec-hash': spec.hash };
  c.Config.Cmd = ['anything'];
  t.true(sameSpec(spec, c).byLabel);
});

/** Where the guide's --gpu-memory-utilization value sits in the command. */
const utilization = (c: Inspected) => c.Config.Cmd!.indexOf('--gpu-memory-utilization') + 1;

const edits: [string, (c: Inspected) => void, string][] = [
  [
    'utilization typed 0.80 matches 0.8',
    (c) => {
      c.Config.Cmd![utilization(c)] = '0.850';
    },
    '',
  ],
  [
    'rw mode spelled out',
    (c) => {
      c.HostConfig.Binds = guideOption('-v').map((v) => (v.endsWith(':ro') ? v : `${v}:rw`));
    },
    '',
  ],
  [
    'port bound on 0.0.0.0',
    (c) => {
      c.HostConfig.PortBindings = { '8000/tcp': [{ HostIp: '0.0.0.0', HostPort: '8000' }] };
    },
    '',
  ],
  [
    'token differs (not drift)',
    (c) => {
      c.Config.Env![0] = 'HF_TOKEN=other';
    },
    '',
  ],
  [
    'utilization changed',
    (c) => {
      c.Config.Cmd![utilization(c)] = '0.80';
    },
    'command: vllm serve openai/gpt-oss-120b --quantization mxfp4 --gpu-memory-utilization 0.80',
  ],
  [
    'image changed',
    (c) => {
      c.Config.Image = 'vllm:old';
    },
    'image: vllm:old (want nvcr.io/nvidia/vllm:25.09-py3)',
  ],
  [
    'ipc dropped',
    (c) => {
      c.HostConfig.IpcMode = 'private';
    },
    'ipc: private (want host)',
  ],
  [
    'ulimit missing',
    (c) => {
      c.HostConfig.Ulimits = [{ Name: 'stack', Soft: 67108864, Hard: 67108864 }];
    },
    'ulimit memlock=-1 missing',
  ],
  [
    'encodings writable',
    (c) => {
      c.HostConfig.Binds = guideOption('-v').map((v) => v.replace(/:ro$/, ''));
    },
    'volume /vllm/encodings:/etc/encodings:ro missing; volume /vllm/encodings:/etc/encodings not wanted',
  ],
  [
    'tiktoken env missing',
    (c) => {
      c.Config.Env = ['HF_TOKEN=tok', 'PATH=/usr/bin'];
    },
    'env TIKTOKEN_ENCODINGS_BASE=/etc/encodings missing',
  ],
  [
    'extra env',
    (c) => {
      c.Config.Env!.push('VLLM_DEBUG=1');
    },
    'env VLLM_DEBUG=1 not wanted',
  ],
  [
    'secret-looking extra env is not printed',
    (c) => {
      c.Config.Env!.push('API_KEY=abc');
    },
    'env API_KEY=(hidden) not wanted',
  ],
  [
    'image env overridden',
    (c) => {
      c.Config.Env![2] = 'PATH=/x';
    },
    'env PATH=/x not wanted',
  ],
  [
    'other port',
    (c) => {
      c.HostConfig.PortBindings = { '8000/tcp': [{ HostIp: '', HostPort: '8001' }] };
    },
    'port 8000:8000 missing; port 8001:8000 not wanted',
  ],
  [
    'no gpus',
    (c) => {
      c.HostConfig.DeviceRequests = null;
    },
    'gpus auto/gpu/count=-1 missing',
  ],
];
for (const [name, edit, want] of edits) {
  test(`compare: ${name}`, (t) => {
    const c = guideContainer();
    edit(c);
    const r = sameSpec(spec, c, IMAGE_ENV);
    if (want === '') t.deepEqual(r.differences, []);
    else t.true(r.differences.join('; ').startsWith(want), r.differences.join('; '));
    t.is(r.same, want === '');
  });
}

test('a bind address in config is compared', (t) => {
  const s = buildSpec(configSchema.parse({ container: { bindAddress: '127.0.0.1' }, gate: { enabled: false } }), 'tok');
  t.deepEqual(sameSpec(s, guideContainer(), IMAGE_ENV).differences, [
    'port 127.0.0.1:8000:8000 missing',
    'port 8000:8000 not wanted',
  ]);
});

const tokens: [string[], string | undefined, boolean][] = [
  [['HF_TOKEN=a'], 'a', true],
  [['HF_TOKEN=a'], 'b', false],
  [['HF_TOKEN='], undefined, true],
  [[], undefined, true],
  [[], 'a', false],
];
for (const [env, token, want] of tokens) {
  test(`sameToken ${JSON.stringify(env)} vs ${token}`, (t) => {
    const c = guideContainer();
    c.Config.Env = env;
    t.is(sameToken(c, token), want);
  });
}
