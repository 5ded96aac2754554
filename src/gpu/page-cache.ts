// Evicts files' pages from the page cache (posix_fadvise DONTNEED, no privilege), and all of it where allowed.
import { open, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoName, loadAddon } from '../util/native.js';

export interface Eviction {
  /** Regular files whose pages were dropped, and their size in bytes. */
  files: number;
  bytes: number;
  /** Files that could not be opened or advised, with why (first few). */
  failed: string[];
  /** The whole page cache: `dropped`, or why not (the unit's sandbox, no privilege). */
  whole: string;
}

/** At most this many files are visited (a cache folder with millions of files must not hold up a start). */
const MAX_FILES = 20_000;

async function* regularFiles(dir: string, budget: { left: number }): AsyncGenerator<string> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (budget.left <= 0) return;
    const p = join(dir, e.name);
    // Symlinks (the hub cache's snapshots) point at blobs that are visited themselves.
    if (e.isDirectory()) yield* regularFiles(p, budget);
    else if (e.isFile()) {
      budget.left--;
      yield p;
    }
  }
}

/** Drops the cached pages of every regular file under `dir`. */
export async function evictFiles(dir: string): Promise<Omit<Eviction, 'whole'>> {
  const addon = loadAddon();
  const out = { files: 0, bytes: 0, failed: [] as string[] };
  if (!addon) return { ...out, failed: ['the native addon is not built'] };
  for await (const p of regularFiles(dir, { left: MAX_FILES })) {
    let fh;
    try {
      fh = await open(p, 'r');
      const err = addon.dropCache(fh.fd);
      if (err !== 0) throw new Error(errnoName(err));
      out.files++;
      out.bytes += (await fh.stat()).size;
    } catch (err) {
      if (out.failed.length < 3) out.failed.push(`${p}: ${(err as Error).message}`);
    } finally {
      await fh?.close();
    }
  }
  return out;
}

/**
 * The whole page cache (`echo 1 > /proc/sys/vm/drop_caches`): needs root and a writable /proc/sys;
 * the installed unit keeps /proc/sys read-only (ProtectKernelTunables=yes), so there only the
 * model's files are evicted. Each drop adds a `drop_caches: 1` line to the kernel's log.
 */
export async function dropWholeCache(file = '/proc/sys/vm/drop_caches'): Promise<string> {
  try {
    await writeFile(file, '1\n');
    return 'dropped';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    return `not allowed here (${code}: /proc/sys is read-only in the unit's sandbox, or not root)`;
  }
}

/** The model's files first (most of the cache after a load), then the whole cache where that is allowed. */
export async function evictPageCache(modelDir: string): Promise<Eviction> {
  const files = await evictFiles(modelDir);
  return { ...files, whole: await dropWholeCache() };
}
