// The container's life as Docker tells it: boot, what is seen, reconciles and their failures, Docker itself.
import { log, still, type Handler, type Step, type Input } from './handler.js';
import type { EventOf, Seen } from '../model/events.js';
import { DIAGNOSIS_LINES, exitTail, TAIL_LINES } from '../rules/exit-tail.js';
import { newLoad } from './load.js';
import { trialOf } from './rollback.js';
import { blockOn, diagnoseWith, exitText, fail, reconcileNow, restartPhase, waitFor } from './moves.js';
import {
  common,
  enter,
  isRestarting,
  isRunning,
  isWaiting,
  type Owed,
  type Probes,
  type RunningState,
  type State,
} from '../model/state.js';

export const newProbes = (now: number): Probes => ({
  live: false,
  ready: false,
  servedOnce: false,
  failures: 0,
  deepFailures: 0,
  due: { startup: now },
  inflight: {},
});

export const boot: Handler<EventOf<'boot'>> = (s, ev, inp) => {
  const p = ev.persisted;
  const t = inp.settings;
  const look = { type: 'observe' } as const;
  if (!p) return { state: s, actions: [look] };
  // A record describes one container (name and spec); for any other it says nothing.
  const owner = p.container;
  if (owner && (owner.name !== t.name || owner.spec !== t.configSpec)) {
    const why =
      owner.name !== t.name
        ? `container ${owner.name}`
        : `an earlier spec of ${owner.name} (${owner.spec.slice(0, 12)})`;
    const msg = `the state record is about ${why}, not this one: restart counts start from zero`;
    // The config changed while the supervisor was down: the specs that served are still good, and
    // the new one is on trial.
    const kept = owner.name === t.name && p.good ? { good: p.good } : {};
    const trial = trialOf(kept, t.specHash);
    const history = { ...s.history, ...kept, ...(trial ? { trial } : {}) };
    return { state: { ...s, history }, actions: [log('info', 'state-record', msg), look] };
  }
  const { restartAt, failedUntil, container: _c, ...history } = p;
  // Given up before this supervisor started, and still inside the window: still given up.
  if (failedUntil !== undefined && failedUntil > inp.now && t.budget)
    return { state: enter({ ...s, history }, { phase: 'failed', until: failedUntil }, inp.now), actions: [] };
  const owed: Owed | undefined = restartAt === undefined ? undefined : { at: restartAt };
  return {
    state: { ...common(s), history, phase: 'starting', resync: true, ...(owed ? { owed } : {}) },
    actions: [look],
  };
};

/** A state that decides from scratch at the next look: boot, or Docker lost or back. */
function resyncing(s: State): boolean {
  return (s.phase === 'starting' && s.resync) || (isWaiting(s) && s.wait.resync === true);
}

function owedOf(s: State): Owed | undefined {
  if (s.phase === 'starting') return s.owed;
  if (isWaiting(s)) return s.wait.owed;
  return undefined;
}

export const observed: Handler<EventOf<'observed'>> = (s, ev, inp) => {
  const { now } = inp;
  const seen = ev.seen;
  if (resyncing(s)) {
    // Boot or Docker back: a running container is handed to reconcile (which adopts it when
    // its spec is right); a pending backoff from before is honoured; anything else starts now.
    // An answer while waiting for Docker is Docker back, whether the event stream said so or a re-check found it.
    const back = isWaiting(s, 'docker')
      ? [log('info', 'docker-back', 'the Docker engine is back; looking at the container')]
      : [];
    const owed = owedOf(s);
    if (seen.kind !== 'running' && owed && owed.at > now) {
      return { state: enter(s, { phase: restartPhase(s, inp.settings), restart: owed }, now), actions: back };
    }
    const r = reconcileNow(s, inp);
    return { state: r.state, actions: [...back, ...r.actions] };
  }
  if (!isRunning(s)) return still(s);
  return seenWhileRunning(s, seen, inp);
};

function seenWhileRunning(s: RunningState, seen: Seen, inp: Input): Step {
  const { now, settings: t } = inp;
  const run = s.run;
  if (seen.kind === 'running') {
    // Someone replaced our container behind our back: take whatever is there now.
    if (seen.id !== run.containerId) return reconcileNow(s, inp);
    // Started again behind our back (`docker restart`): a new load, with its own budget, not a failure.
    if (seen.startedAt > run.startedAt + 1000) {
      const next = enter(
        s,
        { phase: 'loading', run: { ...run, startedAt: seen.startedAt, probes: newProbes(now), load: newLoad(now) } },
        now,
      );
      const msg = `container ${t.name} was restarted outside the supervisor; following its new start`;
      return {
        state: next,
        actions: [log('warn', 'container-started', msg, { containerId: seen.id, outcome: 'restarted outside' })],
      };
    }
    return still(s);
  }
  if (seen.kind === 'absent') {
    return fail(s, inp, `container ${t.name} was removed`, {
      cause: 'removed',
      exit: { code: null, oom: false, tail: [] },
    });
  }
  if (seen.id !== run.containerId) return reconcileNow(s, inp);
  const lines = exitTail(seen.exit.tail, DIAGNOSIS_LINES);
  const exit = { ...seen.exit, tail: lines.slice(-TAIL_LINES) };
  const d = diagnoseWith(t, { exitCode: exit.code, oom: exit.oom, lines, kernel: exit.kernel });
  if (d.waitFor) return blockOn(s, inp, d, exit);
  // The exit text already says "OOM-killed"; an unrecognised failure has nothing to add.
  const known = d.code !== 'unknown' && d.code !== 'oom-killed';
  const cause = known ? `${exitText(exit)}, ${d.code}` : exitText(exit);
  return fail(s, inp, `container exited (${exitText(exit)})`, {
    cause,
    exit,
    ...(d.code === 'unknown' ? {} : { diagnosis: d }),
  });
}

export const reconciled: Handler<EventOf<'reconciled'>> = (s, ev, inp) => {
  const { now, settings: t } = inp;
  // An adopted container may have started hours ago: its start-up budget runs from now, or
  // one slow probe right after a supervisor restart would count as a failed start.
  const startedAt = ev.outcome === 'adopted' ? now : ev.startedAt;
  const run = {
    containerId: ev.id,
    startedAt,
    probes: newProbes(now),
    // An adopted container's load began before this look: its phases are not known.
    ...(ev.outcome === 'adopted' ? {} : { load: newLoad(now) }),
    ...(ev.inputs ? { inputs: ev.inputs } : {}),
    ...(ev.upstream ? { upstream: ev.upstream } : {}),
    ...(ev.spec ? { spec: ev.spec } : {}),
    ...(ev.memAvailable === undefined ? {} : { memBefore: ev.memAvailable }),
  };
  const base = { ...s, lastContainer: ev.id, ...(s.pull ? { pull: { ...s.pull, failures: 0 } } : {}) };
  const next = enter(base, { phase: 'loading', run }, now);
  const fields = { containerId: ev.id, outcome: ev.outcome };
  const msg = `container ${t.name} ${ev.outcome} (${ev.id.slice(0, 12)}): ${ev.reason}`;
  return { state: next, actions: [log('info', 'container-started', msg, fields)] };
};

export const reconcileFailed: Handler<EventOf<'reconcileFailed'>> = (s, ev, inp) => {
  const t = inp.settings;
  if (ev.kind === 'engine') return waitFor(s, inp, 'docker', ev.message);
  if (ev.kind === 'image') return imageMissing(s, inp);
  const d = diagnoseWith(t, { exitCode: null, oom: false, lines: [ev.message] });
  if (d.code !== 'unknown' && d.waitFor) return blockOn(s, inp, d, undefined);
  const diagnosis = d.code === 'unknown' ? {} : { diagnosis: d };
  return fail(s, inp, `could not start the container: ${ev.message}`, { cause: 'start failed', ...diagnosis });
};

/** The image is not on this host: pull it (once), and wait for the pull's own outcome. */
function imageMissing(s: State, inp: Input): Step {
  const { now, settings: t } = inp;
  const pulling = s.pull?.active === true && s.pull.image === t.image;
  const failures = s.pull?.image === t.image ? s.pull.failures : 0;
  const pull = pulling && s.pull ? s.pull : { image: t.image, active: true, failures, loggedAt: now };
  const detail = pulling && isWaiting(s, 'image') ? s.wait.detail : `pulling ${t.image}`;
  const r = waitFor({ ...s, pull }, inp, 'image', detail, undefined, pulling ? [] : [{ type: 'pull', image: t.image }]);
  if (!isWaiting(r.state)) return r;
  // The pull's own outcome decides the next step, not the re-check.
  const { recheckAt: _r, ...wait } = r.state.wait;
  return { state: { ...r.state, wait }, actions: r.actions };
}

export const prereqMissing: Handler<EventOf<'prereqMissing'>> = (s, ev, inp) =>
  waitFor(s, inp, ev.waitFor, ev.message, ev.fix);

export const engineLost: Handler<EventOf<'engineLost'>> = (s, ev, inp) => {
  const { now, settings: t } = inp;
  if (isWaiting(s, 'docker'))
    return { state: { ...s, wait: { ...s.wait, recheckAt: s.wait.recheckAt ?? now + t.recheck } }, actions: [] };
  // The event watcher says when Docker is back; the re-check covers a lost answer with the stream up.
  const owed = isRestarting(s) ? s.restart : owedOf(s);
  const wait = {
    reason: 'docker' as const,
    detail: ev.message,
    recheckAt: now + t.recheck,
    resync: true,
    ...(owed ? { owed } : {}),
  };
  const next = enter(s, { phase: 'waiting', wait }, now);
  return {
    state: next,
    actions: [log('warn', 'docker-lost', `lost the Docker engine (${ev.message}); waiting for it to come back`)],
  };
};

export const engineBack: Handler<EventOf<'engineBack'>> = (s) => {
  // The stream was down a while: whatever happened meanwhile (an exit) is seen by looking.
  if (!isWaiting(s, 'docker')) return { state: s, actions: [{ type: 'observe' }] };
  // The observation that follows says "back" (it may also come from a re-check first).
  const { recheckAt: _r, ...wait } = s.wait;
  return { state: { ...s, wait: { ...wait, resync: true } }, actions: [{ type: 'observe' }] };
};
