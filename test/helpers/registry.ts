// A real image registry on loopback (Debian's docker-registry), optionally behind htpasswd auth.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { docker, freePort } from './docker.js';
import { scratchDir } from './temp.js';

export interface Registry {
  /** host:port, as image references name it. */
  host: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, (err, out, errOut) =>
      err ? reject(new Error(`${cmd}: ${errOut || err.message}`)) : resolve(out),
    ),
  );
}

/** A registry storing into its own folder; `auth` protects it with a bcrypt htpasswd entry. */
export async function makeRegistry(auth?: { user: string; password: string }): Promise<Registry> {
  const dir = await scratchDir('gptoss-registry-');
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  let authBlock = '';
  if (auth) {
    const entry = await run('htpasswd', ['-Bbn', auth.user, auth.password]);
    await writeFile(join(dir, 'htpasswd'), entry);
    authBlock = `auth: { htpasswd: { realm: gptoss-test, path: ${join(dir, 'htpasswd')} } }\n`;
  }
  const cfg = join(dir, 'config.yml');
  await writeFile(
    cfg,
    `version: 0.1\nlog: { level: error, accesslog: { disabled: true } }\nstorage: { filesystem: { rootdirectory: ` +
      `${join(dir, 'data')} } }\nhttp: { addr: ${host}, secret: ${randomBytes(8).toString('hex')} }\n${authBlock}`,
  );
  let child: ChildProcess | undefined;
  return {
    host,
    async start() {
      child = spawn('docker-registry', ['serve', cfg], { stdio: 'ignore' });
      for (let i = 0; i < 100; i++) {
        const up = await fetch(`http://${host}/v2/`).then(
          (r) => r.status === 200 || r.status === 401,
          () => false,
        );
        if (up) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`docker-registry on ${host} did not answer`);
    },
    async stop() {
      if (!child || child.exitCode !== null) return;
      const c = child;
      await new Promise<void>((r) => {
        c.once('exit', () => r());
        c.kill('SIGTERM');
      });
    },
  };
}

/**
 * Pushes an image with one layer of its own (random bytes, `mb` of them) on top of `base` to
 * `ref`, then deletes the local copy: pulling `ref` downloads that layer for real.
 */
export async function pushFreshImage(
  base: string,
  ref: string,
  mb = 16,
  login?: { user: string; password: string },
): Promise<void> {
  const ctx = await mkdtemp(join(tmpdir(), 'gptoss-img-'));
  const cfgDir = await mkdtemp(join(tmpdir(), 'gptoss-dockercfg-'));
  try {
    await writeFile(join(ctx, 'blob'), randomBytes(mb * 1024 * 1024));
    await writeFile(join(ctx, 'Dockerfile'), `FROM ${base}\nCOPY blob /blob\n`);
    await docker(['build', '-q', '-t', ref, ctx], { ...process.env, DOCKER_BUILDKIT: '0' });
    const env = { ...process.env, DOCKER_CONFIG: cfgDir };
    if (login) await docker(['login', '-u', login.user, '-p', login.password, ref.split('/')[0] ?? ''], env);
    await docker(['push', '-q', ref], env);
    await docker(['rmi', ref]);
  } finally {
    for (const d of [ctx, cfgDir]) await rm(d, { recursive: true, force: true });
  }
}

/** A docker config.json holding credentials for `host`, as `docker login` writes it. */
export function dockerConfigJson(host: string, user: string, password: string): string {
  return JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } } });
}
