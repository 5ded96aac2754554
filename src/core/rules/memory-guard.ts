// The memory guard's numbers: when the host is short of memory under a load, and what to say about it.
// On a GB10 the GPU's memory is the host's: a load that takes more than is there wedges the machine
// (vllm#46307, open-gpu-kernel-modules#1358) instead of failing, so the container is killed first.
import type { Diagnosis } from '../model/diagnosis.js';
import type { MemorySample } from '../model/host.js';
import { formatSize } from './size.js';

const GiB = 1024 ** 3;

/** How often the sampler looks: while a model loads (profiling takes memory fast), and while it serves. */
export const SAMPLE_MS = { loading: 200, serving: 1000 } as const;

/** `auto`: a host over 64 GiB keeps 4 GiB free (the GB10 has 128); a smaller one a sixteenth of it. */
export function floorOf(floor: number | 'auto', total: number): number {
  if (floor !== 'auto') return floor;
  return total > 64 * GiB ? 4 * GiB : Math.floor(total / 16);
}

/**
 * `memoryGuard.pressure: auto`: PSI's `full avg10` over 40%, two samples in a row. `full` is the share of
 * the last 10 s in which every task that wanted to run waited on memory: a host that is thrashing, not
 * one that is busy. systemd-oomd acts at 60% held for 30 s (oomd.conf(5)); the GB10 wedges sooner.
 */
export const PRESSURE_AUTO = 40;
export const PRESSURE_SAMPLES = 2;

export type Trip = 'floor' | 'pressure';

export interface Verdict {
  floor: number;
  /** Samples in a row over the pressure limit, this one counted. */
  pressureHigh: number;
  trip?: Trip;
}

/** One sample judged: under the floor trips at once; pressure over its limit trips on the second in a row. */
export function judgeSample(
  s: MemorySample,
  guard: { floor: number | 'auto'; pressure: number | null },
  pressureHigh: number,
): Verdict {
  const floor = floorOf(guard.floor, s.total);
  const over = guard.pressure !== null && s.pressure !== undefined && s.pressure > guard.pressure;
  const high = over ? pressureHigh + 1 : 0;
  if (s.available < floor) return { floor, pressureHigh: high, trip: 'floor' };
  return high >= PRESSURE_SAMPLES ? { floor, pressureHigh: high, trip: 'pressure' } : { floor, pressureHigh: high };
}

const gib = (b: number) => `${(b / GiB).toFixed(1)} GiB`;

export interface TripFacts {
  sample: MemorySample;
  floor: number;
  trip: Trip;
  /** `loading (weights)`, `serving`: where the run was. */
  phase: string;
  pressureLimit: number | null;
  /** MemAvailable before the run started, when known. */
  memBefore?: number;
  utilization: number;
  /** This kill is the n-th in a row with the same spec. */
  inARow: number;
}

/**
 * The gpuMemoryUtilization that would have left the floor free, assuming vLLM takes utilization x
 * MemTotal (it reserves that much and fills what the weights leave with KV cache): what was available
 * before the start (else now, plus what the container held), less the floor, over MemTotal.
 */
export function fittingUtilization(f: TripFacts): { value: number; base: number } | undefined {
  const base = f.memBefore ?? f.sample.available + (f.sample.cgroup ?? 0);
  const u = Math.floor(((base - f.floor) / f.sample.total) * 100) / 100;
  return u >= 0.05 && u < f.utilization ? { value: u, base } : undefined;
}

function what(f: TripFacts): string {
  const s = f.sample;
  const held = s.cgroup !== undefined ? `; the container's cgroup held ${gib(s.cgroup)}` : '';
  const avail = `MemAvailable ${gib(s.available)}`;
  if (f.trip === 'floor')
    return `${avail}, under the floor of ${gib(f.floor)} (memoryGuard.floor ${formatSize(f.floor)})${held}`;
  const limit = f.pressureLimit ?? 0;
  return (
    `memory pressure ${(s.pressure ?? 0).toFixed(1)}% (PSI full avg10) over memoryGuard.pressure ${limit}% ` +
    `for ${PRESSURE_SAMPLES} samples in a row, ${avail}${held}`
  );
}

function fix(f: TripFacts): string {
  const fit = fittingUtilization(f);
  const total = f.sample.total;
  const when = f.memBefore !== undefined ? 'before the start' : 'without the container';
  const model = fit
    ? `set model.gpuMemoryUtilization to ${fit.value} (${fit.value} x ${gib(total)} = ` +
      `${gib(fit.value * total)} leaves the ${gib(f.floor)} floor of the ${gib(fit.base)} available ${when})`
    : f.memBefore !== undefined && f.memBefore - f.floor < 0.05 * total
      ? `free memory on the host: only ${gib(f.memBefore)} was available before the start`
      : `stop what else takes memory on the host (model.gpuMemoryUtilization ${f.utilization} already fits what was ` +
        `available ${when})`;
  return (
    `${model}; a smaller model.maxModelLen does not shrink vLLM's reservation (it fills gpuMemoryUtilization with ` +
    'KV cache)'
  );
}

/** The diagnosis of a kill: what the host had, what the container held, the phase, and a fix with numbers. */
export function guardDiagnosis(f: TripFacts): Diagnosis {
  const again = f.inARow >= 2;
  const stop = again ? `; ${f.inARow} kills in a row with this spec: no restart until the config changes` : '';
  return {
    code: 'host-memory-pressure',
    summary:
      `the host ran short of memory while the model was ${f.phase}: ${what(f)}; killed it (SIGKILL) before the ` +
      `host could wedge${stop}`,
    remedy: fix(f),
    // Twice with the same spec: a restart would do the same again. A config change (or a rollback) ends it.
    ...(again ? { waitFor: 'config' as const } : {}),
  };
}
