// The front door's policy for one request, as plain data: forward it, hold it, or answer it now.
import type { DoorView } from '../model/door.js';

/** An error as OpenAI's API shapes it (and its SDKs read it). */
export interface ApiError {
  error: { message: string; type: string; param: null; code: string };
}

export type Admission =
  | { kind: 'forward' }
  /** Wait for the door to open, until `until` (ms since the epoch). */
  | { kind: 'hold'; until: number }
  | { kind: 'answer'; status: number; retryAfter?: number; body: ApiError };

export const apiError = (message: string, type: string, code: string): ApiError => ({
  error: { message, type, param: null, code },
});

/** Seconds until the model should serve, for Retry-After: at least 1; `fallback` when nothing is known. */
export function retryAfter(view: DoorView, now: number, fallback: number): number {
  if (view.eta === undefined) return fallback;
  return Math.max(1, Math.ceil((view.eta - now) / 1000));
}

/** What is not yet known is a moment away: a client comes back in a few seconds. */
const UNKNOWN_RETRY_S = 5;
/** Only a person can make it serve: try again in a minute. */
const OPERATOR_RETRY_S = 60;

const unavailable = (view: DoorView, now: number, fallback: number, message = view.message): Admission => ({
  kind: 'answer',
  status: 503,
  retryAfter: retryAfter(view, now, fallback),
  body: apiError(message, 'service_unavailable', view.code),
});

/**
 * A request that arrives now: forwarded while the door is open; held while the model is on its
 * way, unless its ETA is past the hold, the queue is full, or only an operator can help (then 503
 * at once, with Retry-After and the reason).
 */
export function admit(view: DoorView, now: number, held: number): Admission {
  if (view.open) return { kind: 'forward' };
  if (!view.holdable) return unavailable(view, now, OPERATOR_RETRY_S);
  if (view.eta !== undefined && view.eta > now + view.holdTimeout) return unavailable(view, now, UNKNOWN_RETRY_S);
  if (held >= view.maxHeld) {
    const msg = `${view.message}; ${view.maxHeld} requests are already waiting`;
    return unavailable(view, now, UNKNOWN_RETRY_S, msg);
  }
  if (view.holdTimeout <= 0) return unavailable(view, now, UNKNOWN_RETRY_S);
  return { kind: 'hold', until: now + view.holdTimeout };
}

/** A held request whose time ran out: 503, with the state's own words and ETA. */
export function holdExpired(view: DoorView | undefined, now: number): Admission {
  if (!view) {
    const body = apiError('the model server is not reachable yet', 'service_unavailable', 'model_unavailable');
    return { kind: 'answer', status: 503, retryAfter: UNKNOWN_RETRY_S, body };
  }
  return unavailable(view, now, UNKNOWN_RETRY_S);
}

/** No valid `Authorization: Bearer KEY` where keys are asked for. */
export const unauthorized = (): Admission => ({
  kind: 'answer',
  status: 401,
  body: apiError(
    'Incorrect API key provided: send it as "Authorization: Bearer KEY" (gate.apiKeyFile on the model host)',
    'invalid_request_error',
    'invalid_api_key',
  ),
});
