// Reconcile against the real engine with the stand-in image: create, adopt, drift, race.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { configSchema, defaultConfig } from '../../src/config/schema.js';
import { sameSpec } from '../../src/container/same.js';
import { buildSpec } from '../../src/container/spec.js';
import { Engine } from '../../src/docker/engine.js';
import { convergeContainer } from '../../src/docker/converge.js';
import { ImageMissing } from '../../src/docker/errors.js';
import { EXIT } from '../../src/cli/exit.js';
import {
  brief,
  countNamed,
  docker,
  freePort,
  makeDirs,
  removeContainer,
  STANDIN,
  TEST_MEMLOCK,
  testConfig,
  uniqueName,
} from '../helpers/docker.js';
import { DOCKER_RUN, GUIDE_IMAGE, GUIDE_NAME, withToken } from '../fixtures/guide.js';

const engine = new Engine();
const TOKEN = 'hf_test_token';
const ensure = (cfg: ReturnType<typeof testConfig>) =>
  convergeContainer(engine, buildSpec(cfg, TOKEN), TOKEN, { stopTimeoutMs: cfg.container.stopTimeout });

test.before(async () => {
  // No Docker, no pass: this must fail loudly in CI rather than skip.
  await engine.ping();
  await docker(['image', 'inspect', STANDIN]);
});

/**
 * The guide's command (test/fixtures/guide.ts), word for word, with the image, name and port made the test's own
 * and HF_TOKEN set; `create` leaves out `-d`. `opts` put the memlock this machine allows and the test's folders.
 */
function guideArgs(
  verb: 'create' | 'run',
  name: string,
  port: number,
  image: string,
  opts: { memlock?: number; encodings?: string; huggingface?: string } = {},
): string[] {
  const { memlock = -1, huggingface = '/vllm/huggingface', encodings = '/vllm/encodings' } = opts;
  // The guide's word -> the test's own.
  const own = new Map([
    ['run', verb],
    ['memlock=-1', `memlock=${memlock}`],
    ['8000:8000', `${port}:8000`],
    ['/vllm/huggingface:/root/.cache/huggingface', `${huggingface}:/root/.cache/huggingface`],
    ['/vllm/encodings:/etc/encodings:ro', `${encodings}:/etc/encodings:ro`],
    [GUIDE_NAME, name],
    [GUIDE_IMAGE, image],
  ]);
  const words = withToken(DOCKER_RUN, TOKEN).map((w) => own.get(w) ?? w);
  return verb === 'run' ? words : words.filter((w) => w !== '-d');
}

test('parity: the default spec creates the same container as the guide command', async (t) => {
  const port = await freePort();
  const mine = uniqueName('parity-mine');
  const guide = uniqueName('parity-guide');
  t.teardown(() => Promise.all([removeContainer(mine), removeContainer(guide)]));
  const base = defaultConfig();
  // paths.cache: null and no gate is exactly the guide's container (no cache mounts, its own port).
  const cfg = configSchema.parse({
    container: { name: mine, image: STANDIN, port },
    paths: { cache: null },
    gate: { enabled: false },
  });
  await docker(guideArgs('create', guide, port, STANDIN));
  await engine.create(buildSpec(cfg, TOKEN));
  const [a, b] = await Promise.all([engine.inspect(mine), engine.inspect(guide)]);
  if (!a || !b) return t.fail('containers not created');
  t.is(base.container.name, 'vllm-gpt-oss');
  t.is(a.Name, `/${mine}`);
  t.is(a.Config.Image, b.Config.Image);
  t.deepEqual(a.Config.Cmd, b.Config.Cmd);
  t.deepEqual([...(a.Config.Env ?? [])].sort(), [...(b.Config.Env ?? [])].sort());
  t.is(a.HostConfig.IpcMode, 'host');
  t.is(a.HostConfig.IpcMode, b.HostConfig.IpcMode);
  t.deepEqual(a.HostConfig.Ulimits, b.HostConfig.Ulimits);
  t.deepEqual(a.HostConfig.PortBindings, b.HostConfig.PortBindings);
  // The CLI stores -v mounts in no particular order; what matters is the set.
  t.deepEqual([...(a.HostConfig.Binds ?? [])].sort(), [...(b.HostConfig.Binds ?? [])].sort());
  t.deepEqual(a.HostConfig.DeviceRequests, b.HostConfig.DeviceRequests);
  const raw = await docker([
    'inspect',
    '--format',
    '{{json .HostConfig.RestartPolicy}} {{json .Config.ExposedPorts}}',
    mine,
  ]);
  const rawGuide = await docker([
    'inspect',
    '--format',
    '{{json .HostConfig.RestartPolicy}} {{json .Config.ExposedPorts}}',
    guide,
  ]);
  t.is(raw, rawGuide);
  // And the comparison used for adoption agrees, field by field (the guide container has no labels).
  const imageEnv = await engine.imageEnv(b.Image);
  t.deepEqual(sameSpec(buildSpec(cfg, TOKEN), b, imageEnv).differences, []);
});

test('absent -> created and started, labelled with the spec hash', async (t) => {
  const name = uniqueName('absent');
  t.teardown(() => removeContainer(name));
  const cfg = testConfig(name, await freePort(), await makeDirs());
  const res = await ensure(cfg);
  t.is(res.outcome, 'created');
  const c = await engine.inspect(name);
  t.true(c?.State.Running);
  t.is(c?.Config.Labels?.['org.gptoss.spec-hash'], buildSpec(cfg, TOKEN).hash);
  t.is(c?.Config.Labels?.['org.gptoss.managed'], 'true');
});

test('equal -> adopted, not restarted', async (t) => {
  const name = uniqueName('equal');
  t.teardown(() => removeContainer(name));
  const cfg = testConfig(name, await freePort(), await makeDirs());
  await ensure(cfg);
  const before = await brief(name);
  const res = await ensure(cfg);
  t.is(res.outcome, 'adopted');
  t.is(res.reason, 'spec hash matches');
  t.deepEqual(await brief(name), before);
});

test('a hand-made guide container is adopted as is, cache mounts left for its next recreate', async (t) => {
  const name = uniqueName('guide');
  const port = await freePort();
  const dirs = await makeDirs();
  t.teardown(() => removeContainer(name));
  await docker(
    guideArgs('run', name, port, STANDIN, {
      memlock: TEST_MEMLOCK,
      encodings: dirs.encodings,
      huggingface: dirs.huggingface,
    }),
  );
  const before = await brief(name);
  t.true(before.Running);
  // The guide's own values, but for the test's name, port, dirs and the memlock this machine allows.
  const cfg = configSchema.parse({
    container: { name, port, image: STANDIN, ulimits: { memlock: TEST_MEMLOCK } },
    paths: { encodings: dirs.encodings, huggingface: dirs.huggingface },
  });
  const res = await ensure(cfg);
  t.is(res.outcome, 'adopted', res.reason);
  // With the gate (the default) the guide's own port stays too, until the recreate moves it to loopback.
  t.regex(
    res.reason,
    new RegExp(
      `^spec matches field by field; kept as it is until the next recreate \\(port 127\\.0\\.0\\.1::8000 missing; ` +
        `port ${port}:8000 not wanted; volume /vllm/cache/vllm:`,
    ),
  );
  t.deepEqual(await brief(name), before);
  // Stopped, it is recreated with them: a recreate costs no more than a start.
  await docker(['stop', '-t', '1', name]);
  const again = await ensure(cfg);
  t.is(again.outcome, 'recreated', again.reason);
  const binds = await docker(['inspect', '-f', '{{json .HostConfig.Binds}}', name]);
  t.regex(binds, /\/vllm\/cache\/vllm:\/root\/\.cache\/vllm/);
});

test('drift (gpuMemoryUtilization 0.80) -> stopped, removed, recreated', async (t) => {
  const name = uniqueName('drift');
  t.teardown(() => removeContainer(name));
  const port = await freePort();
  const dirs = await makeDirs();
  await ensure(testConfig(name, port, dirs));
  const before = await brief(name);
  const res = await ensure(testConfig(name, port, dirs, { model: { gpuMemoryUtilization: 0.8 } }));
  t.is(res.outcome, 'recreated');
  t.regex(res.reason, /--gpu-memory-utilization 0\.85/);
  const after = await engine.inspect(name);
  t.not(after?.Id, before.Id);
  t.true(after?.State.Running);
  t.true(after?.Config.Cmd?.includes('0.8'));
  t.is(await countNamed(name), 1);
});

test('stopped with the same spec -> started, same container', async (t) => {
  const name = uniqueName('stopped');
  t.teardown(() => removeContainer(name));
  const cfg = testConfig(name, await freePort(), await makeDirs());
  await ensure(cfg);
  const before = await brief(name);
  await docker(['stop', '-t', '5', name]);
  const res = await ensure(cfg);
  t.is(res.outcome, 'started');
  const after = await brief(name);
  t.is(after.Id, before.Id);
  t.true(after.Running);
});

test('stopped, and the token changed -> recreated with the new token', async (t) => {
  const name = uniqueName('token');
  t.teardown(() => removeContainer(name));
  const cfg = testConfig(name, await freePort(), await makeDirs());
  await ensure(cfg);
  const before = await brief(name);
  await docker(['stop', '-t', '5', name]);
  const res = await convergeContainer(engine, buildSpec(cfg, 'hf_new'), 'hf_new', { stopTimeoutMs: 5000 });
  t.is(res.outcome, 'recreated');
  const after = await engine.inspect(name);
  t.not(after?.Id, before.Id);
  t.true(after?.Config.Env?.includes('HF_TOKEN=hf_new'));
});

test('two reconciles at once from absent -> one container', async (t) => {
  const name = uniqueName('race');
  t.teardown(() => removeContainer(name));
  const cfg = testConfig(name, await freePort(), await makeDirs());
  const [a, b] = await Promise.all([ensure(cfg), ensure(cfg)]);
  t.is(await countNamed(name), 1);
  const c = await engine.inspect(name);
  t.true(c?.State.Running);
  t.is(a.id, c?.Id ?? 'none');
  t.is(b.id, c?.Id ?? 'none');
});

test('two reconciles at once on drift -> one container with the new spec', async (t) => {
  const name = uniqueName('race-drift');
  t.teardown(() => removeContainer(name));
  const port = await freePort();
  const dirs = await makeDirs();
  await ensure(testConfig(name, port, dirs));
  const next = testConfig(name, port, dirs, { model: { maxModelLen: 16384 } });
  await Promise.all([ensure(next), ensure(next)]);
  t.is(await countNamed(name), 1);
  const c = await engine.inspect(name);
  t.true(c?.State.Running);
  t.is(c?.Config.Labels?.['org.gptoss.spec-hash'], buildSpec(next, TOKEN).hash);
});

test('the image is missing -> a clear error, nothing created', async (t) => {
  const name = uniqueName('noimage');
  t.teardown(() => removeContainer(name));
  const cfg = testConfig(name, await freePort(), await makeDirs(), { container: { image: 'gptoss-no-such-image:0' } });
  const err = await t.throwsAsync(ensure(cfg), { instanceOf: ImageMissing });
  t.is(
    err?.message,
    'image gptoss-no-such-image:0 is not on this host; pull it with `docker pull gptoss-no-such-image:0`',
  );
  t.is(await countNamed(name), 0);
});

function cli(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const main = new URL('../../src/cli/main.js', import.meta.url).pathname;
  return new Promise((resolve) => {
    execFile(process.execPath, [main, ...args], { env }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('CLI ensure: exit 2 when it changed something, 0 when already right, 8 without the image', async (t) => {
  const name = uniqueName('cli');
  t.teardown(() => removeContainer(name));
  const dirs = await makeDirs();
  const port = await freePort();
  const file = join(dirs.root, 'config.yaml');
  const env = { ...process.env, HF_TOKEN: 'hf_cli_secret' };
  const yaml = (image: string) =>
    `container:\n  name: ${name}\n  image: ${image}\n  port: ${port}\n  bindAddress: 127.0.0.1\n  ulimits: {memlock: ` +
    `${TEST_MEMLOCK}}\n  stopTimeout: 5s\npaths:\n  encodings: ${dirs.encodings}\n  huggingface: ` +
    `${dirs.huggingface}\n`;
  await writeFile(file, yaml(STANDIN));
  const first = await cli(['ensure', '--config', file], env);
  t.is(first.code, 2, first.stderr);
  t.regex(first.stdout, new RegExp(`^${name} created \\([0-9a-f]{12}\\): no container with this name\\n$`));
  const second = await cli(['ensure', '--config', file], env);
  t.is(second.code, 0, second.stderr);
  t.regex(second.stdout, / adopted /);
  for (const out of [first, second]) t.false(`${out.stdout}${out.stderr}`.includes('hf_cli_secret'));
  await removeContainer(name);
  await writeFile(file, yaml('gptoss-no-such-image:0'));
  const third = await cli(['ensure', '--config', file], env);
  t.is(third.code, EXIT.image);
  t.regex(third.stderr, /is not on this host; pull it with `docker pull gptoss-no-such-image:0`/);
});

test('CLI ensure: an unreachable engine is exit 7 with what to check', async (t) => {
  const res = await cli(['ensure', '--config', new URL('../../../etc/gptoss/config.yaml', import.meta.url).pathname], {
    ...process.env,
    DOCKER_HOST: 'unix:///nonexistent/docker.sock',
  });
  t.is(res.code, EXIT.engine);
  t.regex(
    res.stderr,
    /the Docker engine does not answer \(ENOENT on ping\); check `systemctl status docker` and that this user may use /,
  );
  t.regex(res.stderr, /that this user may use \/nonexistent\/docker\.sock/);
});
