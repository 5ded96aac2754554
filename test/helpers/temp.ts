// Temp folders for tests: each one removed, with all it holds, when its test ends.
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';

/** A fresh folder in os.tmpdir() ($TMPDIR, else /tmp), removed at the test's teardown, pass or fail. */
export async function tempDir(t: ExecutionContext, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const scratch: string[] = [];
// Whatever a helper made and nothing removed yet (a test that failed half-way): gone with the process.
process.on('exit', () => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

/**
 * A fresh folder in os.tmpdir() for a helper that is given no test (a scenario's dirs, config and
 * state; a bus or a registry, which a test may stop and start again): removed by removeScratch(),
 * which stopAll() calls after each test, and at the latest when the test process exits.
 */
export async function scratchDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

/** Removes every scratch folder made so far. */
export async function removeScratch(): Promise<void> {
  for (const dir of scratch.splice(0)) await rm(dir, { recursive: true, force: true });
}
