// The tiktoken files changed on disk: start a waiting model, restart a serving one, or only warn.
import { log, still, type Handler, type Step } from './handler.js';
import type { EventOf } from '../model/events.js';
import { reconcileNow } from './moves.js';
import { isRunning, isWaiting, type State } from '../model/state.js';

/** Unverified files can be checked only by being still: a copy in progress keeps growing. */
const SETTLE_MS = 500;

export const encodingsChanged: Handler<EventOf<'encodingsChanged'>> = (s, ev, inp) => {
  const { now, settings: t } = inp;
  if (!t.verifyEncodings) {
    const sizes = (ev.sizes ?? []).join(',');
    if (s.settle?.sizes !== sizes) return still({ ...s, settle: { sizes, at: now + SETTLE_MS } });
  }
  const base: State = s.settle ? { ...s, settle: undefined } : s;
  if (isWaiting(base, 'encodings')) {
    // The files are complete (and verified): start now, not at the next re-check.
    return ev.ok ? reconcileNow(base, inp) : still({ ...base, wait: { ...base.wait, detail: ev.detail } });
  }
  if (!isRunning(base)) return still(base);
  if (!ev.ok) {
    // vLLM read them at start: it keeps serving, but its next start would fail until they are back.
    const msg =
      `${ev.detail}; the model keeps serving (it read them at start), but it cannot start again until they ` +
      `are back`;
    return { state: base, actions: [log('warn', 'encodings-changed', msg)] };
  }
  const inputs = base.run.inputs;
  const before = inputs?.encodings;
  if (!ev.fingerprint || before === undefined || ev.fingerprint === before) {
    if (!ev.fingerprint || !inputs) return still(base);
    return still({ ...base, run: { ...base.run, inputs: { ...inputs, encodings: ev.fingerprint } } });
  }
  if (!t.restartOnEncodings) {
    const msg =
      'the tiktoken files changed; the model keeps the ones it loaded until its next start ' +
      '(encodings.restartOnChange is false)';
    return { state: base, actions: [log('warn', 'encodings-changed', msg)] };
  }
  const r = reconcileNow(base, inp, base.run.containerId, true);
  const msg = `the tiktoken files changed: restarting ${t.name} to load them (graceful stop first)`;
  return { state: r.state, actions: [log('info', 'container-restarting', msg, { reason: 'encodings' }), ...r.actions] };
};

/** The settle look is due: ask for it once. */
export function settleTick(s: State, now: number): Step {
  if (s.settle?.at === undefined || now < s.settle.at) return still(s);
  return { state: { ...s, settle: { sizes: s.settle.sizes } }, actions: [{ type: 'checkEncodings' }] };
}
