// The GPU's telemetry in words: which of nvidia-smi's clock event (throttle) reasons mean the GPU is
// held back, and the status line's `GPU throttled (thermal): SM 850 of 2418 MHz`.
import type { GpuReading, GpuWatch, ThrottleReason } from '../model/host.js';
import { selectGpus, type Gpus } from './gpu-memory.js';

/**
 * Each reason in a few words. nvidia-smi's own descriptions (`nvidia-smi --help-query-gpu`, recorded in
 * test/fixtures/nvidia-smi/h200/help-query-gpu.txt): SW thermal capping "because GPU temperature is
 * higher than Max Operating Temp"; HW thermal slowdown "reducing the core clocks by a factor of 2 or
 * more"; SW power scaling "because the GPU is consuming too much power"; HW power brake "triggered (e.g.
 * by the system power supply)"; HW slowdown (either of the two, or power drawn too fast); sync boost (a
 * group of GPUs held to the slowest). gpu_idle and applications_clocks_setting are not throttling.
 */
export const REASON_WORDS: Record<ThrottleReason, string> = {
  sw_thermal_slowdown: 'thermal',
  hw_thermal_slowdown: 'thermal',
  sw_power_cap: 'power cap',
  hw_power_brake_slowdown: 'power brake',
  hw_slowdown: 'hardware slowdown',
  sync_boost: 'sync boost',
};

/** The GPUs the container gets, out of what nvidia-smi lists (all of them when its ids are not there). */
export function gpusOf(readings: readonly GpuReading[], gpus: Gpus): GpuReading[] {
  const sel = selectGpus(readings, gpus);
  return Array.isArray(sel) ? sel : [...readings];
}

/** The reasons in words, without repeats: `thermal`, `power cap, thermal`. */
export function reasonWords(reasons: readonly ThrottleReason[]): string {
  return [...new Set(reasons.map((r) => REASON_WORDS[r]))].join(', ');
}

/** `GPU throttled (thermal): SM 850 of 2418 MHz` for each throttled GPU (its index when there are several). */
export function throttleText(w: GpuWatch | undefined): string | undefined {
  if (w?.throttledSince === undefined) return undefined;
  const many = w.gpus.length > 1;
  const parts = w.gpus
    .filter((g) => g.reasons.length)
    .map((g) => {
      const sm =
        g.smMhz === undefined ? '' : `: SM ${g.smMhz}${g.smMaxMhz === undefined ? '' : ` of ${g.smMaxMhz}`} MHz`;
      return `GPU${many ? ` ${g.index}` : ''} throttled (${reasonWords(g.reasons)})${sm}`;
    });
  return parts.length ? parts.join('; ') : undefined;
}

/** The reasons in force on any GPU, in words (for the `slow` alert): '' when none. */
export function activeReasons(w: GpuWatch | undefined): string {
  return reasonWords((w?.gpus ?? []).flatMap((g) => g.reasons));
}
