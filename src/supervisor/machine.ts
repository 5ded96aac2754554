// The supervisor's state machine: (state, event, now) -> (state, actions). No I/O, no clock.
import { formatDuration } from '../config/duration.js';
import type { Config } from '../config/schema.js';
import { backoffDelay, type BackoffPolicy } from './backoff.js';

export type Phase = 'waiting' | 'starting' | 'loading' | 'serving' | 'unhealthy' | 'backoff' | 'crashloop' | 'stopping' | 'stopped';
export type ProbeKind = 'startup' | 'liveness' | 'readiness';

/** What the supervisor needs from the config, flattened; all durations in ms. */
export interface Settings {
  name: string;
  servedName: string;
  port: number;
  startupPeriod: number;
  startupTimeout: number;
  livenessPeriod: number;
  livenessTimeout: number;
  failureThreshold: number;
  readinessPeriod: number;
  readinessTimeout: number;
  backoff: BackoffPolicy;
  resetAfter: number;
  crashLoopAfter: number;
  stopTimeout: number;
  stopOnExit: boolean;
  /** How often a missing prerequisite (Docker, the image) is checked again. */
  recheck: number;
}

export function settingsOf(c: Config): Settings {
  const { health: h, restart: r } = c;
  return {
    name: c.container.name,
    servedName: c.model.servedName,
    port: c.container.port,
    startupPeriod: h.startup.period,
    startupTimeout: h.startup.timeout,
    livenessPeriod: h.liveness.period,
    livenessTimeout: h.liveness.timeout,
    failureThreshold: h.liveness.failureThreshold,
    readinessPeriod: h.readiness.period,
    readinessTimeout: h.readiness.timeout,
    backoff: { initialDelay: r.initialDelay, multiplier: r.multiplier, maxDelay: r.maxDelay, jitter: r.jitter },
    resetAfter: r.resetAfter,
    crashLoopAfter: r.crashLoopAfter,
    stopTimeout: c.container.stopTimeout,
    stopOnExit: c.container.stopOnExit,
    recheck: h.startup.period,
  };
}

/** How a run of the container ended. */
export interface ExitInfo {
  /** null when the container is gone and no exit code is known. */
  code: number | null;
  oom: boolean;
  /** The last lines of the container's log. */
  tail: string[];
}

/** What the Docker engine says about the container with our name. */
export type Seen =
  | { kind: 'absent' }
  | { kind: 'running'; id: string; startedAt: number }
  | { kind: 'exited'; id: string; exit: ExitInfo };

/** The part of the state that survives a supervisor restart (state.json). */
export interface Persisted {
  restarts: number;
  totalRestarts: number;
  restartAt?: number;
  lastExit?: ExitInfo;
  /** The last failure, in full (for logs) and in a few words (for the status line). */
  lastFailure?: string;
  cause?: string;
}

export interface State extends Persisted {
  phase: Phase;
  /** When the phase began. */
  since: number;
  /** Phase waiting: what is missing, and why. */
  waitingFor?: 'docker' | 'image';
  detail?: string;
  recheckAt?: number;
  /** The next observation decides from scratch (boot, Docker back). */
  resync: boolean;
  containerId?: string;
  startedAt?: number;
  /** Bumped on every (re)start or failure; probe results of an older epoch are dropped. */
  epoch: number;
  live: boolean;
  ready: boolean;
  servedOnce: boolean;
  servingSince?: number;
  failures: number;
  lastProbeError?: string;
  due: Partial<Record<ProbeKind, number>>;
  inflight: Partial<Record<ProbeKind, boolean>>;
  /** Backoff: the container to stop first (it may hang, still running). */
  stopFirst?: string;
  /** The config on disk is invalid: the first problem, located; the last good config runs on. */
  configError?: string;
}

export type Event =
  | { type: 'boot'; persisted?: Persisted }
  | { type: 'observed'; seen: Seen }
  | { type: 'reconciled'; id: string; outcome: string; reason: string; startedAt: number }
  | { type: 'reconcileFailed'; kind: 'engine' | 'image' | 'docker'; message: string }
  | { type: 'probed'; kind: ProbeKind; epoch: number; ok: boolean; error?: string }
  | { type: 'tick' }
  | { type: 'engineLost'; message: string }
  | { type: 'engineBack' }
  | { type: 'configApplied'; specChanged: boolean; file: string; renamed?: boolean }
  | { type: 'configRejected'; error: string }
  /** `handover`: exit leaving the container as it is, for a new supervisor to adopt (upgrades). */
  | { type: 'shutdown'; signal: string; handover?: boolean }
  | { type: 'containerStopped' };

export type Level = 'debug' | 'info' | 'warn' | 'error';

export type Action =
  | { type: 'observe' }
  | { type: 'reconcile'; stopFirst?: string }
  | { type: 'probe'; kind: ProbeKind; epoch: number; timeout: number }
  | { type: 'persist'; record: Persisted }
  | { type: 'log'; level: Level; event: LogEvent; msg: string; fields?: Record<string, unknown> }
  | { type: 'stopContainer'; id: string; timeout: number }
  | { type: 'exit'; code: number };

/** Events an operator greps for; later mapped to stable journal MESSAGE_IDs. */
export type LogEvent =
  | 'supervisor-started'
  | 'container-ready'
  | 'container-started'
  | 'container-exited'
  | 'restart-scheduled'
  | 'container-restarting'
  | 'health-failed'
  | 'waiting'
  | 'docker-lost'
  | 'docker-back'
  | 'config-reloaded'
  | 'config-rejected'
  | 'supervisor-stopping'
  | 'supervisor-stopped';

export interface Input {
  now: number;
  /** A sample in [0, 1) for jitter. */
  random: number;
  settings: Settings;
}

export interface Step {
  state: State;
  actions: Action[];
}

/** Exit status after a handover (EX_TEMPFAIL); the unit restarts the service on it (RestartForceExitStatus=). */
export const HANDOVER_EXIT = 75;

export function initialState(now: number): State {
  return {
    phase: 'starting',
    since: now,
    resync: true,
    epoch: 0,
    live: false,
    ready: false,
    servedOnce: false,
    failures: 0,
    due: {},
    inflight: {},
    restarts: 0,
    totalRestarts: 0,
  };
}

const RUNNING_PHASES: ReadonlySet<Phase> = new Set(['loading', 'serving', 'unhealthy']);
const RESTART_PHASES: ReadonlySet<Phase> = new Set(['backoff', 'crashloop']);

export function persisted(s: State): Persisted {
  const p: Persisted = { restarts: s.restarts, totalRestarts: s.totalRestarts };
  if (s.restartAt !== undefined && RESTART_PHASES.has(s.phase)) p.restartAt = s.restartAt;
  if (s.lastExit) p.lastExit = s.lastExit;
  if (s.lastFailure) p.lastFailure = s.lastFailure;
  if (s.cause) p.cause = s.cause;
  return p;
}

function enter(s: State, phase: Phase, now: number): State {
  return s.phase === phase ? s : { ...s, phase, since: now };
}

const log = (level: Level, event: LogEvent, msg: string, fields?: Record<string, unknown>): Action =>
  fields ? { type: 'log', level, event, msg, fields } : { type: 'log', level, event, msg };

/** Leaves every probe behind: a new run (or none) begins. */
function freshRun(s: State): State {
  return { ...s, epoch: s.epoch + 1, live: false, ready: false, servedOnce: false, failures: 0, due: {}, inflight: {}, servingSince: undefined, lastProbeError: undefined };
}

function reconcileNow(s: State, now: number, stopFirst?: string): Step {
  const next = enter({ ...freshRun(s), resync: false, stopFirst: undefined, restartAt: undefined, recheckAt: undefined, waitingFor: undefined, detail: undefined }, 'starting', now);
  return { state: next, actions: [stopFirst ? { type: 'reconcile', stopFirst } : { type: 'reconcile' }] };
}

function exitText(e: ExitInfo | undefined): string {
  if (!e) return '';
  const code = e.code === null ? 'container removed' : `exit ${e.code}`;
  return e.oom ? `${code}, OOM-killed` : code;
}

/** A run failed: count it, pick the delay, and wait in backoff (or crash loop). */
function fail(s: State, inp: Input, reason: string, opts: { cause: string; exit?: ExitInfo; stillRunning?: string }): Step {
  const { now, settings: t } = inp;
  const restarts = s.restarts + 1;
  const delay = backoffDelay(restarts, t.backoff, inp.random);
  const phase: Phase = restarts >= t.crashLoopAfter ? 'crashloop' : 'backoff';
  let next: State = {
    ...freshRun(s),
    restarts,
    totalRestarts: s.totalRestarts + 1,
    restartAt: now + delay,
    lastFailure: reason,
    cause: opts.cause,
    stopFirst: opts.stillRunning,
    waitingFor: undefined,
    detail: undefined,
    recheckAt: undefined,
  };
  if (opts.exit) next.lastExit = opts.exit;
  next = enter(next, phase, now);
  const tail = opts.exit?.tail ?? [];
  const lastLines = tail.length ? `; last log: ${tail.slice(-3).join(' | ')}` : '';
  const msg = `${reason}; restart ${restarts} in ${fmt(delay)}${phase === 'crashloop' ? ' (crash loop)' : ''}${lastLines}`;
  const fields: Record<string, unknown> = { restartCount: restarts, delayMs: delay, state: phase };
  if (opts.exit) {
    fields['exitCode'] = opts.exit.code;
    fields['oomKilled'] = opts.exit.oom;
  }
  return {
    state: next,
    actions: [log(phase === 'crashloop' ? 'error' : 'warn', 'restart-scheduled', msg, fields), { type: 'persist', record: persisted(next) }],
  };
}

function waitFor(s: State, inp: Input, what: 'docker' | 'image', detail: string): Step {
  const already = s.phase === 'waiting' && s.waitingFor === what;
  if (already) return { state: { ...s, detail, recheckAt: inp.now + inp.settings.recheck }, actions: [] };
  const next = enter({ ...freshRun(s), waitingFor: what, detail, recheckAt: inp.now + inp.settings.recheck }, 'waiting', inp.now);
  // One line when the wait begins, not one per re-check.
  return { state: next, actions: [log('warn', 'waiting', `waiting for ${what}: ${detail}`)] };
}

export function step(s: State, ev: Event, inp: Input): Step {
  const { now, settings: t } = inp;
  if ((s.phase === 'stopping' || s.phase === 'stopped') && ev.type !== 'containerStopped') return { state: s, actions: [] };

  switch (ev.type) {
    case 'boot': {
      const p = ev.persisted;
      const next: State = p ? { ...s, restarts: p.restarts, totalRestarts: p.totalRestarts, restartAt: p.restartAt, lastExit: p.lastExit, lastFailure: p.lastFailure, cause: p.cause } : s;
      return { state: { ...next, resync: true }, actions: [{ type: 'observe' }] };
    }

    case 'observed':
      return observed(s, ev.seen, inp);

    case 'reconciled': {
      // An adopted container may have started hours ago: its start-up budget runs from now, or
      // one slow probe right after a supervisor restart would count as a failed start.
      const startedAt = ev.outcome === 'adopted' ? now : ev.startedAt;
      const next = enter({ ...freshRun(s), containerId: ev.id, startedAt, resync: false, waitingFor: undefined, detail: undefined, recheckAt: undefined }, 'loading', now);
      next.due = { startup: now };
      const fields = { containerId: ev.id, outcome: ev.outcome };
      return { state: next, actions: [log('info', 'container-started', `container ${t.name} ${ev.outcome} (${ev.id.slice(0, 12)}): ${ev.reason}`, fields)] };
    }

    case 'reconcileFailed':
      if (ev.kind === 'engine') return waitFor(s, inp, 'docker', ev.message);
      if (ev.kind === 'image') return waitFor(s, inp, 'image', ev.message);
      return fail(s, inp, `could not start the container: ${ev.message}`, { cause: 'start failed' });

    case 'probed':
      if (ev.epoch !== s.epoch || !RUNNING_PHASES.has(s.phase)) return { state: s, actions: [] };
      return probed({ ...s, inflight: { ...s.inflight, [ev.kind]: false } }, ev, inp);

    case 'tick':
      return tick(s, inp);

    case 'engineLost': {
      if (s.phase === 'waiting' && s.waitingFor === 'docker') return { state: { ...s, recheckAt: s.recheckAt ?? now + t.recheck }, actions: [] };
      // The event watcher says when Docker is back; the re-check covers a lost answer with the stream up.
      const next = enter({ ...freshRun(s), waitingFor: 'docker' as const, detail: ev.message, recheckAt: now + t.recheck, resync: true }, 'waiting', now);
      return { state: next, actions: [log('warn', 'docker-lost', `lost the Docker engine (${ev.message}); waiting for it to come back`)] };
    }

    case 'engineBack':
      if (s.phase !== 'waiting' || s.waitingFor !== 'docker') return { state: s, actions: [] };
      // The observation that follows says "back" (it may also come from a re-check first).
      return { state: { ...s, resync: true, recheckAt: undefined }, actions: [{ type: 'observe' }] };

    case 'configApplied': {
      const base = { ...s, configError: undefined };
      if (!ev.specChanged) {
        return { state: base, actions: [log('info', 'config-reloaded', `config ${ev.file} reloaded: supervisor settings applied, container untouched`)] };
      }
      const reloaded = log('info', 'config-reloaded', `config ${ev.file} reloaded: the container spec changed; recreating ${t.name} (graceful stop first)`);
      // Waiting (Docker, image) re-checks with the new spec on its own; otherwise act now.
      if (s.phase === 'waiting') return { state: base, actions: [reloaded] };
      // A new name would leave the old container holding the port: stop it first.
      const r = reconcileNow(base, now, ev.renamed ? s.containerId : undefined);
      return { state: r.state, actions: [reloaded, ...r.actions] };
    }

    case 'configRejected':
      return {
        state: { ...s, configError: ev.error },
        actions: [log('error', 'config-rejected', `config rejected, still running on the last good one: ${ev.error}`)],
      };

    case 'shutdown': {
      const stopping = log('info', 'supervisor-stopping', `received ${ev.signal}`);
      if (ev.handover) {
        const why = `handing over: container ${t.name} left as it is for the next supervisor to adopt`;
        return { state: enter(freshRun(s), 'stopped', now), actions: [stopping, log('info', 'supervisor-stopped', why), { type: 'exit', code: HANDOVER_EXIT }] };
      }
      if (t.stopOnExit && s.containerId) {
        const next = enter(freshRun(s), 'stopping', now);
        return { state: next, actions: [stopping, { type: 'stopContainer', id: s.containerId, timeout: t.stopTimeout }] };
      }
      const why = t.stopOnExit ? 'no container to stop' : `leaving container ${t.name} running (container.stopOnExit is false)`;
      return { state: enter(freshRun(s), 'stopped', now), actions: [stopping, log('info', 'supervisor-stopped', `stopped: ${why}`), { type: 'exit', code: 0 }] };
    }

    case 'containerStopped':
      if (s.phase !== 'stopping') return { state: s, actions: [] };
      return { state: enter(s, 'stopped', now), actions: [log('info', 'supervisor-stopped', `stopped container ${t.name}`), { type: 'exit', code: 0 }] };
  }
}

function observed(s: State, seen: Seen, inp: Input): Step {
  const { now } = inp;
  if (s.resync) {
    // Boot or Docker back: a running container is handed to reconcile (which adopts it when
    // its spec is right); a pending backoff from before is honoured; anything else starts now.
    // An answer while waiting for Docker is Docker back, whether the event stream said so or a re-check found it.
    const back: Action[] = s.phase === 'waiting' && s.waitingFor === 'docker' ? [log('info', 'docker-back', 'the Docker engine is back; looking at the container')] : [];
    if (seen.kind !== 'running' && s.restartAt !== undefined && s.restartAt > now) {
      const phase: Phase = s.restarts >= inp.settings.crashLoopAfter ? 'crashloop' : 'backoff';
      return { state: enter({ ...s, resync: false, waitingFor: undefined, detail: undefined }, phase, now), actions: back };
    }
    const r = reconcileNow(s, now);
    return { state: r.state, actions: [...back, ...r.actions] };
  }
  if (!RUNNING_PHASES.has(s.phase)) return { state: s, actions: [] };
  if (seen.kind === 'running') {
    if (seen.id === s.containerId) return { state: s, actions: [] };
    // Someone replaced our container behind our back: take whatever is there now.
    return reconcileNow(s, now);
  }
  if (seen.kind === 'absent') return fail(s, inp, `container ${inp.settings.name} was removed`, { cause: 'removed', exit: { code: null, oom: false, tail: [] } });
  if (seen.id !== s.containerId) return reconcileNow(s, now);
  return fail(s, inp, `container exited (${exitText(seen.exit)})`, { cause: exitText(seen.exit), exit: seen.exit });
}

function probed(s: State, ev: Extract<Event, { type: 'probed' }>, inp: Input): Step {
  const { now, settings: t } = inp;
  const started = s.startedAt ?? s.since;
  const budgetSpent = now - started >= t.startupTimeout;
  if (ev.kind === 'startup') {
    if (ev.ok) {
      const next = { ...s, live: true, lastProbeError: undefined, due: { readiness: now, liveness: now + t.livenessPeriod } };
      return { state: next, actions: [] };
    }
    if (budgetSpent) {
      return fail(s, inp, `start-up took longer than health.startup.timeout (${fmt(t.startupTimeout)}); last /health: ${ev.error ?? 'no answer'}`, { cause: 'start-up timeout', stillRunning: s.containerId });
    }
    return { state: { ...s, lastProbeError: ev.error }, actions: [] };
  }

  if (ev.kind === 'liveness') {
    if (ev.ok) {
      const next = { ...s, failures: 0, lastProbeError: undefined };
      return { state: phaseOfRun(next, now), actions: [] };
    }
    const failures = s.failures + 1;
    const what = `liveness probe failed (${failures} of ${t.failureThreshold}): ${ev.error ?? 'failed'}`;
    if (failures >= t.failureThreshold) {
      const f = fail(s, inp, `${what}; restarting the container`, { cause: `liveness: ${ev.error ?? 'failed'}`, stillRunning: s.containerId });
      return { state: f.state, actions: [log('warn', 'health-failed', what, { failures }), ...f.actions] };
    }
    const next = phaseOfRun({ ...s, failures, lastProbeError: ev.error }, now);
    return { state: next, actions: [log('warn', 'health-failed', what, { failures })] };
  }

  // readiness
  if (ev.ok) {
    const first = !s.servedOnce;
    const next = phaseOfRun({ ...s, ready: true, servedOnce: true, servingSince: s.servingSince ?? now, lastProbeError: s.failures ? s.lastProbeError : undefined }, now);
    const took = s.startedAt !== undefined ? ` after ${fmt(now - s.startedAt)}` : '';
    return { state: next, actions: first ? [log('info', 'container-ready', `serving ${t.servedName} on port ${t.port}${took}`, { containerId: s.containerId })] : [] };
  }
  if (!s.servedOnce && budgetSpent) {
    return fail(s, inp, `not ready within health.startup.timeout (${fmt(t.startupTimeout)}): ${ev.error ?? 'not ready'}`, { cause: 'never ready', stillRunning: s.containerId });
  }
  const next = phaseOfRun({ ...s, ready: false, lastProbeError: ev.error }, now);
  const lost = s.ready && s.servedOnce;
  return { state: next, actions: lost ? [log('warn', 'health-failed', `not ready: ${ev.error ?? 'readiness probe failed'}`)] : [] };
}

/** loading until first ready; then serving, or unhealthy while a probe fails. */
function phaseOfRun(s: State, now: number): State {
  if (!s.servedOnce) return enter(s, 'loading', now);
  return enter(s, s.ready && s.failures === 0 ? 'serving' : 'unhealthy', now);
}

const PERIOD: Record<ProbeKind, (t: Settings) => number> = {
  startup: (t) => t.startupPeriod,
  liveness: (t) => t.livenessPeriod,
  readiness: (t) => t.readinessPeriod,
};
const TIMEOUT: Record<ProbeKind, (t: Settings) => number> = {
  // A start-up probe is one /health request; it gets the liveness timeout.
  startup: (t) => t.livenessTimeout,
  liveness: (t) => t.livenessTimeout,
  readiness: (t) => t.readinessTimeout,
};

function tick(s: State, inp: Input): Step {
  const { now, settings: t } = inp;
  if (RESTART_PHASES.has(s.phase)) {
    if (s.restartAt !== undefined && now >= s.restartAt) {
      const r = reconcileNow(s, now, s.stopFirst);
      const why = s.lastFailure ? `: ${s.lastFailure}` : '';
      return { state: r.state, actions: [log('info', 'container-restarting', `restarting container ${t.name} (restart ${s.restarts})${why}`, { restartCount: s.restarts }), ...r.actions] };
    }
    return { state: s, actions: [] };
  }
  if (s.phase === 'waiting') {
    // Re-check in place: the phase (and how long it has lasted) holds until something changes.
    // After Docker was lost, look first (a pending backoff still holds); else try again.
    if (s.recheckAt !== undefined && now >= s.recheckAt) return { state: { ...s, recheckAt: undefined }, actions: [s.resync ? { type: 'observe' } : { type: 'reconcile' }] };
    return { state: s, actions: [] };
  }
  if (!RUNNING_PHASES.has(s.phase)) return { state: s, actions: [] };

  let next = s;
  const actions: Action[] = [];
  // A model that served for resetAfter has earned a clean slate.
  if (s.phase === 'serving' && s.restarts > 0 && s.servingSince !== undefined && now - s.servingSince >= t.resetAfter) {
    next = { ...next, restarts: 0 };
    actions.push({ type: 'persist', record: persisted(next) });
  }
  const due = { ...next.due };
  const inflight = { ...next.inflight };
  for (const kind of ['startup', 'liveness', 'readiness'] as const) {
    const at = due[kind];
    if (at === undefined || at > now || inflight[kind]) continue;
    due[kind] = now + PERIOD[kind](t);
    inflight[kind] = true;
    actions.push({ type: 'probe', kind, epoch: next.epoch, timeout: TIMEOUT[kind](t) });
  }
  return { state: { ...next, due, inflight }, actions };
}

/** When the machine next wants a tick, or undefined when only events can move it. */
export function wakeAt(s: State, t: Settings): number | undefined {
  const times: number[] = [];
  if (RESTART_PHASES.has(s.phase) && s.restartAt !== undefined) times.push(s.restartAt);
  if (s.phase === 'waiting' && s.recheckAt !== undefined) times.push(s.recheckAt);
  if (RUNNING_PHASES.has(s.phase)) {
    for (const kind of ['startup', 'liveness', 'readiness'] as const) {
      const at = s.due[kind];
      if (at !== undefined && !s.inflight[kind]) times.push(at);
    }
    if (s.phase === 'serving' && s.restarts > 0 && s.servingSince !== undefined) times.push(s.servingSince + t.resetAfter);
  }
  return times.length ? Math.min(...times) : undefined;
}

const fmt = formatDuration;
