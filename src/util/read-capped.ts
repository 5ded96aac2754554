// Reads an operator's file safely: a regular file only (not a FIFO that never ends, nor /dev/zero
// behind a symlink), at most `cap` bytes. Opening never blocks (O_NONBLOCK), whatever the path is.
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

export type Capped = { ok: true; data: Buffer; mode: number } | { ok: false; why: string; code?: string };

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

/** The file's bytes, or why they are not read: missing, not a regular file, over `cap` bytes. */
export async function readCapped(path: string, cap: number): Promise<Capped> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { ok: false, why: code ?? String(err), ...(code ? { code } : {}) };
  }
  try {
    const st = await fh.stat();
    if (st.isDirectory()) return { ok: false, why: 'is a directory', code: 'EISDIR' };
    if (!st.isFile()) return { ok: false, why: `is ${kindOf(st.mode)}, not a regular file`, code: 'ENOTREG' };
    // Read one byte past the cap: stat's size may lie (/proc, a file still growing).
    const buf = Buffer.alloc(cap + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > cap) return { ok: false, why: `is over the ${cap}-byte limit`, code: 'EFBIG' };
    }
    return { ok: true, data: buf.subarray(0, n), mode: st.mode };
  } finally {
    await fh.close();
  }
}
