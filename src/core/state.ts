// The supervisor's state, shaped by phase: what exists only in one phase lives only in its variant.
import type { Settings } from '../config/settings.js';
import type { Diagnosis } from './diagnose.js';
import type { EngineWatch } from './engine.js';
import type { LoadPhase } from './load-phases.js';
import type { LoadTrack } from './load.js';
import type { Prepare } from './prepare.js';
import type { WaitReason } from './wait.js';

export type Phase =
  | 'waiting'
  | 'starting'
  | 'loading'
  | 'serving'
  | 'unhealthy'
  | 'backoff'
  | 'crashloop'
  | 'failed'
  | 'stopping'
  | 'stopped';
export type ProbeKind = 'startup' | 'liveness' | 'readiness' | 'engine' | 'deep';
export type PeriodicProbe = Exclude<ProbeKind, 'deep'>;
export type Job = 'deepProbe' | 'maintenanceRestart';

/** How a run of the container ended. */
export interface ExitInfo {
  /** null when the container is gone and no exit code is known. */
  code: number | null;
  oom: boolean;
  /** The last lines of the container's log. */
  tail: string[];
  /** The kernel's messages around the exit that explain it (OOM killer, NVIDIA Xid), when read. */
  kernel?: string[];
}

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

export interface DeepResult {
  at: number;
  ok: boolean;
  detail: string;
}

/** What the supervisor remembers across runs of the container, and across its own restarts. */
export interface History {
  restarts: number;
  totalRestarts: number;
  lastExit?: ExitInfo;
  /** The last failure, in full (for logs) and in a few words (for the status line). */
  lastFailure?: string;
  cause?: string;
  /** The last failure's diagnosis: code, summary, remedy. */
  diagnosis?: DiagnosisRecord;
  /** The last scheduled deep probe: when, whether it passed, what it found. */
  lastDeep?: DeepResult;
  /** When the last planned maintenance restart happened. */
  lastMaintenance?: number;
  /** The last load that reached serving: its spec, how long it took (downloads left out), by phase. */
  lastLoad?: LastLoad;
  /** The model's size on disk when last seen complete: a download's total. */
  modelBytes?: { model: string; bytes: number };
  /** When the failures inside restart.budget's window happened (kept only with a budget set). */
  failures?: number[];
}

export interface LastLoad {
  spec: string;
  took: number;
  phases: Partial<Record<LoadPhase, number>>;
  at: number;
}

/** The container a state record describes: a record applies only to it. */
export interface RecordOwner {
  name: string;
  spec: string;
}

/** The part of the state that survives a supervisor restart (state.json). */
export interface Persisted extends History {
  /** A restart that was due when the record was written (backoff, crash loop). */
  restartAt?: number;
  /** The restart budget was spent: no restart before this time (unless the config changes or one is asked for). */
  failedUntil?: number;
  container?: RecordOwner;
}

/** A restart that is owed: when, and the container to stop first (it may hang, still running). */
export interface Owed {
  at: number;
  stopFirst?: string;
}

/** Probe bookkeeping of one run. */
export interface Probes {
  live: boolean;
  ready: boolean;
  servedOnce: boolean;
  servingSince?: number;
  /** Liveness failures in a row. */
  failures: number;
  /** Deep probes failed in a row (schedule.deepProbe.failureThreshold restarts). */
  deepFailures: number;
  lastError?: string;
  due: Partial<Record<PeriodicProbe, number>>;
  inflight: Partial<Record<ProbeKind, boolean>>;
}

/** One run of the model container: from the reconcile that started (or adopted) it to its end. */
export interface Run {
  containerId: string;
  startedAt: number;
  /** What the run was started with. */
  inputs?: RunInputs;
  probes: Probes;
  /** The engine's load and progress (vLLM's /metrics), once it serves. */
  engine?: EngineWatch;
  /** The load's phases and progress, from vLLM's log and the model's folder. */
  load?: LoadTrack;
  /** A new spec being prepared while this run serves on (make before break). */
  prepare?: Prepare;
}

export interface Wait {
  reason: WaitReason;
  detail: string;
  recheckAt?: number;
  /** A credential wait: the inputs Hugging Face refused; a start with the same ones is refused. */
  blocked?: RunInputs;
  /** Look at Docker before anything else (Docker lost, or back). */
  resync?: boolean;
  /** A restart that was due when Docker went away. */
  owed?: Owed;
}

/** An image pull: under way (`active`) or failed and waiting for its retry. */
export interface Pull {
  image: string;
  active: boolean;
  failures: number;
  /** Throttling of what progress shows: the last status update and log line, and the layers then. */
  shownAt?: number;
  layers?: string;
  loggedAt: number;
}

/** Unverified tiktoken files are trusted only once their sizes hold still between two looks. */
export interface Settle {
  sizes: string;
  /** When to look again; undefined once the look was asked for. */
  at?: number;
}

export interface Common {
  /** When the phase began. */
  since: number;
  /** Bumped whenever a run begins or ends; probe results of an older epoch are dropped. */
  epoch: number;
  history: History;
  /** The config on disk is invalid: the first problem, located; the last good config runs on. */
  configError?: string;
  pull?: Pull;
  settle?: Settle;
  /** The container of the latest run, running or not: what `docker logs` would read. */
  lastContainer?: string;
  /** When the last run ended: its memory may not be back yet (the next start waits for it, bounded). */
  ended?: Ended;
}

export interface Ended {
  at: number;
  container: string;
}

export type Starting = { phase: 'starting'; resync: boolean; owed?: Owed };
export type Running = { phase: 'loading' | 'serving' | 'unhealthy'; run: Run };
export type Waiting = { phase: 'waiting'; wait: Wait };
export type Restarting = { phase: 'backoff' | 'crashloop'; restart: Owed };
/** The restart budget is spent: nothing restarts until `until`, a config change or an operator's restart. */
export type Failed = { phase: 'failed'; until: number; stopFirst?: string };
export type Ending = { phase: 'stopping' | 'stopped' };
export type Variant = Starting | Running | Waiting | Restarting | Failed | Ending;
export type State = Common & Variant;

export type RunningState = Common & Running;
export type WaitingState = Common & Waiting;

export function initialState(now: number): State {
  return { phase: 'starting', since: now, resync: true, epoch: 0, history: { restarts: 0, totalRestarts: 0 } };
}

export const isRunning = (s: State): s is RunningState =>
  s.phase === 'loading' || s.phase === 'serving' || s.phase === 'unhealthy';

export const isWaiting = (s: State, reason?: WaitReason): s is WaitingState =>
  s.phase === 'waiting' && (reason === undefined || s.wait.reason === reason);

/** The fields every phase has, without the variant's. */
export function common(s: State): Common {
  const { since, epoch, history, configError, pull, settle, lastContainer, ended } = s;
  return { since, epoch, history, configError, pull, settle, lastContainer, ended };
}

/** Moves to another variant; `since` holds while the phase name does. A new epoch: no run goes on. */
export function enter(s: State, v: Variant, now: number): State {
  const c = common(s);
  // A run that ends here: remember when, for the next start's wait for its memory.
  if (isRunning(s) && !RUNNING.has(v.phase)) c.ended = { at: now, container: s.run.containerId };
  return { ...c, epoch: s.epoch + 1, since: s.phase === v.phase ? s.since : now, ...v };
}

const RUNNING: ReadonlySet<Phase> = new Set(['loading', 'serving', 'unhealthy']);

/** The same run in another of its phases (loading, serving, unhealthy): probes carry on. */
export function withinRun(s: RunningState, phase: Running['phase'], run: Run, now: number): RunningState {
  return { ...s, phase, run, since: s.phase === phase ? s.since : now };
}

/** The container the supervisor would stop now: the running one, or one owed a stop before a restart. */
export function containerOf(s: State): string | undefined {
  if (isRunning(s)) return s.run.containerId;
  if (s.phase === 'backoff' || s.phase === 'crashloop') return s.restart.stopFirst;
  if (s.phase === 'failed') return s.stopFirst;
  return undefined;
}

export function persisted(s: State, t: Settings): Persisted {
  const p: Persisted = { ...s.history, container: { name: t.name, spec: t.specHash } };
  if (s.phase === 'backoff' || s.phase === 'crashloop') p.restartAt = s.restart.at;
  if (s.phase === 'failed') p.failedUntil = s.until;
  return p;
}
