// Test fixtures for the real Docker engine: unique names, free ports, temp dirs, the stand-in image.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configSchema, type Config } from '../../src/config/schema.js';
import { writeGenuineEncodings } from './tiktoken.js';
import { scratchDir } from './temp.js';

export const STANDIN = process.env['GPTOSS_STANDIN_IMAGE'] ?? 'gptoss-standin:test';
/** This machine refuses memlock above 8 MiB (no CAP_SYS_RESOURCE); the one ulimit tests override. */
export const TEST_MEMLOCK = 8388608;

export function docker(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('docker', args, { env, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`docker ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout.trim());
    });
  });
}

export function uniqueName(tag: string): string {
  return `gptoss-it-${tag}-${randomBytes(3).toString('hex')}`;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

export interface Dirs {
  root: string;
  encodings: string;
  huggingface: string;
}

/**
 * A temp `/vllm` look-alike: both genuine tiktoken files (they pass the SHA-256 check) unless
 * `encodings: false`, and a model cache that holds gpt-oss-120b (so no HF token is needed).
 */
export async function makeDirs(opts: { encodings?: boolean } = {}): Promise<Dirs> {
  const root = await scratchDir('gptoss-it-');
  const encodings = join(root, 'encodings');
  const huggingface = join(root, 'huggingface');
  await mkdir(encodings);
  await mkdir(
    join(huggingface, 'hub/models--openai--gpt-oss-120b/snapshots/0000000000000000000000000000000000000000'),
    { recursive: true },
  );
  if (opts.encodings !== false) await writeGenuineEncodings(encodings);
  return { root, encodings, huggingface };
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> | T[K] : T[K] };

/** The YAML-side config for one test: its own name, port and dirs, the stand-in image. */
export function testConfigRaw(
  name: string,
  port: number,
  dirs: Dirs,
  over: DeepPartial<Record<string, unknown>> = {},
): Record<string, unknown> {
  const base = {
    container: {
      name,
      port,
      image: STANDIN,
      bindAddress: '127.0.0.1',
      ulimits: { memlock: TEST_MEMLOCK },
      env: { STANDIN_LOAD_SECONDS: '1' },
      stopTimeout: '5s',
    },
    // vLLM's caches in the test's own folder, never the host's /vllm/cache.
    paths: { encodings: dirs.encodings, huggingface: dirs.huggingface, cache: join(dirs.root, 'cache') },
    // /metrics off: tests run daemons side by side; the monitoring tests give each its own port.
    metrics: { listen: null },
    // Never the host's /etc/gptoss/hf_token: each test has its own (absent unless written).
    hfToken: { file: join(dirs.root, 'hf_token') },
  };
  return merge(base, over);
}

/** The same, parsed: what the supervisor works with. */
export function testConfig(
  name: string,
  port: number,
  dirs: Dirs,
  over: DeepPartial<Record<string, unknown>> = {},
): Config {
  return configSchema.parse(testConfigRaw(name, port, dirs, over));
}

function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const av = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && av && typeof av === 'object' && !Array.isArray(av)
        ? merge(av as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

export async function removeContainer(name: string): Promise<void> {
  await docker(['rm', '-f', '-v', name]).catch(() => undefined);
}

export interface Brief {
  Id: string;
  StartedAt: string;
  Running: boolean;
}

export async function brief(name: string): Promise<Brief> {
  const out = await docker(['inspect', '--format', '{{.Id}} {{.State.StartedAt}} {{.State.Running}}', name]);
  const [Id = '', StartedAt = '', running = ''] = out.split(' ');
  return { Id, StartedAt, Running: running === 'true' };
}

/** How many containers, running or not, carry exactly this name. */
export async function countNamed(name: string): Promise<number> {
  const out = await docker(['ps', '-a', '--filter', `name=^/${name}$`, '--format', '{{.ID}}']);
  return out ? out.split('\n').length : 0;
}

/** The stand-in with environment of its own baked in (an image that fails its own way), tagged `tag`. */
export async function derivedImage(tag: string, env: Record<string, string>, base = STANDIN): Promise<void> {
  const ctx = await mkdtemp(join(tmpdir(), 'gptoss-img-'));
  try {
    const lines = Object.entries(env).map(([k, v]) => `ENV ${k}=${v}`);
    await writeFile(join(ctx, 'Dockerfile'), `FROM ${base}\n${lines.join('\n')}\n`);
    await docker(['build', '-q', '-t', tag, ctx], { ...process.env, DOCKER_BUILDKIT: '0' });
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
}
