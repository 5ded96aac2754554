// Downloads the tiktoken files into a directory: verified, and renamed into place only when whole.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Encoding } from './known.js';

export async function sha256File(path: string): Promise<string | undefined> {
  try {
    const h = createHash('sha256');
    for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
    return h.digest('hex');
  } catch {
    return undefined;
  }
}

export type FetchOutcome =
  { file: string; result: 'present' | 'fetched'; bytes?: number } | { file: string; result: 'failed'; error: string };

/**
 * One file: kept when already right; else downloaded to a hidden partial file in the same
 * directory, checked, fsynced and renamed over the real name. A failed or wrong download never
 * leaves anything under the real name.
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
  const partial = join(dir, `.${enc.file}.partial-${process.pid}`);
  const url = new URL(enc.file, baseUrl).toString();
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok || !res.body) return { file: enc.file, result: 'failed', error: `GET ${url}: HTTP ${res.status}` };
    const h = createHash('sha256');
    const fh = await open(partial, 'w', 0o644);
    let bytes = 0;
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        h.update(chunk);
        bytes += chunk.length;
        await fh.write(chunk);
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    const got = h.digest('hex');
    if (verify && got !== enc.sha256) {
      await rm(partial, { force: true });
      return {
        file: enc.file,
        result: 'failed',
        error: `${url}: SHA-256 ${got} is not tiktoken's ${enc.sha256} (a wrong or damaged file; nothing was written)`,
      };
    }
    await rename(partial, dest);
    return { file: enc.file, result: 'fetched', bytes };
  } catch (err) {
    await rm(partial, { force: true });
    const e = err as Error & { cause?: { code?: string; message?: string } };
    return { file: enc.file, result: 'failed', error: `GET ${url}: ${e.cause?.code ?? e.cause?.message ?? e.message}` };
  }
}
