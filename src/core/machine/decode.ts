// Slower than itself: each look at the engine adds the decoding since the last one; the spec's first
// `health.slow.baseline` of serving makes its baseline (the median), persisted; the last
// `health.slow.window` `slower` slower than that is said in the status, the journal and the `slow` alert.
import type { Action, EngineSample, History } from '../model/events.js';
import type { DecodeBaseline, DecodeWatch } from '../model/host.js';
import type { RunningState } from '../model/state.js';
import { formatDuration as fmt } from '../rules/duration.js';
import {
  isSlow,
  MAX_GAP_MS,
  MAX_LOOKS,
  median,
  MIN_LOOKS,
  pointOf,
  slowText,
  spanOf,
  speedText,
  windowRate,
} from '../rules/decode.js';
import { activeReasons } from '../rules/telemetry.js';
import { log, type Input } from './handler.js';

export interface DecodeStep {
  decode: DecodeWatch;
  history: History;
  actions: Action[];
  /** The history changed in a way worth saving (the baseline fixed, or five more minutes of it). */
  save: boolean;
}

const SAVE_EVERY_MS = 5 * 60_000;

/** The baseline after one more look: serving time counted, the look's speed kept, fixed once the window is full. */
function collect(
  r: DecodeBaseline,
  gapMs: number,
  spt: number | undefined,
  now: number,
  windowMs: number,
): { record: DecodeBaseline; fixed: boolean; save: boolean } {
  if (r.secondsPerToken !== undefined) return { record: r, fixed: false, save: false };
  const servedMs = r.servedMs + Math.min(Math.max(0, gapMs), MAX_GAP_MS);
  const samples = spt !== undefined && r.samples.length < MAX_LOOKS ? [...r.samples, spt] : r.samples;
  if (servedMs >= windowMs && samples.length >= MIN_LOOKS)
    return {
      record: { spec: r.spec, servedMs, samples: [], secondsPerToken: median(samples), at: now },
      fixed: true,
      save: true,
    };
  const save = Math.floor(servedMs / SAVE_EVERY_MS) > Math.floor(r.servedMs / SAVE_EVERY_MS);
  return { record: { ...r, servedMs, samples }, fixed: false, save };
}

export function decodeSampled(s: RunningState, e: EngineSample, inp: Input): DecodeStep | undefined {
  const { now, settings: t } = inp;
  const slow = t.slow;
  if (!slow) return undefined;
  const prev = s.run.decode;
  const span = spanOf(prev?.last, e, now);
  const from = now - slow.window;
  const spans = [...(prev?.spans ?? []).filter((x) => x.at > from), ...(span ? [span] : [])];
  const old = s.history.decode?.spec === t.specHash ? s.history.decode : { spec: t.specHash, servedMs: 0, samples: [] };
  // Only serving counts toward the baseline (a run that is unhealthy is not the model at its usual speed).
  const gap = s.phase === 'serving' && prev?.last ? now - prev.last.at : 0;
  const c = collect(old, gap, span ? span.seconds / span.tokens : undefined, now, slow.baseline);
  const actions: Action[] = [];
  if (c.fixed && c.record.secondsPerToken !== undefined)
    actions.push(
      log(
        'info',
        'decode-speed',
        `decode-speed baseline for this spec: ${speedText(c.record.secondsPerToken)} (the median of ` +
          `${old.samples.length + (span ? 1 : 0)} looks over ${fmt(c.record.servedMs)} of serving)`,
        { secondsPerToken: c.record.secondsPerToken },
      ),
    );
  const baseline = c.record.secondsPerToken;
  const recent = windowRate(spans, from);
  const slowNow = recent !== undefined && baseline !== undefined && isSlow(recent, baseline, slow.slower);
  const slowSince = slowNow ? (prev?.slowSince ?? now) : undefined;
  if (recent !== undefined && baseline !== undefined) {
    const over = `decode speed over the last ${fmt(slow.window)}`;
    const what = `${over}: ${speedText(recent)} (usually ${speedText(baseline)})`;
    actions.push(log('debug', 'decode-speed', what, { secondsPerToken: recent, baseline }));
    if (slowNow && prev?.slowSince === undefined) {
      const why = activeReasons(s.run.gpu);
      const text = `${slowText(recent, baseline)} (the last ${fmt(slow.window)}, requests running)`;
      actions.push(log('warn', 'decode-speed', `${text}${why ? `; the GPU is throttled (${why})` : ''}`));
    }
    if (!slowNow && prev?.slowSince !== undefined)
      actions.push(log('info', 'decode-speed', `decode speed back to usual: ${speedText(recent)}`));
  }
  const decode: DecodeWatch = {
    spans,
    last: pointOf(e, now),
    ...(recent === undefined ? {} : { recent }),
    ...(slowSince === undefined ? {} : { slowSince }),
  };
  return { decode, history: { ...s.history, decode: c.record }, actions, save: c.save };
}
