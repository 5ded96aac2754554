// What the state machine needs from a config, flattened; all durations in ms.
import { buildSpec } from '../container/spec.js';
import { tokenFingerprint } from '../container/token-env.js';
import type { BackoffPolicy } from '../core/backoff.js';
import type { Config } from './schema.js';

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
  /** The tiktoken files are checked against their published SHA-256 (else: their sizes must settle). */
  verifyEncodings: boolean;
  /** Restart the container when the tiktoken files change under it. */
  restartOnEncodings: boolean;
  deepTimeout: number;
  deepFailureThreshold: number;
  /** Engine stall detection (health.stall): 0 when off. */
  stallWindow: number;
  stallFailureThreshold: number;
  /** restart.budget: at most `count` restarts within `window`, then the state `failed`; undefined: no budget. */
  budget?: { count: number; window: number };
  /** health.startup.stallTimeout: one stall timeout for every load phase; undefined: each phase's own. */
  loadStallTimeout?: number;
  /** After a run ends, how long a start waits for its GPU memory to be released. */
  releaseTimeout: number;
  /** The variables container.env sets: vLLM's "unknown variable" warning matters only for these. */
  envNames: string[];
  /** The container spec's hash: what a state record belongs to. */
  specHash: string;
  /** A fingerprint of the HF token in use (never the token), undefined when there is none. */
  tokenFingerprint?: string;
}

export function settingsOf(c: Config, token?: string): Settings {
  const { health: h, restart: r } = c;
  const t: Settings = {
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
    verifyEncodings: c.encodings.verify,
    restartOnEncodings: c.encodings.restartOnChange,
    deepTimeout: c.schedule.deepProbe.timeout,
    deepFailureThreshold: c.schedule.deepProbe.failureThreshold,
    stallWindow: h.stall.enabled ? h.stall.window : 0,
    stallFailureThreshold: h.stall.failureThreshold,
    releaseTimeout: c.gpu.releaseTimeout,
    envNames: Object.keys(c.container.env),
    specHash: buildSpec(c, undefined).hash,
  };
  if (h.startup.stallTimeout !== null) t.loadStallTimeout = h.startup.stallTimeout;
  if (r.budget) t.budget = { count: r.budget.count, window: r.budget.window };
  const fp = tokenFingerprint(token);
  if (fp) t.tokenFingerprint = fp;
  return t;
}
