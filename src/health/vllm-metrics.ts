// vLLM's engine load from its /metrics, under the names each vLLM version gives it.
import type { EngineSample } from '../core/model/events.js';
import { maxOf, parseExposition, sumOf } from './prom-text.js';

/**
 * Names across versions (vllm/engine/metrics.py in V0, vllm/v1/metrics/loggers.py in V1):
 * `vllm:kv_cache_usage_perc` replaced `vllm:gpu_cache_usage_perc` (both 0..1); the generated-token
 * counter is `vllm:generation_tokens_total` (prometheus_client adds `_total` to a counter).
 */
export const VLLM_METRICS = {
  running: ['vllm:num_requests_running'],
  waiting: ['vllm:num_requests_waiting'],
  kvCache: ['vllm:kv_cache_usage_perc', 'vllm:gpu_cache_usage_perc'],
  generated: ['vllm:generation_tokens_total', 'vllm:generation_tokens'],
  /**
   * Seconds per output token, a histogram (its _sum and _count): 0.11 added the inter-token latency and
   * kept the old name beside it with the same figures; later versions have only the new one.
   */
  tpot: ['vllm:inter_token_latency_seconds', 'vllm:time_per_output_token_seconds'],
} as const;

/** The engine's load from an exposition, or undefined when it is not vLLM's (no request gauges). */
export function engineFromMetrics(text: string): EngineSample | undefined {
  const e = parseExposition(text);
  const running = sumOf(e, ...VLLM_METRICS.running);
  const waiting = sumOf(e, ...VLLM_METRICS.waiting);
  if (running === undefined && waiting === undefined) return undefined;
  const out: EngineSample = { source: 'metrics', running: running ?? 0, waiting: waiting ?? 0 };
  const kv = maxOf(e, ...VLLM_METRICS.kvCache);
  if (kv !== undefined && Number.isFinite(kv)) out.kvCache = kv;
  const gen = sumOf(e, ...VLLM_METRICS.generated);
  if (gen !== undefined && Number.isFinite(gen)) out.generated = gen;
  // Sum and count from the same histogram, summed over its series (engines, models).
  for (const name of VLLM_METRICS.tpot) {
    const sum = sumOf(e, `${name}_sum`);
    const count = sumOf(e, `${name}_count`);
    if (sum === undefined || count === undefined) continue;
    if (Number.isFinite(sum) && Number.isFinite(count)) out.tpot = { sum, count };
    break;
  }
  return out;
}
