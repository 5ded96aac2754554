// Reads a config in a short-lived process of its own: the daemon keeps the result, not the parser.
import { execFile } from 'node:child_process';
import type { LoadResult } from '../config/problem.js';

const READER = new URL('./main.js', import.meta.url).pathname;
/** Longer than any config needs; a file that takes longer is refused, and the daemon goes on. */
export const READ_TIMEOUT_MS = 20_000;
/** The reader's heap: a config is tens of KiB. */
const READER_HEAP_MB = 256;

const whole = (file: string, message: string): LoadResult => ({
  ok: false,
  file,
  problems: [{ file, line: 1, col: 1, key: '', message }],
});

type Answer = { ok: true; value: unknown } | { ok: false; timedOut: boolean; why: string };

/** Runs the reader with `args`; its JSON answer, or why there is none. */
function ask(args: string[], timeoutMs: number): Promise<Answer> {
  const argv = [`--max-old-space-size=${READER_HEAP_MB}`, READER, ...args];
  return new Promise((resolve) => {
    execFile(process.execPath, argv, { timeout: timeoutMs, maxBuffer: 8 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && (err as { killed?: boolean }).killed) return resolve({ ok: false, timedOut: true, why: 'timed out' });
      try {
        resolve({ ok: true, value: JSON.parse(stdout) as unknown });
      } catch {
        const why = (stderr.trim().split('\n').pop() ?? '') || (err?.message ?? 'no answer');
        resolve({ ok: false, timedOut: false, why });
      }
    });
  });
}

/** `loadConfig`, in a child process with a deadline and a memory cap. Never throws. */
export async function readConfigIsolated(file: string, timeoutMs = READ_TIMEOUT_MS): Promise<LoadResult> {
  const a = await ask(['config', file], timeoutMs);
  if (a.ok) return a.value as LoadResult;
  if (a.timedOut)
    return whole(file, `took longer than ${timeoutMs / 1000}s to read and check; is this the right file?`);
  return whole(file, `could not be read and checked (${a.why})`);
}

/** The next `count` run times (ms) of each cron expression from now, later than `from`, as node-cron computes them. */
export async function planRuns(exprs: readonly string[], from: number, count: number): Promise<number[][]> {
  const a = await ask(['plan', String(from), String(count), ...exprs], READ_TIMEOUT_MS);
  if (!a.ok) throw new Error(`cannot plan the scheduled jobs: ${a.why}`);
  return a.value as number[][];
}

/** A state record read and checked in the reader: absent, unreadable, wrong (with why), or the record. */
export type StateRead =
  | { absent: true }
  | { unreadable: string }
  | { problem: string }
  | { record: import('../core/model/events.js').Persisted };

export async function readStateIsolated(file: string, timeoutMs = READ_TIMEOUT_MS): Promise<StateRead> {
  const a = await ask(['state', file], timeoutMs);
  return a.ok ? (a.value as StateRead) : { unreadable: a.why };
}
