// One deadline for any promise: a hung peer (dockerd, the bus) must not hold a caller forever.

/**
 * Settles as `p` does, or rejects with `late()` once `ms` have passed. The timer never outlives
 * the race, so a settled promise keeps no process alive.
 */
export function withDeadline<T>(p: Promise<T>, ms: number, late: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(late()), ms);
  });
  return Promise.race([p, expired]).finally(() => clearTimeout(timer));
}
