// The host under the model: its memory as the kernel counts it, the GPU's clocks and temperature, and
// how fast the engine decodes. The samples the shell reads, and what the machine keeps of them.

/** One look at the host's memory (/proc/meminfo, /proc/pressure/memory, the container's cgroup). */
export interface MemorySample {
  /** MemAvailable, bytes. */
  available: number;
  /** MemTotal, bytes. */
  total: number;
  /** PSI's `full avg10` (percent of the last 10 s all tasks stalled on memory); undefined without PSI. */
  pressure?: number;
  /** What the model container's cgroup holds (memory.current, v1: memory.usage_in_bytes), when it was read. */
  cgroup?: number;
}

/** The throttle (clock event) reasons nvidia-smi reports, by their field names without the prefix. */
export const THROTTLE_REASONS = [
  'sw_thermal_slowdown',
  'hw_thermal_slowdown',
  'sw_power_cap',
  'hw_power_brake_slowdown',
  'hw_slowdown',
  'sync_boost',
] as const;
export type ThrottleReason = (typeof THROTTLE_REASONS)[number];

/** One GPU as nvidia-smi answers the telemetry query; a figure it gives as [N/A] is left out. */
export interface GpuReading {
  index: number;
  uuid?: string;
  smMhz?: number;
  smMaxMhz?: number;
  temperature?: number;
  powerW?: number;
  /** The reasons reported Active (an empty list: none, or none reported). */
  reasons: ThrottleReason[];
}

/** The GPUs as last sampled, and since when one of them has been throttled. */
export interface GpuWatch {
  at: number;
  gpus: GpuReading[];
  /** Why the last sample failed (nvidia-smi missing, an error), when it did. */
  error?: string;
  /** When the current stretch of throttling began (undefined: not throttled). */
  throttledSince?: number;
}

/** One stretch between two looks at the engine with requests running: decode time and tokens. */
export interface DecodeSpan {
  at: number;
  /** Seconds spent per token, summed (a histogram's sum), and the tokens (its count). */
  seconds: number;
  tokens: number;
}

/** Decode speed during a run: the last window's spans, and since when it has been slow. */
export interface DecodeWatch {
  spans: DecodeSpan[];
  /** The histogram (sum, count) or counter at the last look, to take differences from. */
  last?: { at: number; sum?: number; count?: number; generated?: number };
  /** Seconds per token over the window, when there is enough to say. */
  recent?: number;
  /** When decoding became `health.slow.slower` slower than the baseline (undefined: it is not). */
  slowSince?: number;
}

/** The decode-speed baseline of one spec: being collected over its first serving, then fixed. */
export interface DecodeBaseline {
  spec: string;
  /** Serving time counted so far toward the baseline's window. */
  servedMs: number;
  /** Seconds per token of each look with requests running, while collecting. */
  samples: number[];
  /** The median, once the window is full. */
  secondsPerToken?: number;
  at?: number;
}
