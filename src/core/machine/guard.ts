// The memory guard: a sample of the host's memory during a run, judged; under the floor (or under
// pressure twice in a row) the container is killed at once and the failure diagnosed.
import type { Action, EventOf } from '../model/events.js';
import type { MemorySample } from '../model/host.js';
import { isRunning, type RunningState } from '../model/state.js';
import { guardDiagnosis, judgeSample, type Verdict } from '../rules/memory-guard.js';
import { PHASE_LABEL } from '../rules/load-phases.js';
import { log, still, type Handler, type Input, type Step } from './handler.js';
import { blockOn, fail } from './moves.js';

export const memorySampled: Handler<EventOf<'memorySampled'>> = (s, ev, inp) => {
  const g = inp.settings.memoryGuard;
  if (!g || ev.epoch !== s.epoch || !isRunning(s)) return still(s);
  const was = s.run.pressureHigh ?? 0;
  const v = judgeSample(ev.sample, g, was);
  if (v.trip) return tripped(s, ev.sample, v, inp);
  // While loading, the lowest MemAvailable (the headroom the load left, said when it is over) and the
  // most the container held (what the load itself took, whatever else the host did meanwhile).
  const low = s.run.memLow;
  const next = s.phase === 'loading' ? extremes(low, ev.sample, v.floor) : low;
  const changed = next !== undefined && (next.available !== low?.available || next.container !== low.container);
  // Most samples change nothing: the state stays the same object (nothing to publish).
  if (v.pressureHigh === was && !changed) return still(s);
  return still({ ...s, run: { ...s.run, pressureHigh: v.pressureHigh, ...(changed ? { memLow: next } : {}) } });
};

type MemLow = NonNullable<RunningState['run']['memLow']>;

/** The load's extremes after a sample: the lowest MemAvailable, the most the container held. */
function extremes(low: MemLow | undefined, sample: MemorySample, floor: number): MemLow {
  const available = Math.min(sample.available, low?.available ?? Infinity);
  const container = Math.max(sample.cgroup ?? -1, low?.container ?? -1);
  return { available, floor, ...(container >= 0 ? { container } : {}) };
}

/** When the load is over: how close it came to the floor. */
export function headroomLine(s: RunningState): Action | undefined {
  const low = s.run.memLow;
  if (!low) return undefined;
  const gib = (b: number) => `${(b / 1024 ** 3).toFixed(1)} GiB`;
  const took = low.container !== undefined ? `; the container held ${gib(low.container)} at most` : '';
  const msg =
    `memory guard: the load left MemAvailable at ${gib(low.available)} at its lowest, ` +
    `${gib(low.available - low.floor)} over the floor of ${gib(low.floor)}${took}`;
  const fields = {
    lowestAvailableBytes: low.available,
    floorBytes: low.floor,
    ...(low.container !== undefined ? { peakContainerBytes: low.container } : {}),
  };
  return log('info', 'memory-guard', msg, fields);
}

/** Where the run was: `loading (compiling (torch.compile))`, `serving`. */
function phaseOf(s: RunningState): string {
  const l = s.run.load;
  return s.phase === 'loading' && l ? `loading (${PHASE_LABEL[l.phase]})` : s.phase;
}

function tripped(s: RunningState, sample: MemorySample, v: Verdict, inp: Input): Step {
  const t = inp.settings;
  const id = s.run.containerId;
  const prev = s.history.guardKills;
  const inARow = prev?.spec === t.specHash ? prev.count + 1 : 1;
  const trip = v.trip ?? 'floor';
  const d = guardDiagnosis({
    sample,
    floor: v.floor,
    trip,
    phase: phaseOf(s),
    pressureLimit: t.memoryGuard?.pressure ?? null,
    ...(s.run.memBefore === undefined ? {} : { memBefore: s.run.memBefore }),
    utilization: t.utilization,
    inARow,
  });
  const fields = {
    containerId: id,
    trip,
    availableBytes: sample.available,
    floorBytes: v.floor,
    ...(sample.pressure === undefined ? {} : { pressure: sample.pressure }),
    ...(sample.cgroup === undefined ? {} : { cgroupBytes: sample.cgroup }),
  };
  const said = log('error', 'memory-guard', `memory guard: killing ${t.name} (SIGKILL): ${d.summary}`, fields);
  const base: RunningState = { ...s, history: { ...s.history, guardKills: { spec: t.specHash, count: inARow } } };
  const r = d.waitFor
    ? blockOn(base, inp, d, undefined)
    : fail(base, inp, `the memory guard killed the container (${trip === 'floor' ? 'under the floor' : 'pressure'})`, {
        cause: 'host-memory-pressure',
        stillRunning: id,
        diagnosis: d,
      });
  return { state: r.state, actions: [{ type: 'killContainer', id }, said, ...r.actions] };
}
