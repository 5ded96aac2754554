// The supervisor's state machine: (state, event, now) -> (state, actions). No I/O, no clock.
import type { Settings } from '../model/settings.js';
import { configApplied, configRejected, containerStopped, restartRequested, shutdown } from './control.js';
import { doorReport } from './door.js';
import { encodingsChanged, settleTick } from './encodings.js';
import { engineLog } from './engine.js';
import { memorySampled } from './guard.js';
import { gpuSampled } from './telemetry.js';
import { still, type Handler, type Input, type Step } from './handler.js';
import type { Event } from '../model/events.js';
import { probed } from './health.js';
import { scheduled } from './jobs.js';
import { boot, engineBack, engineLost, observed, prereqMissing, reconcileFailed, reconciled } from './lifecycle.js';
import { phaseTick, phaseWake } from './timers.js';
import { loadLine } from './load.js';
import { prepared } from './prepare.js';
import { afterStep, rollbackRequested } from './rollback.js';
import { pullFailed, pulled, pullProgress } from './pull.js';
import type { State } from '../model/state.js';

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
  rollbackRequested,
  doorReport,
  memorySampled,
  gpuSampled,
};

/** Events that come on a clock and mostly change nothing: no debug line says they were handled. */
const ROUTINE_EVENTS: ReadonlySet<Event['type']> = new Set([
  'tick',
  'probed',
  'pullProgress',
  'doorReport',
  'memorySampled',
  'gpuSampled',
]);

/**
 * The debug line of an event that is not routine (ticks, probes, samples): what the machine made of
 * it. It proves the supervisor looked, where what it decided was to do nothing.
 */
export function handledLine(ev: Event, was: State['phase'], r: Step): string | undefined {
  if (ROUTINE_EVENTS.has(ev.type)) return undefined;
  const did = r.actions.filter((a) => a.type !== 'log').map((a) => a.type);
  return `${ev.type} handled: ${was} -> ${r.state.phase}${did.length ? `; ${did.join(', ')}` : ''}`;
}

/** Docker's own share of a stop, and a little for us. */
const STOP_SLACK_MS = 30_000;

/** How long a shutdown may take: any operation under way, the drain, then the container's graceful stop. */
export function stopBudget(t: Settings): number {
  return t.stopOnExit ? (t.gate?.drainTimeout ?? 0) + 2 * t.stopTimeout + STOP_SLACK_MS : STOP_SLACK_MS;
}

export function step(s: State, ev: Event, inp: Input): Step {
  // Once stopping, only the container's stop matters.
  if ((s.phase === 'stopping' || s.phase === 'stopped') && ev.type !== 'containerStopped') return still(s);
  return afterStep(s, (HANDLERS[ev.type] as Handler<Event>)(s, ev, inp), inp);
}

/** When the machine next wants a tick, or undefined when only events can move it. */
export function wakeAt(s: State, t: Settings): number | undefined {
  const times = [s.settle?.at, phaseWake(s, t)].filter((x): x is number => x !== undefined);
  return times.length ? Math.min(...times) : undefined;
}
