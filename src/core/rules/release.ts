// The memory a run leaves behind: a start waits until it is back (gpu.releaseTimeout); memory still
// missing after that, with no process holding it, is the driver's (vllm#45179: pinned after each failed
// load on unified memory), and a restart into it would fail the same way: only a reboot frees it.
import type { CheckResult } from './check-result.js';
import type { AppRow, MemoryVerdict } from './gpu-memory.js';

export interface ReleaseFact {
  /** nvidia-smi's compute processes that were the last run's (in its cgroup, or gone while still listed). */
  apps: AppRow[];
  /** How long the wait has left (0 or less: gpu.releaseTimeout has passed). */
  leftMs: number;
  /** MemAvailable before the last run started, and now (bytes), when both are known. */
  availableBefore?: number;
  availableNow?: number;
  /** memoryGuard.stuckThreshold (bytes); undefined: the guard is off, nothing is called stuck. */
  stuckBytes?: number;
  /** nvidia-smi answered and lists no compute process at all (nobody holds GPU memory). */
  noProcess?: boolean;
  /** The last run's container still runs (then it still holds what it took). */
  containerRunning?: boolean;
}

const gib = (b: number) => `${(b / 1024 ** 3).toFixed(1)} GiB`;

/** MemAvailable short of what it was before the last run, by more than the threshold: the amount, else 0. */
export function missingBytes(r: ReleaseFact): number {
  if (r.availableBefore === undefined || r.availableNow === undefined || r.stuckBytes === undefined) return 0;
  const missing = r.availableBefore - r.availableNow;
  return missing > r.stuckBytes ? missing : 0;
}

/**
 * While gpu.releaseTimeout runs: the last run's processes, memory that does not fit, and memory not yet
 * back are waited for. After it: memory still missing with no process holding it is stuck.
 */
export function checkRelease(r: ReleaseFact, memory: MemoryVerdict | undefined): CheckResult {
  const missing = missingBytes(r);
  if (r.leftMs <= 0) return stuck(r, missing);
  const mib = (a: AppRow) => (a.usedMiB !== undefined ? `, ${(a.usedMiB / 1024).toFixed(1)} GiB` : '');
  const held = r.apps.map((a) => `pid ${a.pid} (${a.name}${mib(a)})`).join(', ');
  const parts = [
    ...(held ? [`the last run's processes still hold GPU memory: ${held}`] : []),
    ...(memory?.status === 'short' ? [memory.detail] : []),
    ...(missing ? [`${gib(missing)} of the host's memory not back since the last run ended`] : []),
  ];
  if (parts.length === 0) return { id: 'gpu-release', status: 'pass', detail: "the last run's memory is back" };
  return {
    id: 'gpu-release',
    status: 'fail',
    detail: `${parts.join('; ')} (waiting up to ${Math.ceil(r.leftMs / 1000)}s more)`,
    fix: 'nothing: it comes back by itself; gpu.releaseTimeout bounds the wait',
    waitFor: 'gpu-release',
  };
}

function stuck(r: ReleaseFact, missing: number): CheckResult {
  if (!missing || !r.noProcess || r.containerRunning !== false || r.apps.length)
    return { id: 'gpu-release', status: 'pass', detail: "the wait for the last run's memory is over" };
  return {
    id: 'gpu-release',
    status: 'fail',
    detail: `${gib(missing)} held since the last run ended with no process holding it (the driver); a reboot frees it`,
    fix:
      'reboot the host; if another program took that memory meanwhile, stop it (the model starts once it is back), ' +
      'or raise memoryGuard.stuckThreshold',
    waitFor: 'stuck-memory',
  };
}
