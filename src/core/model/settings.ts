// What the state machine needs from a config, flattened; all durations in ms. Built by desired/settings.ts.

export interface BackoffPolicy {
  initialDelay: number;
  multiplier: number;
  maxDelay: number;
  /** Fraction of the delay, e.g. 0.1 for +/-10%. */
  jitter: number;
}

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
  /** How often a missing prerequisite (Docker, files, the token, the port, memory) is checked again (waits.recheck). */
  recheck: number;
  /** How often Docker's missing GPU runtime is looked for again (waits.gpuRuntimeRecheck). */
  gpuRuntimeRecheck: number;
  /** When a pull refused for a person's reason (a wrong name, credentials) is tried again (waits.pullRetry). */
  pullRetry: number;
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
  /** The scheduled jobs' cron expressions (schedule.*.cron); null: off. */
  jobs: { deepProbe: string | null; maintenanceRestart: string | null };
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
  /** The gate (gate.*), when it is on: the model's front door; undefined: clients reach the container itself. */
  gate?: {
    /** Where it listens for clients (container.bindAddress:container.port). */
    listen: { host: string; port: number };
    /** gate.apiKeyFile; null: no key asked for. */
    apiKeyFile: string | null;
    holdTimeout: number;
    maxHeld: number;
    drainTimeout: number;
    maxBodySize: number;
    upstreamPort: number;
  };
  /**
   * The memory guard (memoryGuard.*), when it is on: the floor under MemAvailable (bytes, or `auto`: 4 GiB
   * on hosts over 64 GiB, else MemTotal/16), PSI's `full avg10` limit (percent; null: not looked at), and
   * what counts as memory that did not come back (bytes).
   */
  memoryGuard?: { floor: number | 'auto'; pressure: number | null; stuckThreshold: number };
  /** GPU telemetry while serving (gpu.telemetryPeriod; 0: off), and how long a throttle lasts before an alert. */
  telemetryPeriod: number;
  throttleAlertAfter: number;
  /** The GPUs the container gets (container.gpus): the telemetry shows only these. */
  gpus: 'all' | 'none' | number | ReadonlyArray<number | string>;
  /**
   * Slower than itself (health.slow), when on: the baseline is the median over the first `baseline` of
   * serving of a spec; the last `window` that is `slower` (a fraction, 0.25) slower than it says so.
   */
  slow?: { baseline: number; window: number; slower: number };
  /** The variables container.env sets: vLLM's "unknown variable" warning matters only for these. */
  envNames: string[];
  /** The hash of the spec the machine runs: the config's, or the good one a rollback brought back. */
  specHash: string;
  /**
   * The hash of the spec the config file asks for (specHash, unless a rollback is in force): what a
   * state record belongs to.
   */
  configSpec: string;
  /** The config file (the status line tells where to edit). */
  configFile: string;
  /**
   * rollback.*: back to the last good spec when a new one cannot serve (`after` failed starts of it,
   * or at once for what no restart fixes); a spec proves itself by serving for `canaryWindow`.
   */
  rollback: { enabled: boolean; after: number; canaryWindow: number };
  /** A fingerprint of the HF token in use (never the token), undefined when there is none. */
  tokenFingerprint?: string;
}
