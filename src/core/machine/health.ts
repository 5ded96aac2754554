// Probes of a running model: when each is due, and what its result means for the run.
import { formatDuration as fmt } from '../rules/duration.js';
import type { Settings } from '../model/settings.js';
import { log, still, type Handler, type Input, type Step } from './handler.js';
import type { Action, EventOf, PeriodicProbe } from '../model/events.js';
import { engineProbed } from './engine.js';
import { deepProbed } from './jobs.js';
import { diskSampled, downloadMs, loadRecord, stallAt, stallCheck } from './load.js';
import { fail, persist } from './moves.js';
import { headroomLine } from './guard.js';
import { prepareTick } from './prepare.js';
import { onCanary } from './rollback.js';
import { isRunning, withinRun, type Probes, type RunningState } from '../model/state.js';

const PERIODIC: readonly PeriodicProbe[] = ['startup', 'liveness', 'readiness', 'engine', 'warmup'];

const PERIOD: Record<PeriodicProbe, (t: Settings) => number> = {
  startup: (t) => t.startupPeriod,
  liveness: (t) => t.livenessPeriod,
  readiness: (t) => t.readinessPeriod,
  engine: (t) => t.readinessPeriod,
  warmup: (t) => t.readinessPeriod,
};
const TIMEOUT: Record<PeriodicProbe, (t: Settings) => number> = {
  // A start-up probe is one /health request; it gets the liveness timeout.
  startup: (t) => t.livenessTimeout,
  liveness: (t) => t.livenessTimeout,
  readiness: (t) => t.readinessTimeout,
  engine: (t) => t.readinessTimeout,
  // The first completion of a run is the slow one (vLLM sets up its tokenizer and template lazily).
  warmup: (t) => t.deepTimeout,
};

/** loading until first ready; then serving, or unhealthy while a probe fails. */
export function phaseOfRun(s: RunningState, probes: Probes, now: number): RunningState {
  const phase = !probes.servedOnce ? 'loading' : probes.ready && probes.failures === 0 ? 'serving' : 'unhealthy';
  return withinRun(s, phase, { ...s.run, probes }, now);
}

export const probed: Handler<EventOf<'probed'>> = (s, ev, inp) => {
  if (ev.epoch !== s.epoch || !isRunning(s)) return still(s);
  const run = { ...s.run, probes: { ...s.run.probes, inflight: { ...s.run.probes.inflight, [ev.kind]: false } } };
  const r: RunningState = { ...s, run };
  switch (ev.kind) {
    case 'deep':
      return deepProbed(r, ev, inp);
    case 'startup':
      return startupProbed(r, ev, inp);
    case 'liveness':
      return livenessProbed(r, ev, inp);
    case 'readiness':
      return readinessProbed(r, ev, inp);
    case 'engine':
      return engineProbed(r, ev, inp);
    case 'warmup':
      return warmupProbed(r, ev, inp);
  }
};

/** The overall start-up cap: time spent downloading the weights does not count against it. */
const budgetSpent = (s: RunningState, inp: Input) =>
  inp.now - s.run.startedAt - downloadMs(s.run.load, inp.now) >= inp.settings.startupTimeout;

function startupProbed(r: RunningState, ev: EventOf<'probed'>, inp: Input): Step {
  const { now, settings: t } = inp;
  const sampled = ev.disk ? diskSampled(r, ev.disk, inp) : still(r);
  const s = sampled.state as RunningState;
  const p = s.run.probes;
  const said = sampled.actions;
  if (ev.ok) {
    const probes = {
      ...p,
      live: true,
      lastError: undefined,
      due: { readiness: now, liveness: now + t.livenessPeriod },
    };
    // /health answering is progress too (the API server is up; /v1/models comes next).
    const load = s.run.load && !p.live ? { ...s.run.load, progressAt: now } : s.run.load;
    return { state: { ...s, run: { ...s.run, probes, ...(load ? { load } : {}) } }, actions: said };
  }
  if (budgetSpent(s, inp)) {
    const why =
      `start-up took longer than health.startup.timeout (${fmt(t.startupTimeout)}, downloads left out); ` +
      `last /health: ${ev.error ?? 'no answer'}`;
    const f = fail(s, inp, why, { cause: 'start-up timeout', stillRunning: s.run.containerId });
    return { state: f.state, actions: [...said, ...f.actions] };
  }
  return { state: { ...s, run: { ...s.run, probes: { ...p, lastError: ev.error } } }, actions: said };
}

function livenessProbed(s: RunningState, ev: EventOf<'probed'>, inp: Input): Step {
  const { now, settings: t } = inp;
  const p = s.run.probes;
  if (ev.ok) return still(phaseOfRun(s, { ...p, failures: 0, lastError: undefined }, now));
  const failures = p.failures + 1;
  const what = `liveness probe failed (${failures} of ${t.failureThreshold}): ${ev.error ?? 'failed'}`;
  const said = log('warn', 'health-failed', what, { failures });
  if (failures >= t.failureThreshold) {
    const f = fail(s, inp, `${what}; restarting the container`, {
      cause: `liveness: ${ev.error ?? 'failed'}`,
      stillRunning: s.run.containerId,
    });
    return { state: f.state, actions: [said, ...f.actions] };
  }
  return { state: phaseOfRun(s, { ...p, failures, lastError: ev.error }, now), actions: [said] };
}

function readinessProbed(s: RunningState, ev: EventOf<'probed'>, inp: Input): Step {
  const { now, settings: t } = inp;
  const p = s.run.probes;
  if (ev.ok) {
    const first = !p.servedOnce && !p.ready;
    // /v1/models lists the model: one real completion (the warm-up) before it counts as serving.
    const due = first ? { ...p.due, warmup: now } : p.due;
    const probes = { ...p, ready: true, lastError: p.failures ? p.lastError : undefined, due };
    return still(phaseOfRun(s, probes, now));
  }
  if (!p.servedOnce && budgetSpent(s, inp)) {
    const why = `not ready within health.startup.timeout (${fmt(t.startupTimeout)}): ${ev.error ?? 'not ready'}`;
    return fail(s, inp, why, { cause: 'never ready', stillRunning: s.run.containerId });
  }
  const next = phaseOfRun(s, { ...p, ready: false, lastError: ev.error }, now);
  const lost = p.ready && p.servedOnce;
  return {
    state: next,
    actions: lost ? [log('warn', 'health-failed', `not ready: ${ev.error ?? 'readiness probe failed'}`)] : [],
  };
}

/**
 * The run's first completion: it serves (the gate opens, READY=1) only once one answers; vLLM's
 * /health is 200 before the server is warm (vllm#30700). Tried again each readiness period.
 */
function warmupProbed(s: RunningState, ev: EventOf<'probed'>, inp: Input): Step {
  const { now, settings: t } = inp;
  const p = s.run.probes;
  if (p.servedOnce) return still(s);
  // A reply gpt-oss's parser did not cope with is still the engine answering.
  if (ev.ok || ev.finding) {
    const { warmup: _w, ...due } = p.due;
    // The engine's load is followed from the first answer on (it has none before).
    const probes = {
      ...p,
      servedOnce: true,
      servingSince: p.servingSince ?? now,
      lastError: undefined,
      due: { ...due, engine: now + t.readinessPeriod },
    };
    return servedFirst(s, probes, inp);
  }
  const error = `the first completion failed: ${ev.error ?? ev.detail ?? 'no answer'}`;
  if (budgetSpent(s, inp)) {
    const why = `not ready within health.startup.timeout (${fmt(t.startupTimeout)}): ${error}`;
    return fail(s, inp, why, { cause: 'never ready', stillRunning: s.run.containerId });
  }
  return still(phaseOfRun(s, { ...p, lastError: error }, now));
}

/** The first ready answer of a run: the load is over; what it took is kept for the next one's ETA. */
function servedFirst(s: RunningState, probes: Probes, inp: Input): Step {
  const { now, settings: t } = inp;
  const l = s.run.load;
  const rec = l ? loadRecord(l, s.run.startedAt, now, t.specHash) : undefined;
  const base = rec ? { ...s, history: { ...s.history, lastLoad: rec } } : s;
  const next = phaseOfRun(base, probes, now);
  const phases = rec
    ? Object.entries(rec.phases)
        .filter(([p]) => p !== 'starting')
        .map(([p, ms]) => `${p} ${fmt(ms)}`)
        .join(', ')
    : '';
  const took = `${fmt(now - s.run.startedAt)}${phases ? ` (${phases})` : ''}`;
  const msg = `serving ${t.servedName} on port ${t.port} after ${took}`;
  const ready = log('info', 'container-ready', msg, {
    containerId: s.run.containerId,
    ...(rec ? { loadMs: rec.took, phasesMs: rec.phases } : {}),
  });
  const headroom = headroomLine(s);
  const actions = [ready, ...(headroom ? [headroom] : []), ...(rec ? [persist(next, t)] : [])];
  if (!onCanary(next, t) || next.run.probes.inflight.deep) return { state: next, actions };
  // A new spec on trial: a deep probe at once, its canary (one failure sends the model back).
  const deep = { ...next.run.probes, inflight: { ...next.run.probes.inflight, deep: true } };
  const canary: Action = { type: 'probe', kind: 'deep', epoch: next.epoch, timeout: t.deepTimeout };
  return { state: { ...next, run: { ...next.run, probes: deep } }, actions: [...actions, canary] };
}

/** A running model's tick: a clean slate after resetAfter of serving, and the probes that are due. */
export function runTick(s: RunningState, inp: Input): Step {
  const { now, settings: t } = inp;
  const stalled = stallCheck(s, inp);
  if (stalled) return stalled;
  const retry = prepareTick(s, inp);
  let next = retry ? (retry.state as RunningState) : s;
  const actions: Action[] = retry ? [...retry.actions] : [];
  // A model that served for resetAfter has earned a clean slate.
  const since = s.run.probes.servingSince;
  if (s.phase === 'serving' && s.history.restarts > 0 && since !== undefined && now - since >= t.resetAfter) {
    const { guardKills: _g, ...history } = next.history;
    next = { ...next, history: { ...history, restarts: 0 } };
    actions.push(persist(next, t));
  }
  const due = { ...next.run.probes.due };
  const inflight = { ...next.run.probes.inflight };
  for (const kind of PERIODIC) {
    const at = due[kind];
    if (at === undefined || at > now || inflight[kind]) continue;
    due[kind] = now + PERIOD[kind](t);
    inflight[kind] = true;
    const probe: Action = { type: 'probe', kind, epoch: next.epoch, timeout: TIMEOUT[kind](t) };
    actions.push(kind === 'startup' && wantsDisk(next) ? { ...probe, disk: true } : probe);
  }
  return { state: { ...next, run: { ...next.run, probes: { ...next.run.probes, due, inflight } } }, actions };
}

/** When a running model next needs a tick: a probe due, or the clean slate. */
export function runWake(s: RunningState, t: Settings): number[] {
  const p = s.run.probes;
  const times: number[] = [];
  for (const kind of PERIODIC) {
    const at = p.due[kind];
    if (at !== undefined && !p.inflight[kind]) times.push(at);
  }
  if (s.phase === 'serving' && s.history.restarts > 0 && p.servingSince !== undefined)
    times.push(p.servingSince + t.resetAfter);
  const stall = stallAt(s, t);
  if (stall !== undefined) times.push(stall);
  if (s.run.prepare?.retryAt !== undefined) times.push(s.run.prepare.retryAt);
  return times;
}

/** Look at the model's folder while the weights may still be coming (until it is complete, or compiling starts). */
function wantsDisk(s: RunningState): boolean {
  const l = s.run.load;
  if (!l || s.phase !== 'loading' || l.download?.complete) return false;
  return l.phase === 'starting' || l.phase === 'weights' || l.phase === 'download';
}
