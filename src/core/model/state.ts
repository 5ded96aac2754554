// The supervisor's state, shaped by phase: what exists only in one phase lives only in its variant.
import type { WaitReason } from './diagnosis.js';
import type { EngineSample, History, LoadPhase, Persisted, RunInputs, PeriodicProbe, ProbeKind } from './events.js';
import type { DoorReport, Upstream } from './door.js';
import type { DecodeWatch, GpuWatch } from './host.js';
import { fitRecord } from './record.js';
import type { RanSpec } from './rollback.js';
import type { Settings } from './settings.js';

/** Every phase, in the order a run goes through them; the type and every table over phases derive from it. */
export const PHASES = [
  'waiting',
  'starting',
  'loading',
  'serving',
  'unhealthy',
  'backoff',
  'crashloop',
  'failed',
  'stopping',
  'stopped',
] as const;
export type Phase = (typeof PHASES)[number];

/** The engine as the supervisor follows it during a run. */
export interface EngineWatch {
  last: EngineSample & { at: number };
  /** tokens/s between the last two samples (or vLLM's own figure). */
  tokensPerSec?: number;
  /** When tokens last came out, or the engine last had nothing to do. */
  progressAt: number;
  /** Looks in a row that found it stalled (after the window). */
  stalls: number;
}

export interface DownloadWatch {
  bytes: number;
  at: number;
  /** Bytes per second, smoothed. */
  rate?: number;
  /** The model's size, when known (from the last complete download). */
  total?: number;
  complete: boolean;
}

/** One phase of a load: when it began and, once over, how long it took. */
export interface PhaseSpan {
  phase: LoadPhase;
  from: number;
  to?: number;
}

export interface LoadTrack {
  phase: LoadPhase;
  /** The last sign of progress: a recognised line, a progress step, download bytes. */
  progressAt: number;
  lastLine?: string;
  progress?: { done: number; total: number };
  spans: PhaseSpan[];
  download?: DownloadWatch;
}

/** A new spec being made ready while the old container serves on. */
export interface Prepare {
  spec: string;
  /** What is being done: `checking the new spec`, `pulling IMAGE: 3.1 of 9.8 GB, 2 of 9 layers`. */
  detail: string;
  /** Why the new spec cannot start (the old container serves on), and when to look again. */
  refused?: string;
  retryAt?: number;
  /** Pulls of the new image that failed in a row. */
  pullFailures: number;
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
  /** Where the model answers (the container's published address); undefined: the config's. */
  upstream?: Upstream;
  /** What the run was started with. */
  inputs?: RunInputs;
  probes: Probes;
  /** The engine's load and progress (vLLM's /metrics), once it serves. */
  engine?: EngineWatch;
  /** The load's phases and progress, from vLLM's log and the model's folder. */
  load?: LoadTrack;
  /** A new spec being prepared while this run serves on (make before break). */
  prepare?: Prepare;
  /** What it runs (from the reconcile that started or adopted it). */
  spec?: RanSpec;
  /** MemAvailable just before the run started (bytes): what its end should give back. */
  memBefore?: number;
  /** The lowest MemAvailable the memory guard saw while the model loaded, and the floor (bytes). */
  memLow?: { available: number; floor: number; container?: number };
  /** Memory samples in a row with the pressure over memoryGuard.pressure. */
  pressureHigh?: number;
  /** The GPUs' clocks, temperature and throttling, while it serves. */
  gpu?: GpuWatch;
  /** Decode speed over the last window, against the spec's baseline. */
  decode?: DecodeWatch;
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
  /** Docker's GPU support was looked at (once: the first reconcile's preflight). */
  runtimeLooked?: boolean;
  /** What the gate last said of itself (requests held, whether it listens). */
  door?: DoorReport;
}

/**
 * A failure the step just decided (fail, blockOn): read by the rollback check after the handler
 * (core/machine/rollback.ts) and removed there; it never outlives the step.
 */
export interface Failure {
  /** In a few words (the status line, the rollback's `because`). */
  summary: string;
  code?: string;
  /** A wait for what a restart cannot fix (a config change), rather than a restart. */
  blocking: boolean;
}

export interface Ended {
  at: number;
  container: string;
  /** MemAvailable before that run started (bytes), when known. */
  availableBefore?: number;
}

export type Starting = { phase: 'starting'; resync: boolean; owed?: Owed };
export type Running = { phase: 'loading' | 'serving' | 'unhealthy'; run: Run };
export type Waiting = { phase: 'waiting'; wait: Wait };
export type Restarting = { phase: 'backoff' | 'crashloop'; restart: Owed };
/** The restart budget is spent: nothing restarts until `until`, a config change or an operator's restart. */
export type Failed = { phase: 'failed'; until: number; stopFirst?: string };
export type Ending = { phase: 'stopping' | 'stopped' };
export type Variant = Starting | Running | Waiting | Restarting | Failed | Ending;
export type State = Common & Variant & { failure?: Failure };

export type RunningState = Common & Running;
export type WaitingState = Common & Waiting;
export type RestartingState = Common & Restarting;

export function initialState(now: number): State {
  return { phase: 'starting', since: now, resync: true, epoch: 0, history: { restarts: 0, totalRestarts: 0 } };
}

export const isRunning = (s: State): s is RunningState =>
  s.phase === 'loading' || s.phase === 'serving' || s.phase === 'unhealthy';

export const isRestarting = (s: State): s is RestartingState => s.phase === 'backoff' || s.phase === 'crashloop';

export const isWaiting = (s: State, reason?: WaitReason): s is WaitingState =>
  s.phase === 'waiting' && (reason === undefined || s.wait.reason === reason);

/** The fields every phase has, without the variant's. */
export function common(s: State): Common {
  const { since, epoch, history, configError, pull, settle, lastContainer, ended, runtimeLooked, door } = s;
  return { since, epoch, history, configError, pull, settle, lastContainer, ended, runtimeLooked, door };
}

/** Moves to another variant; `since` holds while the phase name does. A new epoch: no run goes on. */
export function enter(s: State, v: Variant, now: number): State {
  const c = common(s);
  // A run that ends here: remember when, for the next start's wait for its memory.
  if (isRunning(s) && !RUNNING.has(v.phase)) {
    const before = s.run.memBefore;
    c.ended = { at: now, container: s.run.containerId, ...(before === undefined ? {} : { availableBefore: before }) };
  }
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
  if (isRestarting(s)) return s.restart.stopFirst;
  if (s.phase === 'failed') return s.stopFirst;
  return undefined;
}

/** The record to save: cut to what the reader takes back (RECORD_LIMITS), or the next start would set it aside. */
export function persisted(s: State, t: Settings): Persisted {
  const p: Persisted = { ...s.history, container: { name: t.name, spec: t.configSpec } };
  if (isRestarting(s)) p.restartAt = s.restart.at;
  if (s.phase === 'failed') p.failedUntil = s.until;
  return fitRecord(p);
}
