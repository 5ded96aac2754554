// The vocabulary between the core and the shell: the events the machine hears (with the samples
// they carry), the actions it asks for, and the record it persists. A leaf: it imports no decision.
import type { Diagnosis, WaitReason } from './diagnosis.js';
import type { DoorReport, Upstream } from './door.js';
import type { GoodSpec, RanSpec, Rollback, Trial } from './rollback.js';
import type { DecodeBaseline, GpuReading, MemorySample } from './host.js';

/** The phases of a load, in the order vLLM goes through them. */
export const LOAD_PHASES = ['starting', 'download', 'weights', 'compile', 'kv-cache', 'graphs', 'api'] as const;
export type LoadPhase = (typeof LOAD_PHASES)[number];

/** What vLLM says about its engine: from /metrics, or from its periodic stats log line where that is not served. */
export interface EngineSample {
  source: 'metrics' | 'log';
  running: number;
  waiting: number;
  /** KV cache in use, 0..1. */
  kvCache?: number;
  /** Generated tokens so far (a counter; /metrics only). */
  generated?: number;
  /** tokens/s over vLLM's last interval (the log line only). */
  rate?: number;
  /** vLLM's time-per-output-token histogram: its sum (seconds) and count (tokens), cumulative. */
  tpot?: { sum: number; count: number };
}

/** What the model's folder in paths.huggingface holds now. */
export interface DiskSample {
  bytes: number;
  /** `.incomplete` blobs: a download under way (or broken off). */
  incomplete: number;
  /** A snapshot with its files and nothing incomplete. */
  complete: boolean;
}

export interface PullSummary {
  layers: number;
  layersDone: number;
  bytes: number;
  totalBytes: number;
}

/** `warmup`: the first completion of a run, after /v1/models lists the model; it serves only once that answers. */
export type ProbeKind = 'startup' | 'liveness' | 'readiness' | 'engine' | 'warmup' | 'deep';
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
  /** The specs that served through their canary window, newest first (last known good). */
  good?: GoodSpec[];
  /** The spec on trial since a config change, until it has served through its canary window. */
  trial?: Trial;
  /** A rollback in force: the config's spec refused, the last good one serving. */
  rollback?: Rollback;
  /** Runs in a row the memory guard killed, and the spec they ran (two with the same spec: wait for a change). */
  guardKills?: { spec: string; count: number };
  /** The decode-speed baseline of the spec (health.slow): collected over its first hour of serving. */
  decode?: DecodeBaseline;
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

/** A container's name and its spec's hash: what a config asks to run. */
export interface SpecOwner {
  name: string;
  specHash: string;
}

/** The part of the state that survives a supervisor restart (state.json). */
export interface Persisted extends History {
  /** A restart that was due when the record was written (backoff, crash loop). */
  restartAt?: number;
  /** The restart budget was spent: no restart before this time (unless the config changes or one is asked for). */
  failedUntil?: number;
  container?: RecordOwner;
}

/** What the Docker engine says about the container with our name. */
export type Seen =
  | { kind: 'absent' }
  | { kind: 'running'; id: string; startedAt: number }
  | { kind: 'exited'; id: string; exit: ExitInfo };

export type Event =
  | { type: 'boot'; persisted?: Persisted }
  | { type: 'observed'; seen: Seen }
  | {
      type: 'reconciled';
      id: string;
      outcome: string;
      reason: string;
      startedAt: number;
      inputs?: RunInputs;
      /** Where the container answers, as it is published (an adopted one keeps its own port). */
      upstream?: Upstream;
      /** What it runs: the spec, the image by ID (a rollback goes back to it). */
      spec?: RanSpec;
      /** MemAvailable just before the start (bytes); undefined for an adopted container. */
      memAvailable?: number;
    }
  | { type: 'reconcileFailed'; kind: 'engine' | 'image' | 'docker'; message: string }
  /** A preflight check failed before a start: nothing was started. */
  | { type: 'prereqMissing'; waitFor: WaitReason; message: string; fix?: string }
  | { type: 'pullProgress'; image: string; summary: PullSummary }
  | { type: 'pulled'; image: string; summary?: PullSummary }
  | { type: 'pullFailed'; image: string; message: string; aborted?: boolean }
  /**
   * The tiktoken files as they are now: `ok` when both are there (and verified); `sizes` lets
   * unverified files prove they are no longer being written.
   */
  | { type: 'encodingsChanged'; ok: boolean; fingerprint?: string; detail: string; sizes?: number[] }
  | {
      type: 'probed';
      kind: ProbeKind;
      epoch: number;
      ok: boolean;
      error?: string;
      detail?: string;
      /** The engine probe's sample of vLLM's load; a deep probe's finding that is not a failure. */
      sample?: EngineSample;
      finding?: 'harmony-parse';
      /** A start-up probe's look at the model's folder (asked for while a download may be under way). */
      disk?: DiskSample;
      /** How long the probe took (metrics). */
      ms?: number;
    }
  /** A start-up line of vLLM's the phase table recognises (src/core/rules/load-phases.ts). */
  | {
      type: 'loadLine';
      epoch: number;
      phase: LoadPhase;
      line: string;
      progress?: { done: number; total: number };
      ends?: boolean;
    }
  /**
   * A line of the running container's log that matters now: the engine died (`fatal`, with the
   * lines before it), or vLLM does not know an environment variable it was given.
   */
  | { type: 'engineLog'; epoch: number; kind: 'fatal' | 'unknown-env'; line: string; context?: string[] }
  /**
   * A new spec, checked while the old container runs: `ok` (recreate now), `pull` (the image is not
   * here), or what blocks it.
   */
  | { type: 'prepared'; spec: string; ok: boolean; pull?: boolean; message?: string; fix?: string }
  | { type: 'tick' }
  | { type: 'engineLost'; message: string }
  | { type: 'engineBack' }
  /**
   * A new config is in force (the input's settings); `previous` is what the container was made for.
   * `what` names the change for the log: `config FILE` (default) or `HF token FILE`.
   */
  | { type: 'configApplied'; file: string; previous: SpecOwner; what?: string }
  | { type: 'configRejected'; error: string }
  /** `handover`: exit leaving the container as it is, for a new supervisor to adopt (upgrades). */
  | { type: 'shutdown'; signal: string; handover?: boolean }
  | { type: 'containerStopped' }
  /** A scheduled job's time came (schedule.* in the config). */
  | { type: 'scheduled'; job: Job }
  /** Restart asked for by an operator (D-Bus Restart(), `gptoss-supervisor restart`). */
  | { type: 'restartRequested'; by: string }
  /** Back to the last good spec, asked for by an operator (D-Bus Rollback(), `gptoss-supervisor rollback`). */
  | { type: 'rollbackRequested'; by: string }
  /** The gate's account of itself: requests held and in flight, whether it listens. */
  | { type: 'doorReport'; report: DoorReport }
  /** The memory sampler's look at the host (memoryGuard), during a run. */
  | { type: 'memorySampled'; epoch: number; sample: MemorySample }
  /** The GPU telemetry's look (gpu.telemetryPeriod), while serving; `error` when nvidia-smi did not answer. */
  | { type: 'gpuSampled'; epoch: number; gpus: GpuReading[]; error?: string };

export interface Release {
  since: number;
  container: string;
  timeout: number;
  /** MemAvailable before the run started (bytes), when known: memory that does not come back is told by it. */
  availableBefore?: number;
  /** memoryGuard.stuckThreshold: more than this still missing after the wait is memory no process holds. */
  stuckBytes?: number;
}

export type EventOf<K extends Event['type']> = Extract<Event, { type: K }>;

export type Level = 'debug' | 'info' | 'warn' | 'error';

/** Events an operator greps for; mapped to stable journal MESSAGE_IDs. */
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
  | 'load-phase'
  | 'restart-budget'
  | 'memory-guard'
  | 'gpu-telemetry'
  | 'decode-speed'
  | 'image-pulled'
  | 'encodings-changed'
  | 'docker-lost'
  | 'docker-back'
  | 'config-reloaded'
  | 'config-rejected'
  | 'deep-probe'
  | 'engine-warning'
  | 'job-skipped'
  | 'state-record'
  | 'rollback'
  | 'supervisor-stopping'
  | 'supervisor-stopped';

export type Action =
  | { type: 'observe' }
  /**
   * `release`: the last run ended lately (at `since`, or when `stopFirst` is stopped); a start waits
   * until its memory is back, up to `timeout` after that. `gpuRuntime`: look at Docker's GPU support too.
   * `drain`: a planned stop of a serving run: the gate first lets the requests in flight finish, up to this long.
   */
  | { type: 'reconcile'; stopFirst?: string; release?: Release; gpuRuntime?: boolean; drain?: number }
  | { type: 'pull'; image: string }
  /** Check the new spec (image present, pre-start checks that do not depend on the old container). */
  | { type: 'prepare'; spec: string }
  | { type: 'abortPull' }
  /** Look at the tiktoken files again (their sizes were still moving). */
  | { type: 'checkEncodings' }
  | { type: 'probe'; kind: ProbeKind; epoch: number; timeout: number; disk?: boolean }
  | { type: 'persist'; record: Persisted }
  | { type: 'log'; level: Level; event: LogEvent; msg: string; fields?: Record<string, unknown> }
  /** `drain`: the gate first lets the requests in flight finish, up to this long (a planned stop). */
  | { type: 'stopContainer'; id: string; timeout: number; drain?: number }
  /** SIGKILL now, outside the queue of container operations: the host is at stake (the memory guard). */
  | { type: 'killContainer'; id: string }
  | { type: 'exit'; code: number };
