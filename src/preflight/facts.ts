// Looks at the host for the preflight checks: files, the port, Docker's GPU support, nvidia-smi.
import { constants, type Stats } from 'node:fs';
import { access, lstat, readdir, readFile, readlink, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { delimiter, dirname, join } from 'node:path';
import type { Config } from '../config/schema.js';
import type { ContainerEngine } from '../docker/engine-api.js';
import { sha256Of } from '../encodings/fetch.js';
import { ENCODINGS } from '../encodings/known.js';
import {
  checkGpuMemory,
  parseMeminfo,
  tensorParallelOf,
  type AppRow,
  type MemoryVerdict,
  type SmiAnswer,
} from '../core/rules/gpu-memory.js';
import { dropWholeCache, evictFiles } from '../gpu/page-cache.js';
import { querySmi } from '../gpu/nvidia-smi.js';
import type { EncodingFact, Facts, HuggingfaceFact, PortFact, RuntimeFact } from '../core/rules/checks.js';
import { inDir, openRegular, withDirBeneath } from '../util/read-capped.js';

/**
 * The SHA-256 of a file that is open (`read` hashes it); a cache may answer from what it knows of
 * the same file (`st`, the opened file's).
 */
export type Hasher = (path: string, st: Stats, read: () => Promise<string | undefined>) => Promise<string | undefined>;

/**
 * The tiktoken files as they are. Each is opened as a regular file only, never through a link and
 * without blocking (a FIFO there must not hold a thread of the daemon's), then looked at and hashed
 * through what was opened.
 */
export async function encodingFacts(
  dir: string,
  verify: boolean,
  hash: Hasher = (_p, _st, read) => read(),
): Promise<EncodingFact[]> {
  return Promise.all(
    ENCODINGS.map(async (e): Promise<EncodingFact> => {
      const path = join(dir, e.file);
      const base = { file: e.file, path, expected: e.sha256 };
      const r = await openRegular(path, { noFollow: true });
      if (!r.ok) {
        return r.code === 'ENOENT' || r.code === 'ENOTDIR'
          ? { ...base, state: 'missing' }
          : {
              ...base,
              state: 'unreadable',
              error: r.code === 'ENOTREG' || r.code === 'EISDIR' ? 'not a regular file' : r.why,
            };
      }
      const { fh, st } = r;
      try {
        if (st.size === 0) return { ...base, state: 'empty', size: 0 };
        const sha = await hash(path, st, () => sha256Of(fh));
        if (sha === undefined) return { ...base, state: 'unreadable', error: 'read failed' };
        if (verify && sha !== e.sha256) return { ...base, state: 'mismatch', sha256: sha, size: st.size };
        return { ...base, state: 'ok', sha256: sha, size: st.size };
      } finally {
        await fh.close();
      }
    }),
  );
}

/** The hub cache's folder for a model id, under the cache's root: hub/models--org--name. */
export function modelCacheParts(modelId: string): string[] {
  return ['hub', `models--${modelId.split('/').join('--')}`];
}

export function modelCacheDir(hfDir: string, modelId: string): string {
  return join(hfDir, ...modelCacheParts(modelId));
}

/** The model has a snapshot in the cache (looked at beneath the cache's root, never through a link). */
function modelCached(hfDir: string, modelId: string): Promise<boolean> {
  return withDirBeneath(hfDir, [...modelCacheParts(modelId), 'snapshots'], false, async (dir) =>
    readdir(inDir(dir)).then(
      (names) => names.length > 0,
      () => false,
    ),
  );
}

/**
 * The cache folder exists, is a folder, and root can write it. Under the unit's sandbox
 * (ProtectSystem=strict) every path outside the state directory is read-only to the supervisor
 * itself, so EROFS there says nothing about what Docker's root sees: it counts as writable.
 */
export async function huggingfaceFact(dir: string, modelId: string, sandboxed: boolean): Promise<HuggingfaceFact> {
  const cached = await modelCached(dir, modelId);
  try {
    const st = await stat(dir);
    if (!st.isDirectory()) return { state: 'not-dir', modelCached: cached };
  } catch {
    return { state: 'missing', modelCached: false };
  }
  try {
    await access(dir, constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    if (!(code === 'EROFS' && sandboxed)) return { state: 'read-only', modelCached: cached, error: code };
  }
  return { state: 'ok', modelCached: cached };
}

function tryBind(port: number, host: string): Promise<'free' | NodeJS.ErrnoException> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => resolve(err));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve('free')));
  });
}

/** Who holds the host port: our container (fine), another container, another process, or nobody. */
export async function portFact(
  engine: ContainerEngine,
  port: number,
  bindAddress: string,
  ours: string,
): Promise<PortFact> {
  const holders = await engine.publishers(port).catch(() => [] as string[]);
  if (holders.includes(ours)) return { state: 'ours' };
  if (holders.length) return { state: 'taken', holder: `container ${holders.join(', ')}` };
  const r = await tryBind(port, bindAddress || '0.0.0.0');
  if (r === 'free') return { state: 'free' };
  if (r.code === 'EADDRINUSE') return { state: 'taken', holder: 'another process' };
  return { state: 'unknown', why: `cannot test-bind it here (${r.code ?? r.message})` };
}

async function executableOnPath(name: string, path: string): Promise<string | undefined> {
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const p = join(dir, name);
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const HOOK_PATH = `${process.env['PATH'] ?? ''}${delimiter}${SYSTEM_PATH}`;

/**
 * Can Docker give a container a GPU? Any one of: the nvidia runtime registered in daemon.json,
 * CDI devices named nvidia.com/gpu, or nvidia-container-runtime-hook installed (with it, Docker's
 * built-in `--gpus` driver works; it looks the hook up on its own PATH, which is the system's).
 */
export async function runtimeFact(engine: ContainerEngine): Promise<RuntimeFact> {
  const g = await engine.gpuSupport();
  if (g.runtimes.includes('nvidia')) return { ok: true, via: 'nvidia runtime' };
  const cdi = g.cdiDevices.filter((d) => d.startsWith('nvidia.com/gpu'));
  if (cdi.length) return { ok: true, via: `CDI: ${cdi.slice(0, 2).join(', ')}${cdi.length > 2 ? ', ...' : ''}` };
  for (const dir of g.cdiSpecDirs) {
    const files = await readdir(dir).catch(() => [] as string[]);
    const spec = files.find((f) => /^nvidia.*\.(ya?ml|json)$/.test(f));
    if (spec) return { ok: true, via: `CDI spec ${join(dir, spec)}` };
  }
  const hook = await executableOnPath('nvidia-container-runtime-hook', HOOK_PATH);
  if (hook) return { ok: true, via: hook };
  return { ok: false, runtimes: g.runtimes };
}

/**
 * Drops the page cache of the model's files: its folder in the Hugging Face cache, walked beneath the
 * cache's root (the container may have made the folder, or anything in it, a link out of the cache).
 */
export function evictModelFiles(hfDir: string, modelId: string) {
  return evictFiles(hfDir, modelCacheParts(modelId));
}

/**
 * Where a path leads on this host: symlinks followed in it and in every folder above it, one part at a
 * time, so a link that points where nothing is yet (or where the unit's sandbox hides) still says
 * where it leads; Docker creates a missing bind source there. '?' when it cannot be read.
 */
export async function leadsTo(path: string): Promise<string> {
  const todo = path.split('/').filter(Boolean);
  let at = '/';
  for (let hops = 0; todo.length;) {
    const part = todo.shift()!;
    if (part === '.' || part === '..') {
      if (part === '..') at = dirname(at);
      continue;
    }
    const next = join(at, part);
    const st = await lstat(next).catch((err: NodeJS.ErrnoException) => err.code ?? 'error');
    if (st === 'ENOENT' || st === 'ENOTDIR') return join(next, ...todo);
    if (typeof st === 'string') return '?';
    if (!st.isSymbolicLink()) {
      at = next;
      continue;
    }
    if (++hops > 40) return '?';
    const link = await readlink(next);
    todo.unshift(...link.split('/').filter(Boolean));
    if (link.startsWith('/')) at = '/';
  }
  return at;
}

/**
 * The mounted paths (paths.*, and for the cache each subfolder Docker mounts) that lead elsewhere
 * through a symlink, with where they lead.
 */
export async function symlinkFacts(
  paths: Record<string, string | readonly string[]>,
): Promise<NonNullable<Facts['symlinks']>> {
  const out: NonNullable<Facts['symlinks']> = [];
  for (const [key, given] of Object.entries(paths)) {
    for (const path of typeof given === 'string' ? [given] : given) {
      const target = await leadsTo(path);
      if (target !== path) out.push({ key: `paths.${key}`, path, target });
    }
  }
  return out;
}

/**
 * The GPU memory verdict. With `reclaim` (a start, not `doctor`): on unified memory, when page cache
 * stands in the way and gpu.reclaimPageCache allows it, the cache is evicted (the model's files,
 * then all of it where the unit allows) and memory looked at again.
 */
export async function gpuMemoryFact(
  config: Config,
  smiBin?: string,
  reclaim = false,
  answer?: SmiAnswer,
): Promise<MemoryVerdict> {
  const smi = answer ?? (await querySmi(smiBin));
  let memFree = 0;
  const look = async () => {
    const meminfo = await readFile('/proc/meminfo', 'utf8').catch(() => undefined);
    memFree = (parseMeminfo(meminfo ?? '').freeKiB ?? 0) / 2 ** 20;
    return checkGpuMemory({
      smi,
      ...(meminfo === undefined ? {} : { meminfo }),
      gpus: config.container.gpus,
      utilization: config.model.gpuMemoryUtilization,
      tensorParallel: tensorParallelOf(config.model.extraArgs),
    });
  };
  const first = await look();
  const cache = first.status === 'short' ? (first.cacheGiB ?? 0) : 0;
  if (!reclaim || config.gpu.reclaimPageCache === 'never' || cache < 0.1 || first.status !== 'short') return first;
  const before = memFree;
  const ev = { ...(await evictModelFiles(config.paths.huggingface, config.model.id)), whole: await dropWholeCache() };
  const after = await look();
  const reclaimed =
    `evicted the page cache of ${ev.files} model files (${(ev.bytes / 2 ** 30).toFixed(1)} GiB); the whole cache: ` +
    `${ev.whole}; MemFree ${before.toFixed(1)} -> ${memFree.toFixed(1)} GiB` +
    `${ev.failed.length ? `; not evicted: ${ev.failed.join('; ')}` : ''}`;
  return after.status === 'unknown' ? after : { ...after, reclaimed };
}

/** Whether a process exists (signal 0: no signal is sent; EPERM means it exists but is not ours to signal). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * nvidia-smi's compute processes that belong to a run that ended: in its container's cgroup, or
 * gone from the host while the driver still lists them (their memory not yet given back).
 */
export async function releaseApps(smi: SmiAnswer, container: string): Promise<AppRow[]> {
  if (smi.kind !== 'ok') return [];
  const out: AppRow[] = [];
  for (const a of smi.apps) {
    if (!alive(a.pid)) {
      out.push(a);
      continue;
    }
    const cg = await readFile(`/proc/${a.pid}/cgroup`, 'utf8').catch(() => '');
    if (container && cg.includes(container)) out.push(a);
  }
  return out;
}
