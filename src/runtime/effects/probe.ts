// The probes the state machine asks for, against the model's published port.
import type { Action, EngineSample, Event, ProbeKind } from '../../core/model/events.js';
import { modelDisk } from '../../preflight/model-disk.js';
import type { StatsLine } from '../../core/rules/log-lines.js';
import { deepProbe, httpGet, probeHealth, probeModels, type ProbeResult } from '../../health/probe.js';
import { engineFromMetrics } from '../../health/vllm-metrics.js';
import type { Desired } from '../../desired/desired.js';

export type ProbeOutcome = ProbeResult & { detail?: string; sample?: EngineSample; finding?: 'harmony-parse' };

/** vLLM's stats line, when the log watch has one: the engine probe's fallback. */
export type StatsSource = () => StatsLine | undefined;

/** How the shell probes; tests without a model answer the probes themselves. */
export type Prober = (kind: ProbeKind, d: Desired, timeout: number, stats?: StatsSource) => Promise<ProbeOutcome>;

/**
 * A probe the machine asked for, timed, with a look at the model's folder when asked (a download
 * may be under way): the `probed` event to dispatch.
 */
export async function runProbe(
  a: Extract<Action, { type: 'probe' }>,
  d: Desired,
  stats: StatsSource,
  prober: Prober = probe,
): Promise<Event> {
  const c = d.config;
  const disk = a.disk ? modelDisk(c.paths.huggingface, c.model.id).catch(() => undefined) : undefined;
  const t0 = performance.now();
  const [r, found] = await Promise.all([
    prober(a.kind, d, a.timeout, stats).then((x) => ({ ...x, ms: performance.now() - t0 })),
    disk,
  ]);
  return { type: 'probed', kind: a.kind, epoch: a.epoch, ...r, ...(found ? { disk: found } : {}) };
}

export function probe(kind: ProbeKind, d: Desired, timeout: number, stats?: StatsSource): Promise<ProbeOutcome> {
  const { probeHost: host, settings } = d;
  if (kind === 'deep') return deepProbe(host, settings.port, settings.servedName, timeout);
  if (kind === 'readiness') return probeModels(host, settings.port, settings.servedName, timeout);
  if (kind === 'engine') return probeEngine(host, settings.port, timeout, stats);
  return probeHealth(host, settings.port, timeout);
}

/**
 * The engine's load: /metrics when vLLM serves it, else its latest stats log line (printed every
 * 10 s while it works). Never a failure of its own: a stall is judged from the samples.
 */
async function probeEngine(host: string, port: number, timeout: number, stats?: StatsSource): Promise<ProbeOutcome> {
  try {
    const a = await httpGet(host, port, '/metrics', timeout);
    const sample = a.status === 200 ? engineFromMetrics(a.body) : undefined;
    if (sample) return { ok: true, sample };
  } catch {
    // no /metrics: the log line, if any
  }
  const l = stats?.();
  if (!l) return { ok: true };
  const sample: EngineSample = { source: 'log', running: l.running, waiting: l.waiting, rate: l.generationRate };
  if (l.kvCache !== undefined) sample.kvCache = l.kvCache;
  return { ok: true, sample };
}
