// The supervisor's state machine: (state, event, now) -> (state, actions). No I/O, no clock.
import type { Settings } from '../config/settings.js';
import { configApplied, configRejected, containerStopped, restartRequested, shutdown } from './control.js';
import { encodingsChanged, settleTick } from './encodings.js';
import { engineLog } from './engine.js';
import { log, still, type Event, type Handler, type Input, type Step } from './events.js';
import { probed, runTick, runWake } from './health.js';
import { scheduled } from './jobs.js';
import { boot, engineBack, engineLost, observed, prereqMissing, reconcileFailed, reconciled } from './lifecycle.js';
import { reconcileAction, reconcileNow } from './moves.js';
import { loadLine } from './load.js';
import { prepared } from './prepare.js';
import { pullFailed, pulled, pullProgress } from './pull.js';
import { isRunning, type State } from './state.js';

/** Restart phases and waits move on their own time; running models on their probes'. */
function phaseTick(s: State, inp: Input): Step {
  const { now, settings: t } = inp;
  if (s.phase === 'backoff' || s.phase === 'crashloop') {
    if (now < s.restart.at) return still(s);
    const r = reconcileNow(s, inp, s.restart.stopFirst);
    const why = s.history.lastFailure ? `: ${s.history.lastFailure}` : '';
    const msg = `restarting container ${t.name} (restart ${s.history.restarts})${why}`;
    return {
      state: r.state,
      actions: [log('info', 'container-restarting', msg, { restartCount: s.history.restarts }), ...r.actions],
    };
  }
  if (s.phase === 'failed') {
    if (now < s.until) return still(s);
    const r = reconcileNow(s, inp, s.stopFirst);
    const msg = `restarting container ${t.name}: the restart budget's window has passed`;
    return { state: r.state, actions: [log('info', 'container-restarting', msg), ...r.actions] };
  }
  if (s.phase === 'waiting') {
    // Re-check in place: the phase (and how long it has lasted) holds until something changes.
    // After Docker was lost, look first (a pending backoff still holds); else try again.
    if (s.wait.recheckAt === undefined || now < s.wait.recheckAt) return still(s);
    const { recheckAt: _r, ...wait } = s.wait;
    const next = { ...s, wait };
    return { state: next, actions: [s.wait.resync ? { type: 'observe' } : reconcileAction(next, inp)] };
  }
  return isRunning(s) ? runTick(s, inp) : still(s);
}

const tick: Handler<Extract<Event, { type: 'tick' }>> = (s, _ev, inp) => {
  const a = settleTick(s, inp.now);
  const b = phaseTick(a.state, inp);
  return { state: b.state, actions: [...a.actions, ...b.actions] };
};

type Table = { [K in Event['type']]: Handler<Extract<Event, { type: K }>> };

const HANDLERS: Table = {
  boot,
  observed,
  reconciled,
  reconcileFailed,
  prereqMissing,
  pullProgress,
  pulled,
  pullFailed,
  encodingsChanged,
  probed,
  engineLog,
  loadLine,
  prepared,
  tick,
  engineLost,
  engineBack,
  configApplied,
  configRejected,
  shutdown,
  containerStopped,
  scheduled,
  restartRequested,
};

export function step(s: State, ev: Event, inp: Input): Step {
  // Once stopping, only the container's stop matters.
  if ((s.phase === 'stopping' || s.phase === 'stopped') && ev.type !== 'containerStopped') return still(s);
  return (HANDLERS[ev.type] as Handler<Event>)(s, ev, inp);
}

/** When the machine next wants a tick, or undefined when only events can move it. */
export function wakeAt(s: State, t: Settings): number | undefined {
  const times: number[] = [];
  if (s.settle?.at !== undefined) times.push(s.settle.at);
  if (s.phase === 'backoff' || s.phase === 'crashloop') times.push(s.restart.at);
  if (s.phase === 'failed') times.push(s.until);
  if (s.phase === 'waiting' && s.wait.recheckAt !== undefined) times.push(s.wait.recheckAt);
  if (isRunning(s)) times.push(...runWake(s, t));
  return times.length ? Math.min(...times) : undefined;
}
