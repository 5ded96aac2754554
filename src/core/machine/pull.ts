// Image pulls as the state machine sees them: progress worth showing, the outcome, what a failure means.
import { classifyPullError, describePull } from '../rules/pull-text.js';
import { formatDuration as fmt } from '../rules/duration.js';
import { backoffDelay } from '../rules/backoff.js';
import { log, still, type Handler } from './handler.js';
import type { EventOf } from '../model/events.js';
import { reconcileNow } from './moves.js';
import { preparePulled, preparePullFailed, preparePullProgress } from './prepare.js';
import { isWaiting, type State } from '../model/state.js';

/** Bytes move all the time: the status line follows at most once a second, unless a layer came or finished. */
const SHOW_EVERY_MS = 1000;
/** And the journal every 15 seconds. */
const LOG_EVERY_MS = 15_000;

const ours = (s: State, image: string) => s.pull?.image === image;

export const pullProgress: Handler<EventOf<'pullProgress'>> = (s, ev, inp) => {
  const { now, settings: t } = inp;
  const pull = s.pull;
  if (!pull || !ours(s, ev.image)) return still(s);
  const prep = preparePullProgress(s, inp, ev.image, ev.summary);
  if (prep) return prep;
  const layers = `${ev.summary.layers}/${ev.summary.layersDone}`;
  if (pull.shownAt !== undefined && now - pull.shownAt < SHOW_EVERY_MS && layers === pull.layers) return still(s);
  const text = describePull(ev.summary);
  const logNow = now - pull.loggedAt >= LOG_EVERY_MS;
  const next: State = { ...s, pull: { ...pull, shownAt: now, layers, loggedAt: logNow ? now : pull.loggedAt } };
  const shown = isWaiting(next, 'image')
    ? { ...next, wait: { ...next.wait, detail: `pulling ${t.image}: ${text}` } }
    : next;
  return { state: shown, actions: logNow ? [log('info', 'waiting', `pulling ${ev.image}: ${text}`)] : [] };
};

export const pulled: Handler<EventOf<'pulled'>> = (s, ev, inp) => {
  if (!ours(s, ev.image)) return still(s);
  const prep = preparePulled(s, inp, ev.image);
  if (prep) return prep;
  const base: State = { ...s, pull: undefined };
  if (!isWaiting(base, 'image')) return still(base);
  const r = reconcileNow(base, inp);
  const msg = `pulled ${ev.image}${ev.summary ? ` (${describePull(ev.summary)})` : ''}`;
  return { state: r.state, actions: [log('info', 'image-pulled', msg), ...r.actions] };
};

export const pullFailed: Handler<EventOf<'pullFailed'>> = (s, ev, inp) => {
  const { now, settings: t } = inp;
  if (!s.pull || !ours(s, ev.image)) return still(s);
  const prep = ev.aborted ? undefined : preparePullFailed(s, inp, ev.image, ev.message);
  if (prep) return prep;
  const pull = { ...s.pull, active: false };
  const base: State = { ...s, pull };
  if (ev.aborted || !isWaiting(base, 'image')) return still(base);
  const n = pull.failures + 1;
  const kind = classifyPullError(ev.message);
  // A registry that is down or unreachable comes back; a wrong name or refused credentials need a person.
  const delay = kind === 'network' ? backoffDelay(n, t.backoff, inp.random) : t.pullRetry;
  const registry = t.image.split('/')[0];
  const why =
    kind === 'not-found'
      ? `${t.image} does not exist in its registry (${ev.message}); check container.image`
      : kind === 'auth'
        ? `the registry refused access to ${t.image} (${ev.message}); run \`docker login ${registry}\` as root ` +
          `(container.registryAuth)`
        : `pulling ${t.image} failed (${ev.message})`;
  const wait = { ...base.wait, detail: `${why}; next try in ${fmt(delay)}`, recheckAt: now + delay };
  const level = kind === 'network' ? 'warn' : 'error';
  const msg = `image pull failed (attempt ${n}): ${why}; next try in ${fmt(delay)}`;
  return {
    state: { ...base, pull: { ...pull, failures: n }, wait },
    actions: [log(level, 'waiting', msg, { pullFailure: kind })],
  };
};
