// Restart delays: exponential, capped, with jitter; the random sample is an input so this stays pure.
import type { BackoffPolicy } from '../model/settings.js';

/**
 * The delay before restart number `attempt` (1-based): initialDelay x multiplier^(attempt-1),
 * capped at maxDelay, then moved by up to +/- jitter. `random` is in [0, 1).
 * The jittered delay never goes above maxDelay, so the cap the operator wrote holds.
 */
export function backoffDelay(attempt: number, p: BackoffPolicy, random: number): number {
  const n = Math.max(1, attempt);
  const base = Math.min(p.maxDelay, p.initialDelay * p.multiplier ** (n - 1));
  const spread = base * p.jitter * (2 * random - 1);
  return Math.round(Math.min(p.maxDelay, Math.max(0, base + spread)));
}
