// What each phase does with time: one table, read by `tick` (what to do now) and `wakeAt` (when to ask).
import type { Settings } from '../model/settings.js';
import type { Phase, RestartingState, State } from '../model/state.js';
import { log, still, type Input, type Step } from './handler.js';
import { runTick, runWake } from './health.js';
import { reconcileNow, withReconcile } from './moves.js';

type Of<P extends Phase> = Extract<State, { phase: P }>;

/** A phase's clock: when it next wants a tick (undefined: only events move it), and what that tick does. */
interface Timer<P extends Phase> {
  at(s: Of<P>, t: Settings): number | undefined;
  fire(s: Of<P>, inp: Input): Step;
}

const NONE = { at: () => undefined, fire: still };

/** A restart that is owed comes due: stop what may still run, then reconcile. */
const RESTART = {
  at: (s: RestartingState) => s.restart.at,
  fire(s: RestartingState, inp: Input): Step {
    const r = reconcileNow(s, inp, s.restart.stopFirst);
    const why = s.history.lastFailure ? `: ${s.history.lastFailure}` : '';
    const msg = `restarting container ${inp.settings.name} (restart ${s.history.restarts})${why}`;
    const said = log('info', 'container-restarting', msg, { restartCount: s.history.restarts });
    return { state: r.state, actions: [said, ...r.actions] };
  },
};

/** A running model moves on its probes' times, its load's stall deadline and its clean slate. */
const RUN = {
  at: (s: Of<'loading' | 'serving' | 'unhealthy'>, t: Settings) => {
    const times = runWake(s, t);
    return times.length ? Math.min(...times) : undefined;
  },
  fire: runTick,
};

export const TIMERS: { [P in Phase]: Timer<P> } = {
  // Re-check in place: the phase (and how long it has lasted) holds until something changes.
  // After Docker was lost, look first (a pending backoff still holds); else try again.
  waiting: {
    at: (s) => s.wait.recheckAt,
    fire(s, inp) {
      const { recheckAt: _r, ...wait } = s.wait;
      const next = { ...s, wait };
      return s.wait.resync ? { state: next, actions: [{ type: 'observe' }] } : withReconcile(next, inp);
    },
  },
  starting: NONE,
  loading: RUN,
  serving: RUN,
  unhealthy: RUN,
  backoff: RESTART,
  crashloop: RESTART,
  failed: {
    at: (s) => s.until,
    fire(s, inp) {
      const r = reconcileNow(s, inp, s.stopFirst);
      const msg = `restarting container ${inp.settings.name}: the restart budget's window has passed`;
      return { state: r.state, actions: [log('info', 'container-restarting', msg), ...r.actions] };
    },
  },
  stopping: NONE,
  stopped: NONE,
};

const timerOf = (s: State) => TIMERS[s.phase] as unknown as Timer<Phase>;

/** When this phase next wants a tick. */
export const phaseWake = (s: State, t: Settings): number | undefined => timerOf(s).at(s, t);

/** The phase's tick: its timer fires once its time has come (a timer may fire a moment early). */
export function phaseTick(s: State, inp: Input): Step {
  const at = phaseWake(s, inp.settings);
  return at === undefined || inp.now < at ? still(s) : timerOf(s).fire(s, inp);
}
