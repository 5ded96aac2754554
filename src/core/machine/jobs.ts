// Scheduled jobs (deep probe, maintenance restart): they run only on a model that serves, one at a time.
import { formatDuration as fmt } from '../rules/duration.js';
import { log, type Handler, type Input, type Step } from './handler.js';
import type { EventOf } from '../model/events.js';
import { fail, persist, reconcileNow } from './moves.js';
import { onCanary } from './rollback.js';
import { isRunning, type RunningState, type State } from '../model/state.js';

const DAY = 24 * 60 * 60 * 1000;

export const scheduled: Handler<EventOf<'scheduled'>> = (s, ev, inp) => {
  const { now, settings: t } = inp;
  const job = ev.job;
  const skip = (why: string): Step => ({
    state: s,
    actions: [log('debug', 'job-skipped', `${job} skipped: ${why}`, { job })],
  });
  const up = s.phase === 'serving' || (job === 'deepProbe' && s.phase === 'unhealthy');
  if (!up || !isRunning(s)) return skip(`the model is ${s.phase}, not serving`);
  if (s.run.probes.inflight.deep) return skip('a deep probe is running');
  if (job === 'deepProbe') {
    const run = { ...s.run, probes: { ...s.run.probes, inflight: { ...s.run.probes.inflight, deep: true } } };
    return { state: { ...s, run }, actions: [{ type: 'probe', kind: 'deep', epoch: s.epoch, timeout: t.deepTimeout }] };
  }
  const last = s.history.lastMaintenance;
  if (last !== undefined && now - last < DAY)
    return skip(`the last one was ${fmt(now - last)} ago (at most one a day)`);
  const r = reconcileNow({ ...s, history: { ...s.history, lastMaintenance: now } }, inp, s.run.containerId, true);
  const msg = `planned maintenance restart of ${t.name} (schedule.maintenanceRestart; graceful stop first)`;
  return {
    state: r.state,
    actions: [log('info', 'container-restarting', msg, { reason: 'maintenance' }), persist(r.state, t), ...r.actions],
  };
};

/** A deep probe's result: remembered (and saved), and failures in a row restart the container. */
export function deepProbed(s: RunningState, ev: EventOf<'probed'>, inp: Input): Step {
  const { now, settings: t } = inp;
  const detail = ev.detail ?? ev.error ?? (ev.ok ? 'ok' : 'failed');
  const base: RunningState = { ...s, history: { ...s.history, lastDeep: { at: now, ok: ev.ok, detail } } };
  const probes = base.run.probes;
  if (ev.finding) {
    // The engine answered; gpt-oss's output parser did not cope with one reply. Said, not counted.
    const msg = `deep probe: ${detail} (a parser fault, not the engine: not counted toward a restart)`;
    return { state: base, actions: [log('warn', 'deep-probe', msg, { finding: ev.finding }), persist(base, t)] };
  }
  if (ev.ok) {
    const next: State = { ...base, run: { ...base.run, probes: { ...probes, deepFailures: 0 } } };
    return { state: next, actions: [log('debug', 'deep-probe', `deep probe passed: ${detail}`), persist(next, t)] };
  }
  const n = probes.deepFailures + 1;
  // A new spec's canary: one failure is enough (rollback.canaryWindow).
  const threshold = onCanary(s, t) ? 1 : t.deepFailureThreshold;
  const what = `deep probe failed (${n} of ${threshold}): ${detail}`;
  const said = log('warn', 'health-failed', what, { deepFailures: n });
  if (n >= threshold) {
    const f = fail(base, inp, `${what}; restarting the container`, {
      cause: `deep probe: ${detail}`,
      stillRunning: s.run.containerId,
    });
    return { state: f.state, actions: [said, ...f.actions] };
  }
  const next: State = { ...base, run: { ...base.run, probes: { ...probes, deepFailures: n } } };
  return { state: next, actions: [said, persist(next, t)] };
}
