// What reaches the state machine (events) and what it asks for (actions).
import type { Settings } from '../config/settings.js';
import type { EngineSample } from './engine.js';
import type { LoadPhase } from './load-phases.js';
import type { DiskSample } from './load.js';
import type { PullSummary } from './pull.js';
import type { ExitInfo, Job, Persisted, ProbeKind, RunInputs, State } from './state.js';
import type { WaitReason } from './wait.js';

/** What the Docker engine says about the container with our name. */
export type Seen =
  | { kind: 'absent' }
  | { kind: 'running'; id: string; startedAt: number }
  | { kind: 'exited'; id: string; exit: ExitInfo };

export type Event =
  | { type: 'boot'; persisted?: Persisted }
  | { type: 'observed'; seen: Seen }
  | { type: 'reconciled'; id: string; outcome: string; reason: string; startedAt: number; inputs?: RunInputs }
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
  /** A start-up line of vLLM's the phase table recognises (src/core/load-phases.ts). */
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

export interface Release {
  since: number;
  container: string;
  timeout: number;
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
  | 'supervisor-stopping'
  | 'supervisor-stopped';

export type Action =
  | { type: 'observe' }
  /**
   * `release`: the last run ended lately (at `since`, or when `stopFirst` is stopped); a start waits
   * until its memory is back, up to `timeout` after that.
   */
  | { type: 'reconcile'; stopFirst?: string; release?: Release }
  | { type: 'pull'; image: string }
  /** Check the new spec (image present, pre-start checks that do not depend on the old container). */
  | { type: 'prepare'; spec: string }
  | { type: 'abortPull' }
  /** Look at the tiktoken files again (their sizes were still moving). */
  | { type: 'checkEncodings' }
  | { type: 'probe'; kind: ProbeKind; epoch: number; timeout: number; disk?: boolean }
  | { type: 'persist'; record: Persisted }
  | { type: 'log'; level: Level; event: LogEvent; msg: string; fields?: Record<string, unknown> }
  | { type: 'stopContainer'; id: string; timeout: number }
  | { type: 'exit'; code: number };

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

export type Handler<E extends Event> = (s: State, ev: E, inp: Input) => Step;

export const log = (level: Level, event: LogEvent, msg: string, fields?: Record<string, unknown>): Action =>
  fields ? { type: 'log', level, event, msg, fields } : { type: 'log', level, event, msg };

export const still = (s: State): Step => ({ state: s, actions: [] });

/** Exit status after a handover (EX_TEMPFAIL); the unit restarts the service on it (RestartForceExitStatus=). */
export const HANDOVER_EXIT = 75;
