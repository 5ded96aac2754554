// The probes the state machine asks for, against the model's published port.
import type { Action, EngineSample, Event, ProbeKind } from '../../core/model/events.js';
import { modelDisk } from '../../preflight/model-disk.js';
import type { StatsLine } from '../../core/rules/log-lines.js';
import { deepProbe, httpGet, probeHealth, probeModels, type ProbeResult } from '../../health/probe.js';
import { engineFromMetrics } from '../../health/vllm-metrics.js';
import type { Desired } from '../../desired/desired.js';
import type { Upstream } from '../../core/model/door.js';

export type ProbeOutcome = ProbeResult & { detail?: string; sample?: EngineSample; finding?: 'harmony-parse' };

/** vLLM's stats line, when the log watch has one: the engine probe's fallback. */
export type StatsSource = () => StatsLine | undefined;

/** How the shell probes; tests without a model answer the probes themselves. */
export type Prober = (
  kind: ProbeKind,
  d: Desired,
  timeout: number,
  stats?: StatsSource,
  at?: Upstream,
) => Promise<ProbeOutcome>;

/**
 * A probe the machine asked for, timed, with a look at the model's folder when asked (a download
 * may be under way): the `probed` event to dispatch.
 */
export async function runProbe(
  a: Extract<Action, { type: 'probe' }>,
  d: Desired,
  at: Upstream,
  stats: StatsSource,
  prober: Prober = probe,
): Promise<Event> {
  const c = d.config;
  const disk = a.disk ? modelDisk(c.paths.huggingface, c.model.id).catch(() => undefined) : undefined;
  const t0 = performance.now();
  const [r, found] = await Promise.all([
    prober(a.kind, d, a.timeout, stats, at).then((x) => ({ ...x, ms: performance.now() - t0 })),
    disk,
  ]);
  return { type: 'probed', kind: a.kind, epoch: a.epoch, ...r, ...(found ? { disk: found } : {}) };
}

/** Probes the model where it answers: `at`, the run's published address (else the spec's). */
export function probe(
  kind: ProbeKind,
  d: Desired,
  timeout: number,
  stats?: StatsSource,
  at: Upstream = d.upstream,
): Promise<ProbeOutcome> {
  const { host, port } = at;
  const name = d.settings.servedName;
  // The warm-up is the deep probe's completion: the first one of a run is the slow one.
  if (kind === 'deep' || kind === 'warmup') return deepProbe(host, port, name, timeout);
  if (kind === 'readiness') return probeModels(host, port, name, timeout);
  if (kind === 'engine') return probeEngine(host, port, timeout, stats);
  return probeHealth(host, port, timeout);
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
