// A poll for the unit tests: a deadline, and a failure that says what it saw.

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
