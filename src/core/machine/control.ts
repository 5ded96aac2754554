// What operators and systemd ask for: a new config, a restart, a shutdown.
import { HANDOVER_EXIT, log, still, type Handler, type Input, type Step } from './handler.js';
import type { Action, EventOf } from '../model/events.js';
import { drainOf, reconcileNow } from './moves.js';
import { startPrepare } from './prepare.js';
import { onConfig } from './rollback.js';
import { containerOf, enter, isRunning, isWaiting, type State } from '../model/state.js';

export const configApplied: Handler<EventOf<'configApplied'>> = (s, ev, inp) => {
  const t = inp.settings;
  const renamed = ev.previous.name !== t.name;
  const specChanged = renamed || ev.previous.specHash !== t.specHash;
  const config = onConfig(s.history, t, specChanged);
  const base: State = { ...s, configError: undefined, history: config.history };
  const said = renamed
    ? [
        log(
          'warn',
          'config-reloaded',
          `container.name changed from ${ev.previous.name} to ${t.name}; the old container is stopped (not removed)`,
        ),
      ]
    : [];
  const r = applied(s, base, ev, inp, renamed, specChanged);
  return { state: r.state, actions: [...said, ...config.said, ...r.actions] };
};

function applied(
  s: State,
  base: State,
  ev: EventOf<'configApplied'>,
  inp: Input,
  renamed: boolean,
  specChanged: boolean,
): Step {
  const t = inp.settings;
  // A spent restart budget is lifted by any config change: the operator has looked.
  if (base.phase === 'failed') {
    const fresh: State = { ...base, history: { ...base.history, failures: [], restarts: 0 } };
    const r = reconcileNow(fresh, inp, base.stopFirst);
    const m = `${ev.what ?? `config ${ev.file}`} reloaded: the restart budget is lifted; starting ${t.name}`;
    return { state: r.state, actions: [log('info', 'config-reloaded', m), ...r.actions] };
  }
  // A pull of an image no longer wanted stops; the next reconcile pulls the new one.
  const abort: Action[] = s.pull?.active && s.pull.image !== t.image ? [{ type: 'abortPull' }] : [];
  const what = ev.what ?? `config ${ev.file}`;
  if (!specChanged) {
    const applied = log(
      'info',
      'config-reloaded',
      `${what} reloaded: supervisor settings applied, container untouched`,
    );
    // A wait on files, memory, the port or the token re-checks under the new settings at once.
    if (isWaiting(s) && s.wait.reason !== 'docker' && s.wait.reason !== 'image') {
      const r = reconcileNow(base, inp);
      return { state: r.state, actions: [applied, ...abort, ...r.actions] };
    }
    return { state: base, actions: [applied, ...abort] };
  }
  // Make before break: the old container serves while the new spec is pulled and checked.
  if (isRunning(base) && !renamed) {
    const m = `${what} reloaded: the container spec changed; preparing the new one while ${t.name} serves on`;
    const r = startPrepare(base, inp, log('info', 'config-reloaded', m));
    return { state: r.state, actions: [...abort, ...r.actions] };
  }
  const msg = `${what} reloaded: the container spec changed; recreating ${t.name} (graceful stop first)`;
  const reloaded = log('info', 'config-reloaded', msg);
  // Waiting for Docker re-checks with the new spec on its own; any other wait may be what the edit fixes.
  if (isWaiting(s, 'docker')) return { state: base, actions: [reloaded, ...abort] };
  // A new name would leave the old container holding the port: stop it first.
  const r = reconcileNow(base, inp, renamed ? containerOf(s) : undefined, renamed);
  return { state: r.state, actions: [reloaded, ...abort, ...r.actions] };
}

export const configRejected: Handler<EventOf<'configRejected'>> = (s, ev) => ({
  state: { ...s, configError: ev.error },
  actions: [log('error', 'config-rejected', `config rejected, still running on the last good one: ${ev.error}`)],
});

export const shutdown: Handler<EventOf<'shutdown'>> = (s, ev, inp) => {
  const { now, settings: t } = inp;
  const stopping = log('info', 'supervisor-stopping', `received ${ev.signal}`);
  if (ev.handover) {
    const why = `handing over: container ${t.name} left as it is for the next supervisor to adopt`;
    const exit = { type: 'exit', code: HANDOVER_EXIT } as const;
    return {
      state: enter(s, { phase: 'stopped' }, now),
      actions: [stopping, log('info', 'supervisor-stopped', why), exit],
    };
  }
  const id = containerOf(s);
  if (t.stopOnExit && id) {
    const drain = drainOf(s, t);
    return {
      state: enter(s, { phase: 'stopping' }, now),
      actions: [stopping, { type: 'stopContainer', id, timeout: t.stopTimeout, ...(drain ? { drain } : {}) }],
    };
  }
  const why = t.stopOnExit
    ? 'no container to stop'
    : `leaving container ${t.name} running (container.stopOnExit is false)`;
  const said = log('info', 'supervisor-stopped', `stopped: ${why}`);
  return { state: enter(s, { phase: 'stopped' }, now), actions: [stopping, said, { type: 'exit', code: 0 }] };
};

export const containerStopped: Handler<EventOf<'containerStopped'>> = (s, _ev, inp) => {
  if (s.phase !== 'stopping') return still(s);
  const said = log('info', 'supervisor-stopped', `stopped container ${inp.settings.name}`);
  return { state: enter(s, { phase: 'stopped' }, inp.now), actions: [said, { type: 'exit', code: 0 }] };
};

export const restartRequested: Handler<EventOf<'restartRequested'>> = (s, ev, inp) => {
  // Through the same graceful path as any restart; not a failure, so no backoff and no count.
  if (isWaiting(s, 'docker')) {
    return {
      state: s,
      actions: [log('warn', 'job-skipped', `restart asked by ${ev.by}: not now, waiting for Docker`)],
    };
  }
  // An operator's restart also lifts a spent restart budget; the spec on trial is theirs to watch (no rollback).
  const trial =
    s.history.trial?.spec === inp.settings.specHash ? { ...s.history.trial, operator: true } : s.history.trial;
  const history = { ...s.history, ...(trial ? { trial } : {}) };
  const base: State =
    s.phase === 'failed' ? { ...s, history: { ...history, failures: [], restarts: 0 } } : { ...s, history };
  const r = reconcileNow(base, inp, containerOf(s), true);
  const msg = `restarting ${inp.settings.name}, as asked by ${ev.by} (graceful stop first)`;
  return { state: r.state, actions: [log('info', 'container-restarting', msg, { reason: 'requested' }), ...r.actions] };
};
