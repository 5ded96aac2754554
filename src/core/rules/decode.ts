// Decode speed, from what vLLM says of itself: seconds per output token between two looks (its
// inter-token latency histogram, or generated tokens per running request), a baseline per spec, and
// "slower than itself".
import type { EngineSample } from '../model/events.js';
import type { DecodeSpan } from '../model/host.js';
import { RECORD_LIMITS } from '../model/record.js';

/** Fewer tokens than this in the window say too little about speed. */
export const MIN_TOKENS = 16;
/** A baseline is the median of at least this many looks with requests running. */
export const MIN_LOOKS = 5;
/** Looks kept while a baseline is collected. */
export const MAX_LOOKS = RECORD_LIMITS.decodeLooks;
/** A gap between two looks longer than this (a supervisor restart, a stop) does not count as serving time. */
export const MAX_GAP_MS = 60_000;

export interface Point {
  at: number;
  sum?: number;
  count?: number;
  generated?: number;
}

export const pointOf = (e: EngineSample, at: number): Point => ({
  at,
  ...(e.tpot ? { sum: e.tpot.sum, count: e.tpot.count } : {}),
  ...(e.generated === undefined ? {} : { generated: e.generated }),
});

/**
 * The decoding between two looks, with requests running: the histogram's growth (seconds summed over
 * tokens, tokens) where vLLM has it; else each running request's share of the generated tokens (a
 * request that waits one second per token has spent `running x seconds` for `generated` tokens); else
 * vLLM's stats line (tokens/s over its interval). Undefined when nothing was decoded or nothing says.
 */
export function spanOf(prev: Point | undefined, e: EngineSample, now: number): DecodeSpan | undefined {
  if (e.running <= 0) return undefined;
  const dt = prev ? (now - prev.at) / 1000 : 0;
  if (e.tpot && prev?.count !== undefined && prev.sum !== undefined) {
    const tokens = e.tpot.count - prev.count;
    const seconds = e.tpot.sum - prev.sum;
    // A counter that went down is a new engine: no span from it.
    return tokens > 0 && seconds >= 0 ? { at: now, seconds, tokens } : undefined;
  }
  if (e.generated !== undefined && prev?.generated !== undefined && dt > 0) {
    const tokens = e.generated - prev.generated;
    return tokens > 0 ? { at: now, seconds: e.running * dt, tokens } : undefined;
  }
  if (e.source === 'log' && e.rate !== undefined && e.rate > 0) return { at: now, seconds: e.running, tokens: e.rate };
  return undefined;
}

/** Seconds per token over the spans since `from`; undefined with too few tokens. */
export function windowRate(spans: readonly DecodeSpan[], from: number): number | undefined {
  let seconds = 0;
  let tokens = 0;
  for (const s of spans) {
    if (s.at <= from) continue;
    seconds += s.seconds;
    tokens += s.tokens;
  }
  return tokens >= MIN_TOKENS ? seconds / tokens : undefined;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}

/** `slower` (0.25) slower than the baseline: a quarter fewer tokens per second, each request. */
export const isSlow = (recent: number, baseline: number, slower: number): boolean =>
  recent > 0 && baseline > 0 && 1 / recent <= (1 - slower) / baseline;

const perSec = (spt: number) => {
  const r = 1 / spt;
  return r.toFixed(r < 10 ? 1 : 0);
};

/** `decoding 31% slower than usual: 13.9 tok/s a request, usually 20.1` */
export function slowText(recent: number, baseline: number): string {
  const pct = Math.round((1 - baseline / recent) * 100);
  return `decoding ${pct}% slower than usual: ${perSec(recent)} tok/s a request, usually ${perSec(baseline)}`;
}

export const speedText = (spt: number): string => `${perSec(spt)} tok/s a request`;
