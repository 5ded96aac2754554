// The diagnosis vocabulary: what a failure is called, what it says, and what a wait is for.

export type WaitReason =
  | 'docker'
  | 'image'
  | 'encodings'
  | 'huggingface'
  | 'hf-token'
  | 'model'
  | 'port'
  | 'gpu-memory'
  | 'gpu-release'
  | 'gpu-runtime'
  | 'mounts'
  | 'stuck-memory'
  | 'config';

export type DiagnosisCode =
  | 'encodings'
  | 'gpu-memory'
  | 'kv-cache'
  | 'cuda-oom'
  | 'oom-killed'
  | 'host-oom'
  | 'gpu-xid'
  | 'hf-auth'
  | 'model-not-found'
  | 'unsupported-gpu'
  | 'port-in-use'
  | 'image-missing'
  | 'gpu-runtime'
  | 'bad-args'
  | 'engine-dead'
  | 'engine-stalled'
  | 'load-stalled'
  | 'host-memory-pressure'
  | 'unknown';

export interface Diagnosis {
  /** Stable: scripts, the journal's DIAGNOSIS field and D-Bus carry it. */
  code: DiagnosisCode;
  /** What happened, in one line. */
  summary: string;
  /** What to do about it. */
  remedy: string;
  /**
   * Set when restarting cannot help: the supervisor waits for this instead, and starts again at
   * once when it changes. Unset: restart with backoff.
   */
  waitFor?: WaitReason;
}

export interface FailureInput {
  exitCode: number | null;
  oom: boolean;
  /** The last lines of the container's log, or the message of a refused `docker start`. */
  lines: readonly string[];
  /** The kernel's messages around the exit (journalctl -k), when they were read. */
  kernel?: readonly string[];
  /** Settings the remedies quote. */
  utilization: number;
  maxModelLen: number;
  port: number;
  encodingsDir: string;
  modelId: string;
  image: string;
}

export type Found = Diagnosis & { evidence?: string };
