import test from 'ava';
import { configSchema, defaultConfig } from '../../src/config/schema.js';
import { MASK, renderDockerRun } from '../../src/container/docker-run.js';
import { buildSpec, deviceRequests, specHash } from '../../src/container/spec.js';
import { GUIDE_COMMAND, GUIDE_IMAGE, GUIDE_NAME, guideOption, VLLM_SERVE, withToken } from '../fixtures/guide.js';

/** The config without the gate (gate.enabled: false): the container publishes the port itself, as the guide. */
const GUIDE = configSchema.parse({ gate: { enabled: false } });

// The guide's `docker run` (test/fixtures/guide.ts), flag by flag, as the Engine API body Docker makes of it.
test('without the gate, the default spec is the guide command', (t) => {
  const { name, body } = buildSpec(GUIDE, 'hf_secret');
  t.is(name, GUIDE_NAME);
  t.is(body.Image, GUIDE_IMAGE);
  t.deepEqual(body.Cmd, [...VLLM_SERVE]);
  t.deepEqual(body.Env, withToken(guideOption('-e'), 'hf_secret'));
  t.deepEqual(body.ExposedPorts, { '8000/tcp': {} });
  t.is(body.HostConfig.IpcMode, 'host');
  t.deepEqual(body.HostConfig.Ulimits, [
    { Name: 'memlock', Soft: -1, Hard: -1 },
    { Name: 'stack', Soft: 67108864, Hard: 67108864 },
  ]);
  t.deepEqual(body.HostConfig.PortBindings, { '8000/tcp': [{ HostIp: '', HostPort: '8000' }] });
  t.deepEqual(body.HostConfig.Binds, [
    ...guideOption('-v'),
    // paths.cache: vLLM's compile and JIT caches, kept across recreates.
    '/vllm/cache/vllm:/root/.cache/vllm',
    '/vllm/cache/flashinfer:/root/.cache/flashinfer',
    '/vllm/cache/triton:/root/.triton/cache',
    '/vllm/cache/cuda:/root/.nv/ComputeCache',
  ]);
  t.deepEqual(body.HostConfig.DeviceRequests, [
    { Driver: '', Count: -1, DeviceIDs: null, Capabilities: [['gpu']], Options: {} },
  ]);
  t.deepEqual(body.HostConfig.RestartPolicy, { Name: 'no', MaximumRetryCount: 0 });
});

test('with the gate (the default), only the port differs: published on loopback, for the gate', (t) => {
  const gated = buildSpec(defaultConfig(), 'x');
  const guide = buildSpec(GUIDE, 'x');
  // upstreamPort auto: Docker picks a free loopback port at each start.
  t.deepEqual(gated.body.HostConfig.PortBindings, { '8000/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] });
  t.deepEqual(gated.published, { host: '127.0.0.1', port: 0 });
  t.deepEqual(gated.direct, { HostIp: '', HostPort: '8000' }, "the guide's own binding, kept until a recreate");
  const { PortBindings: _a, ...hostGated } = gated.body.HostConfig;
  const { PortBindings: _b, ...hostGuide } = guide.body.HostConfig;
  t.deepEqual(
    { ...gated.body, HostConfig: hostGated, Labels: {} },
    { ...guide.body, HostConfig: hostGuide, Labels: {} },
  );
  t.deepEqual(guide.published, { host: '0.0.0.0', port: 8000 });
  t.is(guide.direct, undefined);
  const other = buildSpec(configSchema.parse({ gate: { upstreamPort: 18123 } }), 'x');
  t.deepEqual(other.body.HostConfig.PortBindings, { '8000/tcp': [{ HostIp: '127.0.0.1', HostPort: '18123' }] });
});

test('labels mark the container as managed and carry the spec hash', (t) => {
  const s = buildSpec(defaultConfig(), 'x');
  t.deepEqual(s.body.Labels, { 'org.gptoss.managed': 'true', 'org.gptoss.spec-hash': s.hash });
  t.regex(s.hash, /^[0-9a-f]{64}$/);
});

test('the hash ignores the token value and label order, but not the spec', (t) => {
  const c = defaultConfig();
  t.is(buildSpec(c, 'a').hash, buildSpec(c, 'b').hash);
  const changed = configSchema.parse({ model: { gpuMemoryUtilization: 0.8 } });
  t.not(buildSpec(changed, 'a').hash, buildSpec(c, 'a').hash);
  const s = buildSpec(c, 'a');
  t.is(specHash({ ...s.body, Labels: { z: '1' } }), s.hash);
});

test('a supervisor-only setting does not change the hash', (t) => {
  const base = buildSpec(defaultConfig(), 'a').hash;
  const tuned = configSchema.parse({
    container: { stopTimeout: '2m', stopOnExit: false },
    health: { liveness: { failureThreshold: 9 } },
    restart: { maxDelay: '1h' },
  });
  t.is(buildSpec(tuned, 'a').hash, base);
});

test('no token: the variable is left out', (t) => {
  t.deepEqual(buildSpec(defaultConfig(), undefined).body.Env, ['TIKTOKEN_ENCODINGS_BASE=/etc/encodings']);
});

const gpus: [unknown, unknown][] = [
  ['all', [{ Driver: '', Count: -1, DeviceIDs: null, Capabilities: [['gpu']], Options: {} }]],
  ['none', []],
  [2, [{ Driver: '', Count: 2, DeviceIDs: null, Capabilities: [['gpu']], Options: {} }]],
  [[0, 'GPU-1'], [{ Driver: '', Count: 0, DeviceIDs: ['0', 'GPU-1'], Capabilities: [['gpu']], Options: {} }]],
];
for (const [input, want] of gpus) {
  test(`gpus ${JSON.stringify(input)}`, (t) => t.deepEqual(deviceRequests(input as never), want as never));
}

test('config maps into the body', (t) => {
  const c = configSchema.parse({
    model: { extraArgs: ['--max-num-seqs', '64'] },
    container: {
      name: 'x1',
      image: 'img:1',
      port: 9000,
      bindAddress: '127.0.0.1',
      ulimits: { memlock: 8388608 },
      env: { FOO: 'bar' },
    },
    paths: { encodings: '/e', huggingface: '/h', cache: null },
    gate: { enabled: false },
  });
  const { body } = buildSpec(c, undefined);
  t.deepEqual(body.Cmd.slice(-2), ['--max-num-seqs', '64']);
  t.deepEqual(body.HostConfig.PortBindings, { '8000/tcp': [{ HostIp: '127.0.0.1', HostPort: '9000' }] });
  t.deepEqual(body.HostConfig.Binds, ['/h:/root/.cache/huggingface', '/e:/etc/encodings:ro']);
  t.deepEqual(body.HostConfig.Ulimits[0], { Name: 'memlock', Soft: 8388608, Hard: 8388608 });
  t.true(body.Env.includes('FOO=bar'));
});

test('render prints every flag of the guide, one per line', (t) => {
  const out = renderDockerRun(buildSpec(GUIDE, MASK), 'credential hf_token');
  // The guide's lines as it prints them, the token masked.
  for (const line of withToken(GUIDE_COMMAND.split('\n'), '********'))
    t.true(out.split('\n').includes(line), `missing line: ${line}\n${out}`);
  t.true(out.includes('# HF_TOKEN: from credential hf_token, value hidden'));
});

test('render never shows a token, even if the spec was built with one', (t) => {
  const out = renderDockerRun(buildSpec(defaultConfig(), 'hf_REALSECRET'), 'file /x');
  t.false(out.includes('hf_REALSECRET'));
  t.true(out.includes('HF_TOKEN=********'));
});

test('render quotes for the shell and shows device ids and a bind address', (t) => {
  const c = configSchema.parse({
    container: { gpus: [0, 1], bindAddress: '127.0.0.1', env: { GREETING: "it's here" } },
    gate: { enabled: false },
  });
  const out = renderDockerRun(buildSpec(c, undefined));
  t.true(out.includes(`  --gpus '"device=0,1"' \\`));
  t.true(out.includes('  -p 127.0.0.1:8000:8000 \\'));
  t.true(out.includes(`  -e 'GREETING=it'\\''s here' \\`));
});
