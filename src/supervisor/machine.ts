// The supervisor's state machine: (state, event, now) -> (state, actions). No I/O, no clock.
import { formatDuration } from '../config/duration.js';
import type { Config } from '../config/schema.js';
import { backoffDelay, type BackoffPolicy } from './backoff.js';
import { diagnose, type Diagnosis } from './diagnose.js';
import { CREDENTIAL_WAITS, waitLabel, type WaitReason } from './wait.js';

export type Phase = 'waiting' | 'starting' | 'loading' | 'serving' | 'unhealthy' | 'backoff' | 'crashloop' | 'stopping' | 'stopped';
export type ProbeKind = 'startup' | 'liveness' | 'readiness' | 'deep';
type PeriodicProbe = Exclude<ProbeKind, 'deep'>;
export type Job = 'deepProbe' | 'maintenanceRestart';

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
  /** How often a missing prerequisite (Docker, the image, files, memory) is checked again. */
  recheck: number;
  /** What diagnoses quote. */
  image: string;
  modelId: string;
  utilization: number;
  maxModelLen: number;
  encodingsDir: string;
  /** Restart the container when the tiktoken files change under it. */
  restartOnEncodings: boolean;
  deepTimeout: number;
  deepFailureThreshold: number;
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
    image: c.container.image,
    modelId: c.model.id,
    utilization: c.model.gpuMemoryUtilization,
    maxModelLen: c.model.maxModelLen,
    encodingsDir: c.paths.encodings,
    restartOnEncodings: c.encodings.restartOnChange,
    deepTimeout: c.schedule.deepProbe.timeout,
    deepFailureThreshold: c.schedule.deepProbe.failureThreshold,
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

/**
 * What a run was started with, in forms safe to keep: a fingerprint of the HF token (never the
 * token), the model id, and a fingerprint of the tiktoken files.
 */
export interface RunInputs {
  token?: string;
  model: string;
  encodings?: string;
}

export type DiagnosisRecord = Omit<Diagnosis, 'waitFor'> & { at: number };

/** The part of the state that survives a supervisor restart (state.json). */
export interface Persisted {
  restarts: number;
  totalRestarts: number;
  restartAt?: number;
  lastExit?: ExitInfo;
  /** The last failure, in full (for logs) and in a few words (for the status line). */
  lastFailure?: string;
  cause?: string;
  /** The last failure's diagnosis: code, summary, remedy. */
  diagnosis?: DiagnosisRecord;
  /** The last scheduled deep probe: when, whether it passed, what it found. */
  lastDeep?: { at: number; ok: boolean; detail: string };
  /** When the last planned maintenance restart happened. */
  lastMaintenance?: number;
}

export interface State extends Persisted {
  phase: Phase;
  /** When the phase began. */
  since: number;
  /** Phase waiting: what is missing, and why. */
  waitingFor?: WaitReason;
  detail?: string;
  recheckAt?: number;
  /** Waiting for a token or model change: the inputs Hugging Face refused. */
  blocked?: RunInputs;
  /** An image pull is under way (phase waiting for the image). */
  pulling: boolean;
  pullFailures: number;
  /** What the current run was started with. */
  inputs?: RunInputs;
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
  /** Deep probes failed in a row (schedule.deepProbe.failureThreshold restarts). */
  deepFailures: number;
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
  | { type: 'reconciled'; id: string; outcome: string; reason: string; startedAt: number; inputs?: RunInputs }
  | { type: 'reconcileFailed'; kind: 'engine' | 'image' | 'docker'; message: string }
  /** A preflight check failed before a start: nothing was started. */
  | { type: 'prereqMissing'; waitFor: WaitReason; message: string; fix?: string }
  | { type: 'pullProgress'; text: string }
  | { type: 'pulled'; summary?: string }
  | { type: 'pullFailed'; kind: 'not-found' | 'auth' | 'network' | 'aborted'; message: string }
  /** The tiktoken files changed on disk: `ok` when both are there (and verified). */
  | { type: 'encodingsChanged'; ok: boolean; fingerprint?: string; detail: string }
  /** Something a wait depends on changed (the HF token file): try again now. */
  | { type: 'prereqChanged'; what: string }
  | { type: 'probed'; kind: ProbeKind; epoch: number; ok: boolean; error?: string; detail?: string }
  | { type: 'tick' }
  | { type: 'engineLost'; message: string }
  | { type: 'engineBack' }
  /** `what` names the change for the log: `config FILE` (default) or `HF token FILE`. */
  | { type: 'configApplied'; specChanged: boolean; file: string; renamed?: boolean; what?: string }
  | { type: 'configRejected'; error: string }
  /** `handover`: exit leaving the container as it is, for a new supervisor to adopt (upgrades). */
  | { type: 'shutdown'; signal: string; handover?: boolean }
  | { type: 'containerStopped' }
  /** A scheduled job's time came (schedule.* in the config). */
  | { type: 'scheduled'; job: Job }
  /** Restart asked for by an operator (D-Bus Restart(), `gptoss-supervisor restart`). */
  | { type: 'restartRequested'; by: string };

export type Level = 'debug' | 'info' | 'warn' | 'error';

export type Action =
  | { type: 'observe' }
  | { type: 'reconcile'; stopFirst?: string; blocked?: { inputs: RunInputs; waitFor: WaitReason } }
  | { type: 'pull'; image: string }
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
  | 'diagnosis'
  | 'image-pulled'
  | 'encodings-changed'
  | 'docker-lost'
  | 'docker-back'
  | 'config-reloaded'
  | 'config-rejected'
  | 'deep-probe'
  | 'job-skipped'
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
    deepFailures: 0,
    pulling: false,
    pullFailures: 0,
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
  if (s.diagnosis) p.diagnosis = s.diagnosis;
  if (s.lastDeep) p.lastDeep = s.lastDeep;
  if (s.lastMaintenance !== undefined) p.lastMaintenance = s.lastMaintenance;
  return p;
}

function enter(s: State, phase: Phase, now: number): State {
  return s.phase === phase ? s : { ...s, phase, since: now };
}

const log = (level: Level, event: LogEvent, msg: string, fields?: Record<string, unknown>): Action =>
  fields ? { type: 'log', level, event, msg, fields } : { type: 'log', level, event, msg };

/** Leaves every probe behind: a new run (or none) begins. */
function freshRun(s: State): State {
  return { ...s, epoch: s.epoch + 1, live: false, ready: false, servedOnce: false, failures: 0, deepFailures: 0, due: {}, inflight: {}, servingSince: undefined, lastProbeError: undefined };
}

/** In a credential wait: the refused inputs, for the adapter to refuse a start while they are unchanged. */
function credentialBlock(s: State): { inputs: RunInputs; waitFor: WaitReason } | undefined {
  return s.phase === 'waiting' && s.waitingFor && CREDENTIAL_WAITS.has(s.waitingFor) && s.blocked ? { inputs: s.blocked, waitFor: s.waitingFor } : undefined;
}

function reconcileNow(s: State, now: number, stopFirst?: string): Step {
  // A credential wait carries over: the next start is refused while the token and model are the refused ones.
  const credential = credentialBlock(s);
  const next = enter({ ...freshRun(s), resync: false, stopFirst: undefined, restartAt: undefined, recheckAt: undefined, waitingFor: undefined, detail: undefined, blocked: credential?.inputs }, 'starting', now);
  const action: Action = { type: 'reconcile' };
  if (stopFirst) action.stopFirst = stopFirst;
  if (credential) action.blocked = credential;
  return { state: next, actions: [action] };
}

function exitText(e: ExitInfo | undefined): string {
  if (!e) return '';
  const code = e.code === null ? 'container removed' : `exit ${e.code}`;
  return e.oom ? `${code}, OOM-killed` : code;
}

/** A run failed: count it, pick the delay, and wait in backoff (or crash loop). */
function fail(s: State, inp: Input, reason: string, opts: { cause: string; exit?: ExitInfo; stillRunning?: string; diagnosis?: Diagnosis }): Step {
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
  const said = diagnosisLog(s, opts.diagnosis, now);
  if (said.record) next.diagnosis = said.record;
  next = enter(next, phase, now);
  const tail = opts.exit?.tail ?? [];
  // The lines that say what went wrong, when there are any: stderr and stdout interleave
  // loosely in Docker's log, so the very last lines may be a banner printed just before.
  const notable = tail.filter((l) => /\b(error|exception|traceback|fatal|failed|killed)\b/i.test(l));
  const shown = (notable.length ? notable : tail).slice(-3);
  const lastLines = shown.length ? `; last log: ${shown.join(' | ')}` : '';
  const msg = `${reason}; restart ${restarts} in ${fmt(delay)}${phase === 'crashloop' ? ' (crash loop)' : ''}${lastLines}`;
  const fields: Record<string, unknown> = { restartCount: restarts, delayMs: delay, state: phase };
  if (opts.exit) {
    fields['exitCode'] = opts.exit.code;
    fields['oomKilled'] = opts.exit.oom;
  }
  if (opts.diagnosis) fields['diagnosis'] = opts.diagnosis.code;
  return {
    state: next,
    actions: [...said.actions, log(phase === 'crashloop' ? 'error' : 'warn', 'restart-scheduled', msg, fields), { type: 'persist', record: persisted(next) }],
  };
}

/**
 * The diagnosis of a failure, said once at priority err (journalctl -p err), and again only
 * when it changes: a crash loop repeats its restart line, not the explanation.
 */
function diagnosisLog(s: State, d: Diagnosis | undefined, now: number): { record?: DiagnosisRecord; actions: Action[] } {
  if (!d) return { actions: [] };
  const record: DiagnosisRecord = { code: d.code, summary: d.summary, remedy: d.remedy, at: now };
  if (s.diagnosis?.code === d.code && s.diagnosis.summary === d.summary) return { record, actions: [] };
  const evidence = (d as { evidence?: string }).evidence;
  const msg = `diagnosis ${d.code}: ${d.summary}; fix: ${d.remedy}${evidence ? `; log: ${evidence}` : ''}`;
  return { record, actions: [log('error', 'diagnosis', msg, { diagnosis: d.code })] };
}

function diagnoseExit(exit: ExitInfo, t: Settings): Diagnosis {
  return diagnose({ exitCode: exit.code, oom: exit.oom, lines: exit.tail, ...quoted(t) });
}

function quoted(t: Settings) {
  return { utilization: t.utilization, maxModelLen: t.maxModelLen, port: t.port, encodingsDir: t.encodingsDir, modelId: t.modelId, image: t.image };
}

/** How often each wait is re-checked; undefined: only a change (config, files) ends it. */
function recheckOf(what: WaitReason, t: Settings): number | undefined {
  if (what === 'config') return undefined;
  // Only a new runtime and a Docker restart fix this one; the restart is seen by itself.
  if (what === 'gpu-runtime') return t.backoff.maxDelay;
  return t.recheck;
}

/** A failure a restart cannot fix: wait for what can, without a restart loop. */
function blockOn(s: State, inp: Input, d: Diagnosis, exit: ExitInfo | undefined): Step {
  const what = d.waitFor ?? 'config';
  const said = diagnosisLog(s, d, inp.now);
  // The files looked right to the preflight, yet vLLM could not load them (a mount, a format):
  // only a change of the files or the config ends this wait, not a timer that would restart it.
  const every = what === 'encodings' ? undefined : recheckOf(what, inp.settings);
  let next: State = {
    ...freshRun(s),
    waitingFor: what,
    detail: d.summary,
    recheckAt: every === undefined ? undefined : inp.now + every,
    blocked: CREDENTIAL_WAITS.has(what) ? s.inputs ?? { model: inp.settings.modelId } : undefined,
    restartAt: undefined,
    stopFirst: undefined,
    lastFailure: d.summary,
    cause: d.code,
  };
  if (said.record) next.diagnosis = said.record;
  if (exit) next.lastExit = exit;
  const already = s.phase === 'waiting' && s.waitingFor === what;
  next = enter(next, 'waiting', inp.now);
  const waiting = already ? [] : [log('warn', 'waiting', `waiting for ${waitLabel(what)}: ${d.summary}; not restarting until it changes`, { diagnosis: d.code })];
  return { state: next, actions: [...said.actions, ...waiting, { type: 'persist', record: persisted(next) }] };
}

function waitFor(s: State, inp: Input, what: WaitReason, detail: string, fix?: string, extra: Action[] = []): Step {
  const every = recheckOf(what, inp.settings);
  const recheckAt = every === undefined ? undefined : inp.now + every;
  const already = s.phase === 'waiting' && s.waitingFor === what;
  if (already) return { state: { ...s, detail, recheckAt }, actions: extra };
  const next = enter({ ...freshRun(s), waitingFor: what, detail, recheckAt, blocked: CREDENTIAL_WAITS.has(what) ? s.blocked : undefined }, 'waiting', inp.now);
  // One line when the wait begins, not one per re-check.
  return { state: next, actions: [log('warn', 'waiting', `waiting for ${waitLabel(what)}: ${detail}${fix ? `; fix: ${fix}` : ''}`, { waitingFor: what }), ...extra] };
}

export function step(s: State, ev: Event, inp: Input): Step {
  const { now, settings: t } = inp;
  if ((s.phase === 'stopping' || s.phase === 'stopped') && ev.type !== 'containerStopped') return { state: s, actions: [] };

  switch (ev.type) {
    case 'boot': {
      const p = ev.persisted;
      const next: State = p ? { ...s, restarts: p.restarts, totalRestarts: p.totalRestarts, restartAt: p.restartAt, lastExit: p.lastExit, lastFailure: p.lastFailure, cause: p.cause, diagnosis: p.diagnosis, lastDeep: p.lastDeep, lastMaintenance: p.lastMaintenance } : s;
      return { state: { ...next, resync: true }, actions: [{ type: 'observe' }] };
    }

    case 'observed':
      return observed(s, ev.seen, inp);

    case 'reconciled': {
      // An adopted container may have started hours ago: its start-up budget runs from now, or
      // one slow probe right after a supervisor restart would count as a failed start.
      const startedAt = ev.outcome === 'adopted' ? now : ev.startedAt;
      const next = enter({ ...freshRun(s), containerId: ev.id, startedAt, resync: false, waitingFor: undefined, detail: undefined, recheckAt: undefined, blocked: undefined, pullFailures: 0, inputs: ev.inputs }, 'loading', now);
      next.due = { startup: now };
      const fields = { containerId: ev.id, outcome: ev.outcome };
      return { state: next, actions: [log('info', 'container-started', `container ${t.name} ${ev.outcome} (${ev.id.slice(0, 12)}): ${ev.reason}`, fields)] };
    }

    case 'reconcileFailed': {
      if (ev.kind === 'engine') return waitFor(s, inp, 'docker', ev.message);
      if (ev.kind === 'image') {
        const pull: Action[] = s.pulling ? [] : [{ type: 'pull', image: t.image }];
        const r = waitFor({ ...s, pulling: true }, inp, 'image', s.pulling && s.detail ? s.detail : `pulling ${t.image}`, undefined, pull);
        // The pull's own outcome decides the next step, not the re-check.
        return { state: { ...r.state, pulling: true, recheckAt: undefined }, actions: r.actions };
      }
      const d = diagnose({ exitCode: null, oom: false, lines: [ev.message], ...quoted(t) });
      if (d.code !== 'unknown' && d.waitFor) return blockOn(s, inp, d, undefined);
      return fail(s, inp, `could not start the container: ${ev.message}`, { cause: 'start failed', ...(d.code === 'unknown' ? {} : { diagnosis: d }) });
    }

    case 'prereqMissing':
      return waitFor(s, inp, ev.waitFor, ev.message, ev.fix);

    case 'pullProgress':
      if (!(s.phase === 'waiting' && s.waitingFor === 'image')) return { state: s, actions: [] };
      return { state: { ...s, detail: `pulling ${t.image}: ${ev.text}` }, actions: [] };

    case 'pulled': {
      const base = { ...s, pulling: false, pullFailures: 0 };
      if (!(s.phase === 'waiting' && s.waitingFor === 'image')) return { state: base, actions: [] };
      const r = reconcileNow(base, now);
      return { state: r.state, actions: [log('info', 'image-pulled', `pulled ${t.image}${ev.summary ? ` (${ev.summary})` : ''}`), ...r.actions] };
    }

    case 'pullFailed': {
      const base = { ...s, pulling: false };
      if (ev.kind === 'aborted' || !(s.phase === 'waiting' && s.waitingFor === 'image')) return { state: base, actions: [] };
      const n = s.pullFailures + 1;
      // A registry that is down or unreachable comes back; a wrong name or refused credentials need a person.
      const delay = ev.kind === 'network' ? backoffDelay(n, t.backoff, inp.random) : t.backoff.maxDelay;
      const why = ev.kind === 'not-found'
        ? `${t.image} does not exist in its registry (${ev.message}); check container.image`
        : ev.kind === 'auth'
          ? `the registry refused access to ${t.image} (${ev.message}); run \`docker login ${t.image.split('/')[0]}\` as root (container.registryAuth)`
          : `pulling ${t.image} failed (${ev.message})`;
      const next = { ...base, pullFailures: n, detail: `${why}; next try in ${fmt(delay)}`, recheckAt: now + delay };
      return { state: next, actions: [log(ev.kind === 'network' ? 'warn' : 'error', 'waiting', `image pull failed (attempt ${n}): ${why}; next try in ${fmt(delay)}`, { pullFailure: ev.kind })] };
    }

    case 'encodingsChanged':
      return encodingsChanged(s, ev, inp);

    case 'prereqChanged':
      if (s.phase !== 'waiting' || s.waitingFor === 'docker' || s.waitingFor === 'image') return { state: s, actions: [] };
      return reconcileNow(s, now);

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
      // The stream was down a while: whatever happened meanwhile (an exit) is seen by looking.
      if (s.phase !== 'waiting' || s.waitingFor !== 'docker') return { state: s, actions: [{ type: 'observe' }] };
      // The observation that follows says "back" (it may also come from a re-check first).
      return { state: { ...s, resync: true, recheckAt: undefined }, actions: [{ type: 'observe' }] };

    case 'configApplied': {
      const base = { ...s, configError: undefined };
      const what = ev.what ?? `config ${ev.file}`;
      if (!ev.specChanged) {
        const applied = log('info', 'config-reloaded', `${what} reloaded: supervisor settings applied, container untouched`);
        // A wait on files, memory, the port or the token re-checks under the new settings at once.
        if (s.phase === 'waiting' && s.waitingFor !== 'docker' && s.waitingFor !== 'image') {
          const r = reconcileNow(base, now);
          return { state: r.state, actions: [applied, ...r.actions] };
        }
        return { state: base, actions: [applied] };
      }
      const reloaded = log('info', 'config-reloaded', `${what} reloaded: the container spec changed; recreating ${t.name} (graceful stop first)`);
      // Waiting for Docker re-checks with the new spec on its own; any other wait may be what the edit fixes.
      if (s.phase === 'waiting' && s.waitingFor === 'docker') return { state: base, actions: [reloaded] };
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

    case 'scheduled':
      return scheduled(s, ev.job, inp);

    case 'restartRequested': {
      // Through the same graceful path as any restart; not a failure, so no backoff and no count.
      if (s.phase === 'waiting' && s.waitingFor === 'docker') {
        return { state: s, actions: [log('warn', 'job-skipped', `restart asked by ${ev.by}: not now, waiting for Docker`)] };
      }
      const r = reconcileNow(s, now, s.containerId);
      return { state: r.state, actions: [log('info', 'container-restarting', `restarting ${t.name}, as asked by ${ev.by} (graceful stop first)`, { reason: 'requested' }), ...r.actions] };
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
    if (seen.id === s.containerId) {
      // Started again behind our back (`docker restart`): a new load, with its own budget, not a failure.
      if (s.startedAt !== undefined && seen.startedAt > s.startedAt + 1000) {
        const next = enter({ ...freshRun(s), containerId: seen.id, startedAt: seen.startedAt, inputs: s.inputs }, 'loading', now);
        next.due = { startup: now };
        return { state: next, actions: [log('warn', 'container-started', `container ${inp.settings.name} was restarted outside the supervisor; following its new start`, { containerId: seen.id, outcome: 'restarted outside' })] };
      }
      return { state: s, actions: [] };
    }
    // Someone replaced our container behind our back: take whatever is there now.
    return reconcileNow(s, now);
  }
  if (seen.kind === 'absent') return fail(s, inp, `container ${inp.settings.name} was removed`, { cause: 'removed', exit: { code: null, oom: false, tail: [] } });
  if (seen.id !== s.containerId) return reconcileNow(s, now);
  const d = diagnoseExit(seen.exit, inp.settings);
  if (d.waitFor) return blockOn(s, inp, d, seen.exit);
  // The exit text already says "OOM-killed"; an unrecognised failure has nothing to add.
  const known = d.code !== 'unknown' && d.code !== 'oom-killed';
  const cause = known ? `${exitText(seen.exit)}, ${d.code}` : exitText(seen.exit);
  return fail(s, inp, `container exited (${exitText(seen.exit)})`, { cause, exit: seen.exit, ...(d.code === 'unknown' ? {} : { diagnosis: d }) });
}

function encodingsChanged(s: State, ev: Extract<Event, { type: 'encodingsChanged' }>, inp: Input): Step {
  const { now, settings: t } = inp;
  if (s.phase === 'waiting' && s.waitingFor === 'encodings') {
    // The files are complete (and verified): start now, not at the next re-check.
    return ev.ok ? reconcileNow(s, now) : { state: { ...s, detail: ev.detail }, actions: [] };
  }
  if (!RUNNING_PHASES.has(s.phase)) return { state: s, actions: [] };
  if (!ev.ok) {
    // vLLM read them at start: it keeps serving, but its next start would fail until they are back.
    return { state: s, actions: [log('warn', 'encodings-changed', `${ev.detail}; the model keeps serving (it read them at start), but it cannot start again until they are back`)] };
  }
  const before = s.inputs?.encodings;
  if (!ev.fingerprint || before === undefined || ev.fingerprint === before) {
    return { state: ev.fingerprint && s.inputs ? { ...s, inputs: { ...s.inputs, encodings: ev.fingerprint } } : s, actions: [] };
  }
  if (!t.restartOnEncodings) {
    return { state: s, actions: [log('warn', 'encodings-changed', 'the tiktoken files changed; the model keeps the ones it loaded until its next start (encodings.restartOnChange is false)')] };
  }
  const r = reconcileNow(s, now, s.containerId);
  return { state: r.state, actions: [log('info', 'container-restarting', `the tiktoken files changed: restarting ${t.name} to load them (graceful stop first)`, { reason: 'encodings' }), ...r.actions] };
}

function probed(s: State, ev: Extract<Event, { type: 'probed' }>, inp: Input): Step {
  const { now, settings: t } = inp;
  if (ev.kind === 'deep') return deepProbed(s, ev, inp);
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

const PERIOD: Record<PeriodicProbe, (t: Settings) => number> = {
  startup: (t) => t.startupPeriod,
  liveness: (t) => t.livenessPeriod,
  readiness: (t) => t.readinessPeriod,
};
const TIMEOUT: Record<PeriodicProbe, (t: Settings) => number> = {
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
    if (s.recheckAt !== undefined && now >= s.recheckAt) {
      const blocked = credentialBlock(s);
      return { state: { ...s, recheckAt: undefined }, actions: [s.resync ? { type: 'observe' } : { type: 'reconcile', ...(blocked ? { blocked } : {}) }] };
    }
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

const DAY = 24 * 60 * 60 * 1000;

/** Scheduled jobs: they run only on a model that serves, never two at once, never while it loads. */
function scheduled(s: State, job: Job, inp: Input): Step {
  const { now, settings: t } = inp;
  const up = s.phase === 'serving' || s.phase === 'unhealthy';
  const busy = s.inflight.deep ? 'a deep probe is running' : undefined;
  const skip = (why: string): Step => ({ state: s, actions: [log('debug', 'job-skipped', `${job} skipped: ${why}`, { job })] });
  if (job === 'deepProbe') {
    if (!up) return skip(`the model is ${s.phase}, not serving`);
    if (busy) return skip(busy);
    return { state: { ...s, inflight: { ...s.inflight, deep: true } }, actions: [{ type: 'probe', kind: 'deep', epoch: s.epoch, timeout: t.deepTimeout }] };
  }
  if (s.phase !== 'serving') return skip(`the model is ${s.phase}, not serving`);
  if (busy) return skip(busy);
  if (s.lastMaintenance !== undefined && now - s.lastMaintenance < DAY) return skip(`the last one was ${fmt(now - s.lastMaintenance)} ago (at most one a day)`);
  const r = reconcileNow({ ...s, lastMaintenance: now }, now, s.containerId);
  return {
    state: r.state,
    actions: [log('info', 'container-restarting', `planned maintenance restart of ${t.name} (schedule.maintenanceRestart; graceful stop first)`, { reason: 'maintenance' }), { type: 'persist', record: persisted(r.state) }, ...r.actions],
  };
}

function deepProbed(s: State, ev: Extract<Event, { type: 'probed' }>, inp: Input): Step {
  const { now, settings: t } = inp;
  const detail = ev.detail ?? ev.error ?? (ev.ok ? 'ok' : 'failed');
  const base: State = { ...s, lastDeep: { at: now, ok: ev.ok, detail } };
  if (ev.ok) return { state: { ...base, deepFailures: 0 }, actions: [log('debug', 'deep-probe', `deep probe passed: ${detail}`)] };
  const n = s.deepFailures + 1;
  const what = `deep probe failed (${n} of ${t.deepFailureThreshold}): ${detail}`;
  if (n >= t.deepFailureThreshold) {
    const f = fail(base, inp, `${what}; restarting the container`, { cause: `deep probe: ${detail}`, stillRunning: s.containerId });
    return { state: f.state, actions: [log('warn', 'health-failed', what, { deepFailures: n }), ...f.actions] };
  }
  return { state: { ...base, deepFailures: n }, actions: [log('warn', 'health-failed', what, { deepFailures: n }), { type: 'persist', record: persisted(base) }] };
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
