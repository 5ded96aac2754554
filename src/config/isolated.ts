// Reads a config in a short-lived process of its own: the daemon keeps the result, not the parser.
import { execFile } from 'node:child_process';
import type { LoadResult } from './problem.js';

const READER = new URL('./reader-main.js', import.meta.url).pathname;
/** Longer than any config needs; a file that takes longer is refused, and the daemon goes on. */
export const READ_TIMEOUT_MS = 20_000;
/** The reader's heap: a config is tens of KiB. */
const READER_HEAP_MB = 256;

const whole = (file: string, message: string): LoadResult => ({
  ok: false,
  file,
  problems: [{ file, line: 1, col: 1, key: '', message }],
});

/** `loadConfig`, in a child process with a deadline and a memory cap. Never throws. */
export function readConfigIsolated(file: string, timeoutMs = READ_TIMEOUT_MS): Promise<LoadResult> {
  const args = [`--max-old-space-size=${READER_HEAP_MB}`, READER, file];
  return new Promise((resolve) => {
    execFile(process.execPath, args, { timeout: timeoutMs, maxBuffer: 8 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && (err as { killed?: boolean }).killed) {
        return resolve(whole(file, `took longer than ${timeoutMs / 1000}s to read and check; is this the right file?`));
      }
      try {
        resolve(JSON.parse(stdout) as LoadResult);
      } catch {
        const why = (stderr.trim().split('\n').pop() ?? '') || (err?.message ?? 'no answer');
        resolve(whole(file, `could not be read and checked (${why})`));
      }
    });
  });
}
