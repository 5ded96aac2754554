// Downloads the tiktoken files into a directory: verified, size-capped, and renamed into place only when whole.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { eachChunk, openRegular } from '../util/read-capped.js';
import { join } from 'node:path';
import { MAX_CUSTOM_ENCODING_BYTES, type Encoding } from './known.js';

/** The SHA-256 of an opened file, undefined when it cannot be read or is over MAX_CUSTOM_ENCODING_BYTES. */
export async function sha256Of(fh: FileHandle): Promise<string | undefined> {
  try {
    const h = createHash('sha256');
    return (await eachChunk(fh, MAX_CUSTOM_ENCODING_BYTES, (b) => h.update(b))) ? h.digest('hex') : undefined;
  } catch {
    return undefined;
  }
}

/** The SHA-256 of a regular file (not through a link, never blocking on a FIFO), or undefined. */
export async function sha256File(path: string): Promise<string | undefined> {
  const r = await openRegular(path, { noFollow: true });
  if (!r.ok) return undefined;
  try {
    return await sha256Of(r.fh);
  } finally {
    await r.fh.close();
  }
}

export type FetchOutcome =
  { file: string; result: 'present' | 'fetched'; bytes?: number } | { file: string; result: 'failed'; error: string };

/** Partial files being written, removed if the process is told to stop. */
const partials = new Set<string>();
let trapping = false;
function removePartialsOnSignals(): void {
  if (trapping) return;
  trapping = true;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      for (const p of partials) void rm(p, { force: true });
      process.exitCode = 128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1);
      setImmediate(() => process.exit());
    });
  }
}

class TooLarge extends Error {}

/**
 * One file: kept when already right; else downloaded to a hidden partial file with a random name,
 * created exclusively (a planted file or symlink under that name is never followed), checked,
 * fsynced and renamed over the real name. A download longer than the file can be is cut off. A
 * failed or wrong download never leaves anything behind.
 */
export async function fetchEncoding(
  dir: string,
  enc: Encoding,
  baseUrl: string,
  verify: boolean,
  timeoutMs = 120_000,
): Promise<FetchOutcome> {
  const dest = join(dir, enc.file);
  const have = await sha256File(dest);
  if (have !== undefined && (!verify || have === enc.sha256)) return { file: enc.file, result: 'present' };
  await mkdir(dir, { recursive: true });
  const partial = join(dir, `.${enc.file}.${randomBytes(8).toString('hex')}.partial`);
  const url = new URL(enc.file, baseUrl).toString();
  const cap = verify ? enc.size : MAX_CUSTOM_ENCODING_BYTES;
  removePartialsOnSignals();
  partials.add(partial);
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok || !res.body) return { file: enc.file, result: 'failed', error: `GET ${url}: HTTP ${res.status}` };
    const h = createHash('sha256');
    const fh = await open(partial, 'wx', 0o644);
    let bytes = 0;
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        bytes += chunk.length;
        if (bytes > cap) throw new TooLarge();
        h.update(chunk);
        await fh.write(chunk);
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    const got = h.digest('hex');
    if (verify && got !== enc.sha256) {
      const error = `${url}: SHA-256 ${got} is not tiktoken's ${enc.sha256} (a wrong or damaged file; nothing written)`;
      return { file: enc.file, result: 'failed', error };
    }
    await rename(partial, dest);
    return { file: enc.file, result: 'fetched', bytes };
  } catch (err) {
    if (err instanceof TooLarge) {
      const what = verify ? `the published file is ${enc.size} bytes` : `the limit for a custom file is ${cap} bytes`;
      return {
        file: enc.file,
        result: 'failed',
        error: `GET ${url}: more than ${cap} bytes (${what}); stopped, nothing was written`,
      };
    }
    const e = err as Error & { cause?: { code?: string; message?: string } };
    return { file: enc.file, result: 'failed', error: `GET ${url}: ${e.cause?.code ?? e.cause?.message ?? e.message}` };
  } finally {
    partials.delete(partial);
    await rm(partial, { force: true });
  }
}
