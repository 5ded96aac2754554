// GPU telemetry: one nvidia-smi query for the SM clock and its maximum, the temperature, the power drawn
// and the active clock event (throttle) reasons. Drivers since 535 call the reasons
// `clocks_event_reasons.*`; older ones only `clocks_throttle_reasons.*` (newer ones take both, and answer
// with the new names in the header: test/fixtures/nvidia-smi/h200/). A driver that refuses the new names
// is asked with the old ones from then on. Any figure may be [N/A] or [Not Supported] (the GB10).
import { THROTTLE_REASONS, type GpuReading, type ThrottleReason } from '../core/model/host.js';
import { missing, parseCsv, run, smiFailure } from './nvidia-smi.js';

export type ReasonPrefix = 'clocks_event_reasons' | 'clocks_throttle_reasons';

const BASE = ['index', 'uuid', 'clocks.sm', 'clocks.max.sm', 'temperature.gpu', 'power.draw'];

/** The fields asked for, in order (what a `noheader` answer's columns are). */
export const telemetryFields = (prefix: ReasonPrefix): string[] => [
  ...BASE,
  ...THROTTLE_REASONS.map((r) => `${prefix}.${r}`),
];

/** The query's arguments. */
export const telemetryQuery = (prefix: ReasonPrefix): string[] => [
  `--query-gpu=${telemetryFields(prefix).join(',')}`,
  '--format=csv',
];

/** A header's name as the parser keys it: `clocks.sm` answers as `clocks.current.sm`, old reason names as new. */
function canonical(name: string): string {
  if (name === 'clocks.current.sm') return 'clocks.sm';
  return name.replace(/^clocks_throttle_reasons\./, 'clocks_event_reasons.');
}

/** `1470 MHz`, `691.59 W`, `60`: the number; [N/A] and the like: undefined. */
function figure(v: string | undefined): number | undefined {
  if (v === undefined || missing(v.trim())) return undefined;
  const n = Number.parseFloat(v);
  return Number.isFinite(n) ? n : undefined;
}

/** Each GPU's reading from an answer (with or without its header line). */
export function parseTelemetry(text: string, prefix: ReasonPrefix = 'clocks_event_reasons'): GpuReading[] {
  const rows = parseCsv(text, telemetryFields(prefix)).map((r) =>
    Object.fromEntries(Object.entries(r).map(([k, v]) => [canonical(k), v])),
  );
  const out: GpuReading[] = [];
  for (const r of rows) {
    const index = figure(r['index']);
    if (index === undefined) continue;
    const reasons: ThrottleReason[] = THROTTLE_REASONS.filter(
      (x) => r[`clocks_event_reasons.${x}`]?.trim().toLowerCase() === 'active',
    );
    const g: GpuReading = { index, reasons };
    const uuid = r['uuid']?.trim();
    if (uuid && !missing(uuid)) g.uuid = uuid;
    const sm = figure(r['clocks.sm']);
    const max = figure(r['clocks.max.sm']);
    const temp = figure(r['temperature.gpu']);
    const power = figure(r['power.draw']);
    if (sm !== undefined) g.smMhz = sm;
    if (max !== undefined) g.smMaxMhz = max;
    if (temp !== undefined) g.temperature = temp;
    if (power !== undefined) g.powerW = power;
    out.push(g);
  }
  return out;
}

export type TelemetryAnswer = { gpus: GpuReading[] } | { error: string };

/** Asks nvidia-smi; remembers which names of the reasons the driver takes (in `names`). */
export async function queryTelemetry(
  bin: string,
  names: { prefix: ReasonPrefix },
  timeoutMs = 10_000,
): Promise<TelemetryAnswer> {
  let r = await run(bin, telemetryQuery(names.prefix), timeoutMs);
  if (r.enoent) return { error: `${bin} not found` };
  // `Field "clocks_event_reasons.sw_power_cap" is not a valid field to query.`: a driver older than 535.
  if (
    r.code !== 0 &&
    names.prefix === 'clocks_event_reasons' &&
    /clocks_event_reasons\S* is not a valid field/.test(r.stdout)
  ) {
    names.prefix = 'clocks_throttle_reasons';
    r = await run(bin, telemetryQuery(names.prefix), timeoutMs);
  }
  if (r.code !== 0) {
    const f = smiFailure(r.code, r.stdout, r.stderr);
    return { error: f.kind === 'failed' ? `${f.message} (exit ${f.code ?? 'none'})` : 'failed' };
  }
  return { gpus: parseTelemetry(r.stdout, names.prefix) };
}
