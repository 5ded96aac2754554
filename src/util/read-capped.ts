// Reads a file safely: a regular file only (not a FIFO that never ends, nor /dev/zero behind a
// symlink), at most `cap` bytes. Opening never blocks (O_NONBLOCK), whatever the path is: a FIFO
// opened for reading would hold one of libuv's four threads until a writer came, and every file
// read of the daemon after the fourth.
//
// In a folder the model container can write (its root is root here too: the Hugging Face cache),
// links are not followed either: `noFollow` refuses a link as the file itself (O_NOFOLLOW), and
// `openDirBeneath` walks to a folder under a root one step at a time, each step opened relative to
// the last (Linux's /proc/self/fd/N/name: openat), none of them through a link.
import { constants, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

export type Failure = { ok: false; why: string; code?: string };
export type Capped = { ok: true; data: Buffer; mode: number } | Failure;
export type Opened = { ok: true; fh: FileHandle; st: Stats } | Failure;

export interface ReadOptions {
  /** A symbolic link is refused, not followed (O_NOFOLLOW): for what a container could have put there. */
  noFollow?: boolean;
}

function kindOf(mode: number): string {
  switch (mode & constants.S_IFMT) {
    case constants.S_IFDIR:
      return 'a directory';
    case constants.S_IFIFO:
      return 'a FIFO (named pipe)';
    case constants.S_IFCHR:
      return 'a character device';
    case constants.S_IFBLK:
      return 'a block device';
    case constants.S_IFSOCK:
      return 'a socket';
    default:
      return 'not a regular file';
  }
}

const READ = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

function failed(err: unknown, noFollow: boolean): Failure {
  const code = (err as NodeJS.ErrnoException).code;
  // O_NOFOLLOW on a link: ELOOP.
  if (noFollow && code === 'ELOOP') return { ok: false, why: 'is a symbolic link (not followed)', code };
  return { ok: false, why: code ?? String(err), ...(code ? { code } : {}) };
}

/** The file opened for reading, when it is a regular file (checked on what was opened: fstat). */
export async function openRegular(path: string, o: ReadOptions = {}): Promise<Opened> {
  let fh: FileHandle;
  try {
    fh = await open(path, READ | (o.noFollow ? constants.O_NOFOLLOW : 0));
  } catch (err) {
    return failed(err, o.noFollow === true);
  }
  try {
    const st = await fh.stat();
    if (st.isFile()) return { ok: true, fh, st };
    await fh.close();
    if (st.isDirectory()) return { ok: false, why: 'is a directory', code: 'EISDIR' };
    return { ok: false, why: `is ${kindOf(st.mode)}, not a regular file`, code: 'ENOTREG' };
  } catch (err) {
    await fh.close();
    return failed(err, false);
  }
}

/**
 * Each chunk of an opened file to `fn`, at most `cap` bytes in all: true when the file ended within
 * them. One byte past the cap is asked for: stat's size may lie (/proc, a file still growing).
 */
export async function eachChunk(fh: FileHandle, cap: number, fn: (b: Buffer) => void): Promise<boolean> {
  const buf = Buffer.alloc(Math.min(cap + 1, 1 << 20));
  let total = 0;
  for (;;) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, cap + 1 - total), total);
    if (bytesRead === 0) return true;
    total += bytesRead;
    if (total > cap) return false;
    fn(buf.subarray(0, bytesRead));
  }
}

/** The file's bytes, or why they are not read: missing, not a regular file, a link (`noFollow`), over `cap` bytes. */
export async function readCapped(path: string, cap: number, o: ReadOptions = {}): Promise<Capped> {
  const r = await openRegular(path, o);
  if (!r.ok) return r;
  try {
    const parts: Buffer[] = [];
    if (!(await eachChunk(r.fh, cap, (b) => parts.push(Buffer.from(b)))))
      return { ok: false, why: `is over the ${cap}-byte limit`, code: 'EFBIG' };
    return { ok: true, data: Buffer.concat(parts), mode: r.st.mode };
  } finally {
    await r.fh.close();
  }
}

/** A name that stays in its folder: not empty, `.`, `..`, nor with a `/`. */
const plainName = (name: string) => name !== '' && name !== '.' && name !== '..' && !name.includes('/');

/** The path of `name` in an opened folder (the folder as it was opened, whatever its path is now). */
export const inDir = (dir: FileHandle, name?: string): string => `/proc/self/fd/${dir.fd}${name ? `/${name}` : ''}`;

async function openDir(path: string, noFollow: boolean): Promise<FileHandle | undefined> {
  const flags = READ | constants.O_DIRECTORY | (noFollow ? constants.O_NOFOLLOW : 0);
  return open(path, flags).catch(() => undefined);
}

/**
 * The folder `root/parts...`, opened one part at a time, each relative to the one opened before and
 * never through a symbolic link (`root` itself may be one: it is the operator's). Undefined when a
 * part is missing, a link, not a folder, or not a plain name. The caller closes it.
 */
export async function openDirBeneath(
  root: string | FileHandle,
  parts: readonly string[],
): Promise<FileHandle | undefined> {
  if (!parts.every(plainName)) return undefined;
  let dir = typeof root === 'string' ? await openDir(root, false) : await openDir(inDir(root), false);
  for (const part of parts) {
    if (!dir) return undefined;
    const next = await openDir(inDir(dir, part), true);
    await dir.close();
    dir = next;
  }
  return dir;
}

/** `fn` on the folder `root/parts...` (opened by `openDirBeneath`), closed after; `absent` when it cannot be opened. */
export async function withDirBeneath<T>(
  root: string | FileHandle,
  parts: readonly string[],
  absent: T,
  fn: (dir: FileHandle) => Promise<T>,
): Promise<T> {
  const dir = await openDirBeneath(root, parts);
  if (!dir) return absent;
  try {
    return await fn(dir);
  } finally {
    await dir.close();
  }
}
