// How much of the GPU a start may ask for: the utilization that fits what is free.

/** A utilization that fits `free` of `total` with a little room, floored to hundredths; undefined below 0.05. */
export function fittingUtilization(freeGiB: number, totalGiB: number): number | undefined {
  if (!(totalGiB > 0)) return undefined;
  const u = Math.floor(((freeGiB - 0.5) / totalGiB) * 100) / 100;
  return u >= 0.05 ? Math.min(u, 0.99) : undefined;
}
