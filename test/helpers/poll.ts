// A poll for the unit tests: a deadline, and a failure that says what it saw.

/**
 * How much slower than this machine the CPU runs the tests: scripts/arm64.sh sets GPTOSS_CPU_SCALE=10
 * (qemu-user emulates ARM64 ~10x slower); 1 elsewhere. Deadlines and CPU limits are multiplied by it.
 */
export const CPU_SCALE = Number(process.env['GPTOSS_CPU_SCALE'] ?? 1);

/** Checks `done` every `every` ms until it holds; throws after `ms`, naming `what` and what `seen` says. */
export async function until(
  what: string,
  ms: number,
  done: () => boolean,
  seen: () => string,
  every = 10,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`no ${what} within ${ms}ms; saw: ${seen()}`);
    await new Promise((r) => setTimeout(r, every));
  }
}
