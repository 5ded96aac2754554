// The D-Bus properties as plain values: what the state machine's state reads as, and what changed.
import { loadView } from '../core/machine/load.js';
import { isRunning, type State } from '../core/model/state.js';

export const BUS_NAME = 'org.gptoss.Supervisor1';
export const OBJECT_PATH = '/org/gptoss/Supervisor1';
export const INTERFACE = 'org.gptoss.Supervisor1';

/** Each property's D-Bus signature, in the order introspection lists them. */
export const SIGNATURES = {
  State: 's',
  StatusText: 's',
  StateSince: 't',
  WaitingFor: 's',
  ContainerId: 's',
  Image: 's',
  ServedModel: 's',
  Endpoint: 's',
  RestartCount: 'u',
  TotalRestarts: 'u',
  LastExitCode: 'i',
  LastExitOomKilled: 'b',
  Diagnosis: 's',
  DiagnosisSummary: 's',
  DiagnosisRemedy: 's',
  ServingSince: 't',
  ConfigPath: 's',
  ConfigError: 's',
  LastDeepProbe: '(tbs)',
  EngineLoad: '(tuudd)',
  LoadPhase: 's',
  LoadPhaseSince: 't',
  LoadProgress: 's',
  LoadEta: 't',
  LastLoadDuration: 't',
  LastLoadPhases: 'a{st}',
  Gate: 's',
  RequestsHeld: 'u',
  RequestsInFlight: 'u',
  RequestSuccessRate: 'd',
  TimeToFirstTokenP95: 'd',
  RolledBackFrom: 's',
  RolledBackTo: 's',
  RolledBackBecause: 's',
  RolledBackAt: 't',
  KnownGood: 'a(ssssttts)',
  GpuTelemetry: '(ta(uddddas))',
  GpuThrottledSince: 't',
  DecodeSpeed: '(dd)',
  Exposure: 's',
} as const;

export type PropName = keyof typeof SIGNATURES;

export interface Props {
  State: string;
  StatusText: string;
  /** Microseconds since the epoch (systemd's convention); 0 for never. */
  StateSince: bigint;
  WaitingFor: string;
  ContainerId: string;
  Image: string;
  ServedModel: string;
  Endpoint: string;
  RestartCount: number;
  TotalRestarts: number;
  /** -1 when no exit is known. */
  LastExitCode: number;
  LastExitOomKilled: boolean;
  Diagnosis: string;
  DiagnosisSummary: string;
  DiagnosisRemedy: string;
  ServingSince: bigint;
  ConfigPath: string;
  ConfigError: string;
  /** When (usec, 0 for never), whether it passed, and what it found. */
  LastDeepProbe: [bigint, boolean, string];
  /**
   * vLLM's engine as last sampled: when (usec, 0 for never), requests running, waiting, KV cache
   * use (0..1) and generated tokens/s (each -1 when unknown).
   */
  EngineLoad: [bigint, number, number, number, number];
  /** The load's phase (src/core/rules/load-phases.ts), '' when not loading. */
  LoadPhase: string;
  LoadPhaseSince: bigint;
  /** `7/15` (a progress bar's step), `23.4 of 65.3 GB, 41 MB/s, ETA 17m` (a download), or ''. */
  LoadProgress: string;
  /** When the model should serve (usec; 0 when not known): from the last load of this spec, or the download. */
  LoadEta: bigint;
  /** The last load that reached serving: how long it took (downloads left out), and each phase (usec). */
  LastLoadDuration: bigint;
  LastLoadPhases: Record<string, bigint>;
  /** The gate: '' without one (gate.enabled false), `listening`, or `not listening: WHY`. */
  Gate: string;
  RequestsHeld: number;
  RequestsInFlight: number;
  /** The last hour at the gate: the share of requests answered well (0..1), -1 without any. */
  RequestSuccessRate: number;
  /** The last hour at the gate: the 95th percentile of time to first token, seconds, -1 without any. */
  TimeToFirstTokenP95: number;
  /**
   * A rollback in force: the refused spec (the config's), the good one serving instead, why, when;
   * '' and 0 when none.
   */
  RolledBackFrom: string;
  RolledBackTo: string;
  RolledBackBecause: string;
  RolledBackAt: bigint;
  /**
   * The specs that served through their canary window, newest first: hash, image (the config's
   * tag), image ID, registry digest ('' when none), when it first served and was proven (usec),
   * when its last run ended (0 while it serves) and how.
   */
  KnownGood: [string, string, string, string, bigint, bigint, bigint, string][];
  /**
   * The GPUs while the model serves: when sampled (usec, 0 never), and for each its index, SM clock and
   * its maximum (MHz), temperature (C), power (W), each -1 when unknown, and the active throttle reasons.
   */
  GpuTelemetry: [bigint, Array<[number, number, number, number, number, string[]]>];
  /** When the current throttle began (usec), 0 when the GPU is not throttled. */
  GpuThrottledSince: bigint;
  /** Tokens per second per request over health.slow.window, and the spec's baseline (-1 when unknown). */
  DecodeSpeed: [number, number];
  /** '' when the model's API is on loopback only or asks for a key; else the warning that it is open. */
  Exposure: string;
}

/** What clients experienced at the gate (the last hour). */
export interface RequestFigures {
  successRate?: number;
  ttftP95?: number;
}

export interface Context {
  image: string;
  servedName: string;
  /** Where clients reach the model, e.g. http://127.0.0.1:8000/v1. */
  endpoint: string;
  configPath: string;
  /** The container spec's hash: a load's ETA comes from the last load of the same spec. */
  specHash: string;
  /** The model's API open beyond loopback with no key: the warning (src/core/rules/exposure.ts), else ''. */
  exposure?: string;
}

/** Milliseconds as D-Bus time (µs); 0 for none, and for anything not a finite time. */
const usec = (ms: number | undefined) =>
  ms === undefined || !Number.isFinite(ms) || ms < 0 ? 0n : BigInt(Math.round(ms)) * 1000n;

/** The HF token never reaches a property: nothing here reads it, and texts come from the scrubbed status. */
export function propsOf(s: State, statusText: string, c: Context, now = Date.now(), r: RequestFigures = {}): Props {
  const load = loadView(s, now, c.specHash);
  const last = s.history.lastLoad;
  const h = s.history;
  const deep = h.lastDeep;
  const servingSince = s.phase === 'serving' ? s.run.probes.servingSince : undefined;
  return {
    State: s.phase,
    StatusText: statusText,
    StateSince: usec(s.since),
    WaitingFor: s.phase === 'waiting' ? s.wait.reason : '',
    ContainerId: (isRunning(s) ? s.run.containerId : s.lastContainer) ?? '',
    Image: c.image,
    ServedModel: c.servedName,
    Endpoint: c.endpoint,
    RestartCount: h.restarts,
    TotalRestarts: h.totalRestarts,
    LastExitCode: h.lastExit?.code ?? -1,
    LastExitOomKilled: h.lastExit?.oom ?? false,
    Diagnosis: h.diagnosis?.code ?? '',
    DiagnosisSummary: h.diagnosis?.summary ?? '',
    DiagnosisRemedy: h.diagnosis?.remedy ?? '',
    ServingSince: usec(servingSince),
    ConfigPath: c.configPath,
    ConfigError: s.configError ?? '',
    LastDeepProbe: deep ? [usec(deep.at), deep.ok, deep.detail] : [0n, false, ''],
    EngineLoad: engineLoad(s),
    LoadPhase: load.phase,
    LoadPhaseSince: usec(load.since),
    LoadProgress: load.progress,
    LoadEta: usec(load.eta),
    LastLoadDuration: usec(last?.took),
    LastLoadPhases: Object.fromEntries(Object.entries(last?.phases ?? {}).map(([k, ms]) => [k, usec(ms)])),
    Gate: !s.door ? '' : s.door.listening ? 'listening' : `not listening: ${s.door.why ?? 'not yet'}`,
    RequestsHeld: s.door?.held ?? 0,
    RequestsInFlight: s.door?.inFlight ?? 0,
    RequestSuccessRate: r.successRate ?? -1,
    TimeToFirstTokenP95: r.ttftP95 === undefined || !Number.isFinite(r.ttftP95) ? -1 : r.ttftP95 / 1000,
    RolledBackFrom: h.rollback?.from ?? '',
    RolledBackTo: h.rollback?.to ?? '',
    RolledBackBecause: h.rollback
      ? `${h.rollback.because}${h.rollback.failedToo ? `; the last good spec fails too: ${h.rollback.failedToo}` : ''}`
      : '',
    RolledBackAt: usec(h.rollback?.at),
    KnownGood: (h.good ?? []).map((g) => [
      g.hash,
      g.image,
      g.imageId,
      g.digest ?? '',
      usec(g.servedAt),
      usec(g.provenAt),
      usec(g.ended?.at),
      g.ended?.how ?? '',
    ]),
    GpuTelemetry: gpuTelemetry(s),
    GpuThrottledSince: usec(isRunning(s) ? s.run.gpu?.throttledSince : undefined),
    DecodeSpeed: decodeSpeed(s, c.specHash),
    Exposure: c.exposure ?? '',
  };
}

function gpuTelemetry(s: State): Props['GpuTelemetry'] {
  const w = isRunning(s) ? s.run.gpu : undefined;
  if (!w) return [0n, []];
  const n = (x: number | undefined) => x ?? -1;
  return [
    usec(w.at),
    w.gpus.map((g) => [g.index, n(g.smMhz), n(g.smMaxMhz), n(g.temperature), n(g.powerW), [...g.reasons]]),
  ];
}

function decodeSpeed(s: State, spec: string): Props['DecodeSpeed'] {
  const recent = isRunning(s) ? s.run.decode?.recent : undefined;
  const b = s.history.decode;
  const base = b?.spec === spec ? b.secondsPerToken : undefined;
  return [recent ? 1 / recent : -1, base ? 1 / base : -1];
}

function engineLoad(s: State): Props['EngineLoad'] {
  const w = isRunning(s) ? s.run.engine : undefined;
  if (!w) return [0n, 0, 0, -1, -1];
  const e = w.last;
  return [usec(e.at), e.running, e.waiting, e.kvCache ?? -1, w.tokensPerSec ?? -1];
}

function same(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => same(v, b[i]));
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => same((a as never)[k], (b as never)[k]));
  }
  return a === b;
}

/** Every text of the properties passed through `scrub`: no property may carry a secret. */
export function scrubProps(p: Props, scrub: (text: string) => string): Props {
  const out = { ...p };
  for (const k of Object.keys(SIGNATURES) as PropName[]) {
    const v = out[k];
    if (typeof v === 'string') (out as Record<string, unknown>)[k] = scrub(v);
  }
  out.LastDeepProbe = [p.LastDeepProbe[0], p.LastDeepProbe[1], scrub(p.LastDeepProbe[2])];
  out.KnownGood = p.KnownGood.map(([a, b, c, d, e, f, g, how]) => [a, b, c, d, e, f, g, scrub(how)]);
  return out;
}

/** The properties whose values differ, for one PropertiesChanged signal. */
export function changedProps(prev: Props | undefined, next: Props): Partial<Props> {
  const out: Partial<Props> = {};
  for (const k of Object.keys(SIGNATURES) as PropName[]) {
    if (!prev || !same(prev[k], next[k])) (out as Record<string, unknown>)[k] = next[k];
  }
  return out;
}

/** The JSON `status --json` prints: the properties in camelCase, times as ISO strings (null for never). */
export function jsonOf(p: Props): Record<string, unknown> {
  const iso = (us: bigint) => (us === 0n ? null : new Date(Number(us / 1000n)).toISOString());
  const [deepAt, deepOk, deepDetail] = p.LastDeepProbe;
  return {
    state: p.State,
    statusText: p.StatusText,
    stateSince: iso(p.StateSince),
    waitingFor: p.WaitingFor || null,
    containerId: p.ContainerId || null,
    image: p.Image,
    servedModel: p.ServedModel,
    endpoint: p.Endpoint,
    restartCount: p.RestartCount,
    totalRestarts: p.TotalRestarts,
    lastExitCode: p.LastExitCode === -1 ? null : p.LastExitCode,
    lastExitOomKilled: p.LastExitOomKilled,
    diagnosis: p.Diagnosis || null,
    diagnosisSummary: p.DiagnosisSummary || null,
    diagnosisRemedy: p.DiagnosisRemedy || null,
    servingSince: iso(p.ServingSince),
    configPath: p.ConfigPath,
    configError: p.ConfigError || null,
    exposure: p.Exposure || null,
    lastDeepProbe: deepAt === 0n ? null : { at: iso(deepAt), ok: deepOk, detail: deepDetail },
    engineLoad: engineJson(p.EngineLoad, iso),
    load: p.LoadPhase
      ? { phase: p.LoadPhase, since: iso(p.LoadPhaseSince), progress: p.LoadProgress || null, eta: iso(p.LoadEta) }
      : null,
    lastLoad:
      p.LastLoadDuration === 0n
        ? null
        : {
            seconds: Number(p.LastLoadDuration / 1000n) / 1000,
            phases: Object.fromEntries(
              Object.entries(p.LastLoadPhases).map(([k, us]) => [k, Number(us / 1000n) / 1000]),
            ),
          },
    rollback: p.RolledBackTo
      ? { from: p.RolledBackFrom, to: p.RolledBackTo, because: p.RolledBackBecause, at: iso(p.RolledBackAt) }
      : null,
    knownGood: knownGoodJson(p.KnownGood, iso),
    gate: p.Gate || null,
    gpu: gpuJson(p, iso),
    decodeSpeed: {
      tokensPerSecondPerRequest: p.DecodeSpeed[0] < 0 ? null : Math.round(p.DecodeSpeed[0] * 10) / 10,
      usual: p.DecodeSpeed[1] < 0 ? null : Math.round(p.DecodeSpeed[1] * 10) / 10,
    },
    requests: {
      held: p.RequestsHeld,
      inFlight: p.RequestsInFlight,
      successRateLastHour: p.RequestSuccessRate < 0 ? null : p.RequestSuccessRate,
      timeToFirstTokenP95Seconds: p.TimeToFirstTokenP95 < 0 ? null : p.TimeToFirstTokenP95,
    },
  };
}

function gpuJson(p: Props, iso: (us: bigint) => string | null): Record<string, unknown> | null {
  const [at, gpus] = p.GpuTelemetry;
  if (at === 0n) return null;
  const v = (x: number) => (x < 0 ? null : x);
  return {
    at: iso(at),
    throttledSince: iso(p.GpuThrottledSince),
    gpus: gpus.map(([index, sm, max, temp, power, reasons]) => ({
      index,
      smClockMhz: v(sm),
      smClockMaxMhz: v(max),
      temperatureCelsius: v(temp),
      powerWatts: v(power),
      throttleReasons: reasons,
    })),
  };
}

function engineJson(e: Props['EngineLoad'], iso: (us: bigint) => string | null): Record<string, unknown> | null {
  const [at, running, waiting, kv, rate] = e;
  if (at === 0n) return null;
  return {
    at: iso(at),
    running,
    waiting,
    kvCacheUsage: kv < 0 ? null : kv,
    tokensPerSecond: rate < 0 ? null : Math.round(rate * 10) / 10,
  };
}

/** `status --json`'s `knownGood` and `gptoss-supervisor history --json`: the good specs, newest first. */
export function knownGoodJson(k: Props['KnownGood'], iso: (us: bigint) => string | null): Record<string, unknown>[] {
  return k.map(([hash, image, imageId, digest, servedAt, provenAt, endedAt, how]) => ({
    spec: hash,
    image,
    imageId,
    digest: digest || null,
    servedAt: iso(servedAt),
    provenAt: iso(provenAt),
    ended: endedAt === 0n ? null : { at: iso(endedAt), how },
  }));
}
