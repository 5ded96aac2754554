// Make before break: a new container spec is prepared (image pulled, checks run) while the old container serves.
import { isRunning, type Prepare, type RunningState, type State } from '../model/state.js';
import { formatDuration as fmt } from '../rules/duration.js';
import { backoffDelay } from '../rules/backoff.js';
import { log, still, type Handler, type Input, type Step } from './handler.js';
import type { Action, EventOf, PullSummary } from '../model/events.js';
import { reconcileNow } from './moves.js';
import { describePull } from '../rules/pull-text.js';

const withPrepare = (s: RunningState, prepare: Prepare | undefined): RunningState => {
  const { prepare: _p, ...run } = s.run;
  return { ...s, run: prepare ? { ...run, prepare } : run };
};

/** A spec change while a container runs: prepare the new one first; the old one serves until it is ready. */
export function startPrepare(s: RunningState, inp: Input, said: Action): Step {
  const t = inp.settings;
  const prepare: Prepare = { spec: t.specHash, detail: 'checking the new spec', pullFailures: 0 };
  return { state: withPrepare(s, prepare), actions: [said, { type: 'prepare', spec: t.specHash }] };
}

/** The prepare under way for the spec in force, if any. */
export function preparing(s: State, spec: string): (RunningState & { run: { prepare: Prepare } }) | undefined {
  if (!isRunning(s) || s.run.prepare?.spec !== spec) return undefined;
  return s as RunningState & { run: { prepare: Prepare } };
}

export const prepared: Handler<EventOf<'prepared'>> = (s, ev, inp) => {
  const { now, settings: t } = inp;
  const r = preparing(s, t.specHash);
  if (!r || ev.spec !== t.specHash) return still(s);
  const p = r.run.prepare;
  if (ev.ok) {
    const go = reconcileNow(withPrepare(r, undefined), inp, undefined, true);
    const msg = `the new spec of ${t.name} is ready (image present, checks passed): recreating it now`;
    return {
      state: go.state,
      actions: [log('info', 'container-restarting', msg, { reason: 'spec changed' }), ...go.actions],
    };
  }
  if (ev.pull) {
    const pulling = s.pull?.active === true && s.pull.image === t.image;
    const pull = pulling && s.pull ? s.pull : { image: t.image, active: true, failures: 0, loggedAt: now };
    const next = withPrepare({ ...r, pull }, { ...p, detail: `pulling ${t.image}`, refused: undefined });
    delete next.run.prepare?.retryAt;
    return { state: next, actions: pulling ? [] : [{ type: 'pull', image: t.image }] };
  }
  return refuse(r, inp, ev.message ?? 'a check failed', ev.fix, t.recheck);
};

/** The new spec cannot start now: the old container serves on; looked at again after `after`. */
function refuse(
  r: RunningState & { run: { prepare: Prepare } },
  inp: Input,
  why: string,
  fix: string | undefined,
  after: number,
): Step {
  const p = r.run.prepare;
  const said =
    p.refused === why
      ? []
      : [
          log(
            'error',
            'config-rejected',
            `the new container spec cannot start: ${why}${fix ? `; fix: ${fix}` : ''}; the old container keeps ` +
              `serving (checked again every ${fmt(after)} and at each change)`,
          ),
        ];
  const next = withPrepare(r, { ...p, detail: 'refused', refused: why, retryAt: inp.now + after });
  return { state: next, actions: said };
}

/** Pull progress of the new image, for the status line. */
export function preparePullProgress(s: State, inp: Input, image: string, summary: PullSummary): Step | undefined {
  const r = preparing(s, inp.settings.specHash);
  if (!r || image !== inp.settings.image) return undefined;
  return still(withPrepare(r, { ...r.run.prepare, detail: `pulling ${image}: ${describePull(summary)}` }));
}

/** The new image arrived: run the checks, then recreate. */
export function preparePulled(s: State, inp: Input, image: string): Step | undefined {
  const t = inp.settings;
  const r = preparing(s, t.specHash);
  if (!r || image !== t.image) return undefined;
  const next = withPrepare({ ...r, pull: undefined }, { ...r.run.prepare, detail: 'checking the new spec' });
  return {
    state: next,
    actions: [log('info', 'image-pulled', `pulled ${image}`), { type: 'prepare', spec: t.specHash }],
  };
}

/** The new image could not be pulled: refused for now, tried again with backoff. */
export function preparePullFailed(s: State, inp: Input, image: string, message: string): Step | undefined {
  const t = inp.settings;
  const r = preparing(s, t.specHash);
  if (!r || image !== t.image) return undefined;
  const n = r.run.prepare.pullFailures + 1;
  const base = { ...r, ...(s.pull ? { pull: { ...s.pull, active: false, failures: n } } : {}) };
  const delay = backoffDelay(n, t.backoff, inp.random);
  const withCount = withPrepare(base, { ...r.run.prepare, pullFailures: n });
  return refuse(withCount as typeof r, inp, `pulling ${image} failed (${message})`, undefined, delay);
}

/** A refused spec is looked at again when its time comes. */
export function prepareTick(s: RunningState, inp: Input): Step | undefined {
  const p = s.run.prepare;
  if (!p?.retryAt || inp.now < p.retryAt) return undefined;
  const next = withPrepare(s, { ...p, retryAt: undefined });
  delete next.run.prepare?.retryAt;
  return { state: next, actions: [{ type: 'prepare', spec: p.spec }] };
}

/** `preparing: pulling IMAGE: 3.1 of 9.8 GB; still serving the old container` */
export function prepareText(p: Prepare): string {
  if (p.refused) return `new spec refused: ${p.refused}`;
  return `preparing: ${p.detail}; still serving the old container`;
}
