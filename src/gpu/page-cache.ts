// Evicts files' pages from the page cache (posix_fadvise DONTNEED, no privilege), and all of it where allowed.
import { opendir, writeFile, type FileHandle } from 'node:fs/promises';
import { errnoName, loadAddon } from '../util/native.js';
import { inDir, openRegular, withDirBeneath } from '../util/read-capped.js';

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
/** Deeper than the hub cache's layout goes (snapshots/<rev>/<folder>/<file>): a chain of folders made deep is not. */
const MAX_DEPTH = 8;

type Found = Omit<Eviction, 'whole'>;

/**
 * Every regular file in an opened folder and below, each opened as what it is in the folder: no link
 * followed (not a folder's, not a file's: the model container could have made `blobs` a link to
 * the host's /usr), nothing opened that would block (O_NONBLOCK: a FIFO).
 */
async function visit(
  dir: FileHandle,
  depth: number,
  budget: { left: number },
  each: (fh: FileHandle, size: number) => void,
  out: Found,
): Promise<void> {
  const fail = (name: string, why: string) => {
    if (out.failed.length < 3) out.failed.push(`${name}: ${why}`);
  };
  for await (const e of await opendir(inDir(dir))) {
    if (budget.left-- <= 0) return;
    if (e.isDirectory() && depth < MAX_DEPTH) {
      await withDirBeneath(dir, [e.name], undefined, (sub) => visit(sub, depth + 1, budget, each, out));
    } else if (e.isFile()) {
      const r = await openRegular(inDir(dir, e.name), { noFollow: true });
      if (!r.ok) {
        fail(e.name, r.why);
        continue;
      }
      try {
        each(r.fh, r.st.size);
      } catch (err) {
        fail(e.name, (err as Error).message);
      } finally {
        await r.fh.close();
      }
    }
    // Symbolic links (the hub cache's snapshots) point at blobs that are visited themselves; a link
    // out of the folder is not followed, nor is a FIFO or a device opened.
  }
}

/**
 * Drops the cached pages of every regular file in the folder `root/parts...` (the model's, in the
 * Hugging Face cache), never following a link out of it: the folder is the container's to write.
 */
export async function evictFiles(root: string, parts: readonly string[] = []): Promise<Found> {
  const addon = loadAddon();
  const out: Found = { files: 0, bytes: 0, failed: [] };
  if (!addon) return { ...out, failed: ['the native addon is not built'] };
  const drop = (fh: FileHandle, size: number) => {
    const err = addon.dropCache(fh.fd);
    if (err !== 0) throw new Error(errnoName(err));
    out.files++;
    out.bytes += size;
  };
  await withDirBeneath(root, parts, undefined, (dir) =>
    visit(dir, 0, { left: MAX_FILES }, drop, out).catch(() => undefined),
  );
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
