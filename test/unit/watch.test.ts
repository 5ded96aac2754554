// The file watcher on real files: changes chokidar would drop (a chmod, which leaves the mtime alone)
// still reach onChange.
import { chmod, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { FileWatcher } from '../../src/watch/watch.js';
import { tempDir } from '../helpers/temp.js';

/** A watcher on `file` whose calls land in `calls`; stopped when the test ends. */
async function watching(t: Parameters<typeof tempDir>[0], file: string) {
  const calls: string[][] = [];
  let wake: () => void = () => undefined;
  const w = new FileWatcher({
    files: [file],
    debounceMs: 20,
    onChange: (changed) => {
      calls.push([...changed]);
      wake();
    },
  });
  t.teardown(() => w.stop());
  await w.start();
  /** Resolves at the next call, or fails after `ms` saying what was seen. */
  const next = (ms: number) =>
    new Promise<string[]>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no change reported in ${ms}ms (calls: ${JSON.stringify(calls)})`)),
        ms,
      );
      wake = () => {
        clearTimeout(timer);
        resolve(calls.at(-1)!);
      };
    });
  return { next };
}

test('a chmod alone (mtime unchanged, atime after it) is a change', async (t) => {
  const dir = await tempDir(t, 'gptoss-watch-');
  const file = join(dir, 'keys');
  await writeFile(file, 'sk-one\n', { mode: 0o600 });
  // Read after the last write: chokidar then ignores any event that leaves the mtime as it was.
  await utimes(file, new Date(Date.now() + 60_000), new Date(Date.now() - 60_000));
  const w = await watching(t, file);
  const seen = w.next(10_000);
  await chmod(file, 0o644);
  t.deepEqual(await seen, [file]);
});

test('a write is a change; a file beside it is not', async (t) => {
  const dir = await tempDir(t, 'gptoss-watch-');
  const file = join(dir, 'config.yaml');
  await writeFile(file, 'a: 1\n');
  const w = await watching(t, file);
  const seen = w.next(10_000);
  await writeFile(join(dir, 'other'), 'x');
  await writeFile(file, 'a: 2\n');
  t.deepEqual(await seen, [file]);
});
