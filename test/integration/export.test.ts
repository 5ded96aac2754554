// `export --format compose`, run for real with Debian's docker-compose against the test engine: the
// container it makes is the daemon's, field by field, and its healthcheck passes on the stand-in.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { stringify } from 'yaml';
import { configSchema } from '../../src/config/schema.js';
import { buildSpec } from '../../src/container/spec.js';
import { sameSpec } from '../../src/container/same.js';
import { Engine } from '../../src/docker/engine.js';
import { CLI } from '../helpers/daemon.js';
import { docker, freePort, makeDirs, removeContainer, testConfigRaw, uniqueName } from '../helpers/docker.js';

const run = promisify(execFile);
const engine = new Engine();
const TOKEN = 'hf_composeTOKEN0123456789abcdefghijk';

async function compose(file: string, project: string, ...args: string[]): Promise<string> {
  const { stdout, stderr } = await run('docker-compose', ['-f', file, '-p', project, ...args], {
    env: { ...process.env, HF_TOKEN: TOKEN },
  });
  return `${stdout}${stderr}`;
}

test('compose: the container docker-compose makes is the one the daemon makes, field by field', async (t) => {
  const dirs = await makeDirs();
  const port = await freePort();
  const mine = uniqueName('export-mine');
  const theirs = uniqueName('export-compose');
  const project = theirs.replace(/[^a-z0-9]/g, '');
  const health = { liveness: { period: '1s', timeout: '1s', failureThreshold: 3 } };
  // Compose runs the container without the supervisor, so without its gate: compared with the daemon's
  // container where it publishes the port itself.
  const rawFor = (name: string) =>
    testConfigRaw(name, port, dirs, { health, container: { gpus: 'all' }, gate: { enabled: false } });
  const file = join(dirs.root, 'config.yaml');
  await writeFile(file, stringify(rawFor(theirs)));
  const { stdout } = await run(process.execPath, [CLI, 'export', '--format', 'compose', '--config', file]);
  const composeFile = join(dirs.root, 'compose.yaml');
  await writeFile(composeFile, stdout);
  t.teardown(async () => {
    await compose(composeFile, project, 'down').catch(() => undefined);
    await Promise.all([removeContainer(mine), removeContainer(theirs)]);
  });
  await compose(composeFile, project, 'up', '-d');
  const cfgMine = configSchema.parse(rawFor(mine));
  await engine.create(buildSpec(cfgMine, TOKEN));
  const [a, b] = await Promise.all([engine.inspect(mine), engine.inspect(theirs)]);
  if (!a || !b) return t.fail('containers not created');
  t.is(b.Config.Image, a.Config.Image);
  t.deepEqual(b.Config.Cmd, a.Config.Cmd);
  t.deepEqual([...(b.Config.Env ?? [])].sort(), [...(a.Config.Env ?? [])].sort(), 'the token too, from $HF_TOKEN');
  t.is(b.HostConfig.IpcMode, a.HostConfig.IpcMode);
  t.deepEqual(b.HostConfig.Ulimits, a.HostConfig.Ulimits);
  t.deepEqual(b.HostConfig.PortBindings, a.HostConfig.PortBindings);
  // Compose spells a read-write bind with `:rw`, which is Docker's default: the same mount.
  const binds = (x: typeof a) => (x.HostConfig.Binds ?? []).map((v) => v.replace(/:rw$/, '')).sort();
  t.deepEqual(binds(b), binds(a));
  // The comparison the daemon uses to adopt a container agrees: compose's would be adopted, not recreated.
  const imageEnv = await engine.imageEnv(b.Image);
  t.deepEqual(sameSpec(buildSpec(configSchema.parse(rawFor(theirs)), TOKEN), b, imageEnv).differences, []);
  const raw = (name: string) =>
    docker(['inspect', '--format', '{{json .HostConfig.DeviceRequests}} {{.HostConfig.NetworkMode}}', name]);
  const [devMine, devTheirs] = await Promise.all([raw(mine), raw(theirs)]);
  t.log(`GPU request and network: daemon ${devMine}; compose ${devTheirs}`);
  t.regex(devTheirs, /"Count":-1.*"Capabilities":\[\["gpu"\]\]/);
  t.regex(devTheirs, / bridge$/, 'the default bridge network, as the daemon uses');
  // Compose's healthcheck (liveness settings) passes once the stand-in serves.
  const deadline = Date.now() + 60_000;
  let status = '';
  while (Date.now() < deadline && status !== 'healthy') {
    status = await docker(['inspect', '--format', '{{.State.Health.Status}}', theirs]);
    if (status !== 'healthy') await new Promise((r) => setTimeout(r, 500));
  }
  const state = status === 'healthy' ? '' : await docker(['inspect', '--format', '{{json .State}}', theirs]);
  t.is(status, 'healthy', `the healthcheck passes; the container's state: ${state}`);
});
