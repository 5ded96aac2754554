// When systemd hears READY=1, and when start-up may still be extended: the rule, as plain functions.
import type { Settings } from '../model/settings.js';
import { stallAt } from './load.js';
import { isRunning, type Phase, type State } from '../model/state.js';

export type ReadyMode = 'serving' | 'started';

/**
 * `started`: as soon as supervision begins. `serving`: once the model serves, or as soon as start-up
 * has failed for now (backoff, crash loop) or cannot begin (waiting for Docker or the image), so that
 * `systemctl start` never hangs in "activating": the status line then says why it is not serving.
 */
export function readyDue(mode: ReadyMode, phase: Phase): boolean {
  // Stopping during start-up: STOPPING=1 was sent; READY=1 now would mark a dying unit active.
  if (phase === 'stopping' || phase === 'stopped') return false;
  if (mode === 'started') return true;
  return phase !== 'starting' && phase !== 'loading';
}

/** While a healthy load is under way, keep systemd's start timeout moving (EXTEND_TIMEOUT_USEC). */
export function extendDue(phase: Phase): boolean {
  return phase === 'starting' || phase === 'loading';
}

/** How far to push systemd's start timeout now: past the load's stall deadline, which progress moves. */
export const EXTEND_MARGIN_MS = 60_000;

/**
 * undefined: no extension (not loading). A load that makes progress keeps moving its stall deadline,
 * and with it systemd's; one that stalls is failed by the supervisor at the deadline (READY, backoff),
 * before systemd's timeout, which only a wedged supervisor reaches.
 */
export function extendFor(s: State, now: number, t: Settings): number | undefined {
  if (!extendDue(s.phase)) return undefined;
  const at = isRunning(s) ? stallAt(s, t) : undefined;
  return at === undefined ? EXTEND_MARGIN_MS : Math.max(0, at - now) + EXTEND_MARGIN_MS;
}
