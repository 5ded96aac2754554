// When systemd hears READY=1, and when start-up may still be extended: the rule, as plain functions.
import type { Phase } from './state.js';

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
