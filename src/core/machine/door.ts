// The front door's orders, from the state: open while the model serves; closed, with the reason and
// an ETA, while it does not. And what the gate says of itself, kept in the state for the status line.
import type { DoorView, Upstream } from '../model/door.js';
import type { EventOf } from '../model/events.js';
import type { Settings } from '../model/settings.js';
import { isRunning, type State } from '../model/state.js';
import { formatDuration as fmt } from '../rules/duration.js';
import { PHASE_LABEL } from '../rules/load-phases.js';
import { waitLabel } from '../rules/wait.js';
import { still, type Handler } from './handler.js';
import { loadView } from './load.js';

export const doorReport: Handler<EventOf<'doorReport'>> = (s, ev) => still({ ...s, door: ev.report });

type Closed = Pick<DoorView, 'holdable' | 'message' | 'code'> & { eta?: number };

/** How long a load of this spec took last time, when known: what a restart will take again. */
const loadTime = (s: State, t: Settings) =>
  s.history.lastLoad?.spec === t.specHash ? s.history.lastLoad.took : undefined;

const plus = (at: number, took: number | undefined) => (took === undefined ? undefined : at + took);

/** `, ready in about 4m10s` when the ETA is ahead. */
const readyIn = (eta: number | undefined, now: number) =>
  eta !== undefined && eta > now ? `, ready in about ${fmt(eta - now)}` : '';

function closed(s: State, t: Settings, now: number): Closed {
  const c = phaseClosed(s, t, now);
  return c.code === 'model_loading' || c.code === 'model_restarting'
    ? { ...c, message: `${c.message}${readyIn(c.eta, now)}` }
    : c;
}

function phaseClosed(s: State, t: Settings, now: number): Closed {
  const name = t.servedName;
  const cause = s.history.cause ? ` (${s.history.cause})` : '';
  switch (s.phase) {
    case 'loading': {
      const eta = loadView(s, now, t.specHash).eta;
      const l = s.run.load;
      const what = s.run.probes.ready ? 'warming up (its first completion)' : l ? PHASE_LABEL[l.phase] : 'starting';
      return { holdable: true, code: 'model_loading', message: `${name} is loading: ${what}`, eta };
    }
    case 'serving':
    case 'unhealthy':
    case 'starting':
      return {
        holdable: true,
        code: s.history.restarts > 0 ? 'model_restarting' : 'model_loading',
        message: `${name} is starting`,
        eta: plus(now, loadTime(s, t)),
      };
    case 'backoff':
    case 'crashloop':
      return {
        holdable: true,
        code: 'model_restarting',
        message: `${name} is restarting after a failure${cause}`,
        eta: plus(s.restart.at, loadTime(s, t)),
      };
    case 'waiting': {
      // Docker coming back and memory being released are minutes at most; the rest needs a person.
      const holdable = s.wait.reason === 'docker' || s.wait.reason === 'gpu-release';
      const message = `${name} is not serving: waiting for ${waitLabel(s.wait.reason)}`;
      return { holdable, code: holdable ? 'model_restarting' : 'model_unavailable', message };
    }
    case 'failed':
      return {
        holdable: false,
        code: 'model_unavailable',
        message: `${name} is not serving: it failed too often and waits for an operator${cause}`,
        eta: plus(s.until, loadTime(s, t)),
      };
    case 'stopping':
    case 'stopped':
      return { holdable: false, code: 'model_stopped', message: `${name} is stopped` };
  }
}

/** The door's orders now; undefined when there is no gate (gate.enabled: false). */
export function doorView(s: State, t: Settings, now: number, keys: readonly string[]): DoorView | undefined {
  const g = t.gate;
  if (!g) return undefined;
  const fallback: Upstream = { host: '127.0.0.1', port: g.upstreamPort };
  const running = isRunning(s) ? s.run : undefined;
  const open = running !== undefined && running.probes.servedOnce && (s.phase === 'serving' || s.phase === 'unhealthy');
  const c = closed(s, t, now);
  return {
    open,
    ...(running ? { run: `${running.containerId}@${running.startedAt}` } : {}),
    upstream: running?.upstream ?? fallback,
    holdable: c.holdable,
    ...(c.eta !== undefined ? { eta: c.eta } : {}),
    message: open ? '' : c.message,
    code: c.code,
    holdTimeout: g.holdTimeout,
    maxHeld: g.maxHeld,
    drainTimeout: g.drainTimeout,
    maxBodySize: g.maxBodySize,
    keys: [...keys],
  };
}
