// A load as vLLM tells it: the phase it is in, its progress, the download's bytes, and a stall when all stop.
import { type DownloadWatch, isRunning, type LoadTrack, type RunningState, type State } from '../model/state.js';
import { type Action, type DiskSample, type EventOf, LOAD_PHASES, type LoadPhase } from '../model/events.js';
import { formatDuration as fmt } from '../rules/duration.js';
import type { Settings } from '../model/settings.js';
import type { Diagnosis } from '../model/diagnosis.js';
import { log, still, type Handler, type Input, type Step } from './handler.js';
import { PHASE_LABEL, phaseIndex } from '../rules/load-phases.js';
import { fail } from './moves.js';

export const newLoad = (now: number): LoadTrack => ({
  phase: 'starting',
  progressAt: now,
  spans: [{ phase: 'starting', from: now }],
});

/**
 * How long each phase may go without progress. Chosen from the GB10 and DGX Spark start-ups in
 * test/fixtures/vllm-logs/healthy and from the public hang reports (spark-arena/recipe-registry#17:
 * 44 min in torch.compile; vllm#52682; vllm#15360: CUDA-graph capture):
 * - starting: Python imports and config, seconds; 5 min covers a slow disk.
 * - download: any byte is progress, so a moving download never stalls; 5 min without one is a dead one.
 * - weights: a shard's line comes every 40-115 s on GB10 (test/fixtures/vllm-logs/healthy); 10 min.
 * - compile: the longest silent stretches measured on GB10 are one graph's compile (44.8 s,
 *   spark-mxfp4-docker-gptoss120b-gb10-server-clean.log) and FlashInfer's JIT (~41 s); 5 min is six
 *   times that, and the hang reports sat 44 min.
 * - kv-cache: memory profiling and FlashInfer autotune, silent for up to a minute; 5 min.
 * - graphs: a capture step every fraction of a second; 3 min without one is a hang (vllm#15360).
 * - api: from `init engine ... took` to /v1/models, seconds; 3 min.
 */
export const PHASE_STALL_MS: Record<LoadPhase, number> = {
  starting: 5 * 60_000,
  download: 5 * 60_000,
  weights: 10 * 60_000,
  compile: 5 * 60_000,
  'kv-cache': 5 * 60_000,
  graphs: 3 * 60_000,
  api: 3 * 60_000,
};

export const stallTimeoutOf = (t: Settings, p: LoadPhase): number => t.loadStallTimeout ?? PHASE_STALL_MS[p];

/** Time spent downloading so far: it does not count against health.startup.timeout. */
export function downloadMs(l: LoadTrack | undefined, now: number): number {
  if (!l) return 0;
  return l.spans.filter((x) => x.phase === 'download').reduce((sum, x) => sum + ((x.to ?? now) - x.from), 0);
}

/** Durations by phase (a phase seen twice, such as weights around a download, adds up). */
export function phaseDurations(l: LoadTrack, now: number): Partial<Record<LoadPhase, number>> {
  const out: Partial<Record<LoadPhase, number>> = {};
  for (const x of l.spans) out[x.phase] = (out[x.phase] ?? 0) + ((x.to ?? now) - x.from);
  return out;
}

/** Phases move forward; the download is entered from the weights phase and returns to it. */
function moves(from: LoadPhase, to: LoadPhase): boolean {
  if (to === from) return false;
  if (to === 'download') return from === 'starting' || from === 'weights';
  if (from === 'download') return to !== 'starting';
  return phaseIndex(to) > phaseIndex(from);
}

function enterPhase(l: LoadTrack, to: LoadPhase, now: number): { load: LoadTrack; said: Action } {
  const spans = l.spans.map((x, i) => (i === l.spans.length - 1 && x.to === undefined ? { ...x, to: now } : x));
  const prev = spans[spans.length - 1];
  const took = prev?.to !== undefined ? prev.to - prev.from : 0;
  const load: LoadTrack = { ...l, phase: to, spans: [...spans, { phase: to, from: now }] };
  delete load.progress;
  const msg = `load: ${PHASE_LABEL[to]}${prev ? ` (${PHASE_LABEL[prev.phase]} took ${fmt(took)})` : ''}`;
  const said = log('info', 'load-phase', msg, { phase: to, previous: prev?.phase, previousMs: took });
  return { load, said };
}

const loadingRun = (s: RunningState) => s.phase === 'loading' && s.run.load !== undefined;

/** A line of vLLM's start-up: progress, and perhaps the next phase. */
export const loadLine: Handler<EventOf<'loadLine'>> = (s, ev, inp) => {
  if (ev.epoch !== s.epoch || !isRunning(s) || !loadingRun(s)) return still(s);
  const now = inp.now;
  let l: LoadTrack = { ...s.run.load!, progressAt: now, lastLine: ev.line };
  const actions: Action[] = [];
  // The download is over when vLLM says how long it took: back to loading the weights.
  const to = ev.phase === 'download' && ev.ends ? 'weights' : ev.phase;
  if (moves(l.phase, to)) {
    const e = enterPhase(l, to, now);
    l = e.load;
    actions.push(e.said);
  }
  if (ev.progress && to === l.phase) l = { ...l, progress: ev.progress };
  return { state: { ...s, run: { ...s.run, load: l } }, actions };
};

/** A look at the model's folder during a load: bytes that grow are a download making progress. */
export function diskSampled(s: RunningState, d: DiskSample, inp: Input): Step {
  if (!loadingRun(s)) return still(s);
  const now = inp.now;
  let l = s.run.load!;
  const prev = l.download;
  const total = s.history.modelBytes?.model === inp.settings.modelId ? s.history.modelBytes.bytes : undefined;
  const grew = prev !== undefined && d.bytes > prev.bytes;
  let rate = prev?.rate;
  if (prev && grew && now > prev.at) {
    const r = ((d.bytes - prev.bytes) * 1000) / (now - prev.at);
    rate = rate === undefined ? r : 0.7 * rate + 0.3 * r;
  }
  const download: DownloadWatch = {
    bytes: d.bytes,
    at: now,
    complete: d.complete,
    ...(rate !== undefined ? { rate } : {}),
    ...(total !== undefined ? { total } : {}),
  };
  l = { ...l, download, ...(grew ? { progressAt: now } : {}) };
  const actions: Action[] = [];
  if (!d.complete && d.incomplete > 0 && grew && moves(l.phase, 'download')) {
    const e = enterPhase(l, 'download', now);
    l = e.load;
    actions.push(e.said);
  }
  let history = s.history;
  if (d.complete && d.bytes > 0 && history.modelBytes?.bytes !== d.bytes)
    history = { ...history, modelBytes: { model: inp.settings.modelId, bytes: d.bytes } };
  return { state: { ...s, history, run: { ...s.run, load: l } }, actions };
}

/** When the load in progress stalls, if nothing moves before. */
export function stallAt(s: RunningState, t: Settings): number | undefined {
  const l = s.run.load;
  if (!l || s.phase !== 'loading') return undefined;
  return l.progressAt + stallTimeoutOf(t, l.phase);
}

/** A load with no progress for its phase's stall timeout fails: `load-stalled`, and the usual backoff. */
export function stallCheck(s: RunningState, inp: Input): Step | undefined {
  const at = stallAt(s, inp.settings);
  if (at === undefined || inp.now < at) return undefined;
  const l = s.run.load!;
  const t = inp.settings;
  const quiet = fmt(inp.now - l.progressAt);
  const last = l.lastLine ? `; last line: ${l.lastLine.slice(0, 300)}` : '; no start-up line recognised yet';
  const summary = `the load stalled while ${PHASE_LABEL[l.phase]}: no progress for ${quiet}${last}`;
  const d: Diagnosis = {
    code: 'load-stalled',
    summary,
    remedy:
      `a hang in ${l.phase} is often a bad compile or graph cache: look at \`docker logs ${t.name}\`; if it ` +
      `repeats, empty the ${l.phase === 'compile' ? 'vllm' : 'cache'} folder under paths.cache, or allow ` +
      `more with health.startup.stallTimeout`,
  };
  return fail(s, inp, summary, { cause: `load stalled (${l.phase})`, stillRunning: s.run.containerId, diagnosis: d });
}

const size = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(1)} GB` : `${(n / 1e6).toFixed(1)} MB`);

/** `23.4 of 65.3 GB, 41 MB/s, ETA 17m` */
export function downloadText(d: DownloadWatch): string {
  const bytes =
    d.total && d.total >= d.bytes ? `${size(d.bytes).replace(/ GB$| MB$/, '')} of ${size(d.total)}` : size(d.bytes);
  const rate = d.rate !== undefined ? `, ${(d.rate / 1e6).toFixed(0)} MB/s` : '';
  const eta = d.total && d.rate && d.total > d.bytes ? `, ETA ${fmt(((d.total - d.bytes) / d.rate) * 1000)}` : '';
  return `${bytes}${rate}${eta}`;
}

/** The load in a few words: `compiling (torch.compile) for 1m10s; weights 15/15 in 57s`. */
export function loadText(l: LoadTrack, now: number): string {
  if (l.phase === 'download' && l.download) return `${PHASE_LABEL.download}: ${downloadText(l.download)}`;
  const cur = l.spans[l.spans.length - 1];
  const step = l.progress ? ` ${l.progress.done}/${l.progress.total}` : '';
  const head = `${PHASE_LABEL[l.phase]}${step} for ${fmt(now - (cur?.from ?? now))}`;
  const done = l.spans.filter((x) => x.to !== undefined && x.phase !== 'starting');
  const prev = done[done.length - 1];
  return prev ? `${head}; ${prev.phase} in ${fmt(prev.to! - prev.from)}` : head;
}

/** What a finished load leaves for the next one's ETA: its total and per-phase durations. */
export function loadRecord(l: LoadTrack, startedAt: number, now: number, spec: string) {
  const phases = phaseDurations(l, now);
  return { spec, took: now - startedAt - downloadMs(l, now), phases, at: now };
}

export { LOAD_PHASES };

/** A load as D-Bus and `status` show it: phase, since when, progress, when it should be ready. */
export interface LoadView {
  phase: LoadPhase | '';
  since?: number;
  progress: string;
  /** When the model should serve: the last load of this spec, or the download's ETA; undefined: unknown. */
  eta?: number;
}

export function loadView(s: State, now: number, specHash: string): LoadView {
  const l = isRunning(s) && s.phase === 'loading' ? s.run.load : undefined;
  if (!isRunning(s) || !l) return { phase: '', progress: '' };
  const cur = l.spans[l.spans.length - 1];
  const d = l.download;
  const progress =
    l.phase === 'download' && d ? downloadText(d) : l.progress ? `${l.progress.done}/${l.progress.total}` : '';
  const last = s.history.lastLoad;
  let eta: number | undefined;
  if (l.phase === 'download' && d?.total && d.rate && d.total > d.bytes)
    eta = now + ((d.total - d.bytes) / d.rate) * 1000;
  else if (last?.spec === specHash) eta = s.run.startedAt + downloadMs(l, now) + last.took;
  return { phase: l.phase, ...(cur ? { since: cur.from } : {}), progress, ...(eta !== undefined ? { eta } : {}) };
}
