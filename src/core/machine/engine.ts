// The engine behind /health: its load from vLLM's metrics, and a stall (requests in, no tokens out) as a failure.
import type { EngineSample, EventOf } from '../model/events.js';
import { type EngineWatch, isRunning, type RunningState } from '../model/state.js';
import { formatDuration as fmt } from '../rules/duration.js';
import { quoteLine } from '../rules/log-lines.js';
import type { Diagnosis } from '../model/diagnosis.js';
import { log, still, type Handler, type Input, type Step } from './handler.js';
import { decodeSampled } from './decode.js';
import { diagnoseWith, fail, persist } from './moves.js';

const busy = (e: EngineSample) => e.running + e.waiting > 0;

function progressed(prev: EngineSample | undefined, e: EngineSample): boolean {
  if (!busy(e)) return true;
  if (e.source === 'log') return (e.rate ?? 0) > 0;
  if (e.generated === undefined) return true; // nothing to judge by: never a stall
  // A counter that went down is a new engine: that is not a stall either.
  return prev?.generated === undefined || e.generated !== prev.generated;
}

function rateOf(prev: (EngineSample & { at: number }) | undefined, e: EngineSample, now: number): number | undefined {
  if (e.rate !== undefined) return e.rate;
  if (!prev || prev.generated === undefined || e.generated === undefined || now <= prev.at) return undefined;
  const d = e.generated - prev.generated;
  return d >= 0 ? (d * 1000) / (now - prev.at) : undefined;
}

/** The stall, in figures, for the log, the status and the diagnosis. */
function stallText(e: EngineSample, idleFor: number): string {
  const counter = e.generated !== undefined ? ` (generated tokens stuck at ${e.generated})` : '';
  const kv = e.kvCache !== undefined ? `, KV cache ${(e.kvCache * 100).toFixed(1)}%` : '';
  return (
    `${e.running} requests running and ${e.waiting} waiting${kv}, but no token generated for ` +
    `${fmt(idleFor)}${counter}`
  );
}

/** A sample of the engine's load: remembered, and a stall that lasts past the window restarts the container. */
export function engineProbed(s: RunningState, ev: EventOf<'probed'>, inp: Input): Step {
  const { now, settings: t } = inp;
  const e = ev.sample;
  if (!e) return still(s);
  const prev = s.run.engine;
  const moved = progressed(prev?.last, e);
  const rate = rateOf(prev?.last, e, now);
  const watch: EngineWatch = {
    last: { ...e, at: now },
    progressAt: moved || !prev ? now : prev.progressAt,
    stalls: 0,
    ...(rate !== undefined ? { tokensPerSec: rate } : {}),
  };
  const idleFor = now - watch.progressAt;
  // Decode speed against the spec's baseline (health.slow), from the same look.
  const d = decodeSampled(s, e, inp);
  const run = { ...s.run, engine: watch, ...(d ? { decode: d.decode } : {}) };
  const looked: RunningState = { ...s, run, ...(d ? { history: d.history } : {}) };
  const noted = d ? [...d.actions, ...(d.save ? [persist(looked, t)] : [])] : [];
  if (moved || t.stallWindow === 0 || idleFor < t.stallWindow) return { state: looked, actions: noted };
  watch.stalls = (prev?.stalls ?? 0) + 1;
  const next = looked;
  const what = `engine stalled (${watch.stalls} of ${t.stallFailureThreshold}): ${stallText(e, idleFor)}`;
  const said = log('warn', 'health-failed', what, { stalls: watch.stalls, running: e.running, waiting: e.waiting });
  if (watch.stalls < t.stallFailureThreshold) return { state: next, actions: [...noted, said] };
  const diagnosis: Diagnosis = {
    code: 'engine-stalled',
    summary: `vLLM's engine stopped producing tokens while /health said 200: ${stallText(e, idleFor)}`,
    remedy:
      'restarted automatically; if it repeats, look for a hung request or a GPU fault (`docker logs`, ' +
      '`journalctl -k`), or lower model.maxModelLen',
  };
  const f = fail(next, inp, `${what}; restarting the container`, {
    cause: 'engine-stalled',
    stillRunning: s.run.containerId,
    diagnosis,
  });
  return { state: f.state, actions: [said, ...f.actions] };
}

/** The engine's load in a few words for the status line: `2 running, 1 waiting, KV 41%, 38 tok/s`. */
export function engineLoadText(w: EngineWatch | undefined): string | undefined {
  if (!w) return undefined;
  const e = w.last;
  const parts = [`${e.running} running`, `${e.waiting} waiting`];
  if (e.kvCache !== undefined) parts.push(`KV cache ${Math.round(e.kvCache * 100)}%`);
  if (w.tokensPerSec !== undefined) parts.push(`${w.tokensPerSec.toFixed(w.tokensPerSec < 10 ? 1 : 0)} tok/s`);
  return parts.join(', ');
}

/**
 * A line of the running container's log: the engine is dead (restart now, not after three probe
 * failures; /health of some images keeps answering 200), or vLLM was given a variable it ignores.
 */
export const engineLog: Handler<EventOf<'engineLog'>> = (s, ev, inp) => {
  if (ev.epoch !== s.epoch || !isRunning(s)) return still(s);
  // The image sets some VLLM_* variables of its own (VLLM_BUILD_*, VLLM_IMAGE_TAG): not the operator's.
  if (ev.kind === 'unknown-env' && !inp.settings.envNames.includes(ev.line)) return still(s);
  if (ev.kind === 'unknown-env') {
    const msg =
      `vLLM does not know the environment variable ${ev.line} (it is ignored): a typo in container.env, or a ` +
      'variable of another vLLM version?';
    return { state: s, actions: [log('warn', 'engine-warning', msg, { variable: ev.line })] };
  }
  // The root cause is usually printed above the line that says the engine is dead.
  const found = diagnoseWith(inp.settings, { exitCode: null, oom: false, lines: [...(ev.context ?? []), ev.line] });
  // The line is the container's: quoted (240 characters at most), never whole.
  const quoted = quoteLine(ev.line);
  const { waitFor: _w, ...diagnosis } =
    found.code === 'unknown'
      ? { ...found, code: 'engine-dead' as const, summary: `vLLM's engine died: ${quoted}` }
      : found;
  return fail(s, inp, `vLLM's engine died while its container runs on (${quoted})`, {
    cause: `engine-dead${diagnosis.code === 'engine-dead' ? '' : `, ${diagnosis.code}`}`,
    stillRunning: s.run.containerId,
    diagnosis,
  });
};
