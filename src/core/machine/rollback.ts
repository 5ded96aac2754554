// Rollback: a new spec that cannot serve sends the model back to the last spec that served through
// its canary window, once per config change, and says so everywhere. The config file is never
// touched: the refused spec is remembered (its hash) until the config changes again.
import type { EventOf, History } from '../model/events.js';
import type { GoodSpec, RanSpec, Rollback, Trial } from '../model/rollback.js';
import { GOOD_KEPT, goodImage } from '../model/rollback.js';
import type { Settings } from '../model/settings.js';
import type { WaitReason } from '../model/diagnosis.js';
import { containerOf, isRunning, isWaiting, type Failure, type RunningState, type State } from '../model/state.js';
import { formatDuration as fmt } from '../rules/duration.js';
import { log, type Handler, type Input, type Step } from './handler.js';
import { persist, reconcileNow } from './moves.js';
import type { Action } from '../model/events.js';

/** Waits that mean the new spec itself cannot serve (not the host, the token or Docker): back at once. */
const SPEC_WAITS: ReadonlySet<WaitReason> = new Set(['config', 'model', 'encodings']);

/** The lines of a failure's own plan (a restart, a wait) that a rollback replaces. */
const REPLACED = new Set(['restart-scheduled', 'restart-budget', 'waiting']);

const short = (hash: string) => hash.slice(0, 12);

/** The good spec a run stands for: its own, or the one its rollback brings back. */
const keyOf = (r: RanSpec) => r.restores ?? r.hash;

/** The newest good spec other than `not`: where a rollback would go now. */
export function lastGood(h: Pick<History, 'good'>, not: string): GoodSpec | undefined {
  return h.good?.find((g) => g.hash !== not);
}

/**
 * A new spec in force (a config change, or one made while the supervisor was down): on trial, when a
 * good one is known.
 */
export function trialOf(h: Pick<History, 'good'>, spec: string): Trial | undefined {
  if (h.good?.some((g) => g.hash === spec) || !lastGood(h, spec)) return undefined;
  return { spec, failures: 0 };
}

/**
 * After every handler: a run that served through its canary window becomes the last known good; a
 * run that ended says how; a failure of the spec on trial may send the model back.
 */
export function afterStep(before: State, r: Step, inp: Input): Step {
  const failure = r.state.failure;
  let s = r.state;
  if (failure) {
    const { failure: _f, ...rest } = r.state;
    s = rest;
  }
  const promoted = promote(s, inp);
  const actions = promoted ? [...r.actions, ...promoted.actions] : r.actions;
  s = ended(before, promoted?.state ?? s, failure, inp.now);
  if (!failure) return s === r.state ? r : { state: s, actions };
  return onFailure(before, s, actions, failure, inp);
}

/** A run serving for rollback.canaryWindow proves its spec: it goes to the front of the good list. */
function promote(s: State, inp: Input): Step | undefined {
  const { now, settings: t } = inp;
  if (!isRunning(s) || s.phase !== 'serving' || !s.run.spec) return undefined;
  const since = s.run.probes.servingSince;
  if (since === undefined || now - since < t.rollback.canaryWindow) return undefined;
  // The canary's deep probe has the last word: proven only once it has answered.
  if (onCanary(s, t) && s.run.probes.inflight.deep) return undefined;
  const ran = s.run.spec;
  const key = keyOf(ran);
  const good = s.history.good ?? [];
  const had = good.find((g) => g.hash === key);
  if (had && had.provenAt >= s.run.startedAt && !had.ended) return undefined;
  const { restores: _r, ...spec } = ran;
  const entry: GoodSpec = had
    ? { ...had, imageId: ran.imageId, provenAt: now, servedAt: Math.min(had.servedAt, since) }
    : { ...spec, servedAt: since, provenAt: now };
  delete entry.ended;
  const list = [entry, ...good.filter((g) => g.hash !== key)].slice(0, GOOD_KEPT);
  const trial = s.history.trial?.spec === ran.hash ? undefined : s.history.trial;
  const history = { ...s.history, good: list, trial };
  if (!trial) delete history.trial;
  const next = { ...s, history };
  const msg = `spec ${short(key)} served for ${fmt(now - since)}: it is the last known good (rollback goes back to it)`;
  return { state: next, actions: [log('info', 'state-record', msg, { spec: key }), persist(next, t)] };
}

/** The run that served ended: its good spec says how, for `gptoss-supervisor history`. */
function ended(before: State, s: State, failure: Failure | undefined, now: number): State {
  if (!isRunning(before) || !before.run.spec) return s;
  if (isRunning(s) && s.run.containerId === before.run.containerId) return s;
  const key = keyOf(before.run.spec);
  const good = s.history.good;
  if (!good?.some((g) => g.hash === key && !g.ended)) return s;
  const how = failure
    ? `failed: ${failure.summary}`
    : s.phase === 'stopping' || s.phase === 'stopped'
      ? 'stopped with the supervisor'
      : 'replaced';
  const list = good.map((g) => (g.hash === key ? { ...g, ended: { at: now, how } } : g));
  return { ...s, history: { ...s.history, good: list } };
}

function onFailure(before: State, s: State, actions: Action[], failure: Failure, inp: Input): Step {
  const { settings: t } = inp;
  const h = s.history;
  const ran = isRunning(before) ? before.run.spec : undefined;
  const rb = h.rollback;
  // The good spec a rollback brought back fails too: the usual backoff, and the status says both failed.
  if (rb && (ran ? ran.restores === rb.to : t.configSpec === rb.from)) {
    if (rb.failedToo) return { state: s, actions };
    const next = { ...s, history: { ...h, rollback: { ...rb, failedToo: failure.summary } } };
    const msg =
      `the last good spec (${short(rb.to)}) fails too: ${failure.summary}; ` +
      `the refused one failed with: ${rb.because}`;
    return { state: next, actions: [...actions, log('error', 'rollback', msg, { diagnosis: failure.code })] };
  }
  const trial = h.trial;
  const spec = ran?.hash ?? t.specHash;
  if (!t.rollback.enabled || !trial || trial.spec !== spec || trial.operator) return { state: s, actions };
  const good = lastGood(h, spec);
  if (!good) return { state: s, actions };
  const served = isRunning(before) && before.run.probes.servedOnce;
  const blocked = failure.blocking && isWaiting(s) && SPEC_WAITS.has(s.wait.reason);
  // A wait on the host (memory, the port, the token): not the spec's fault, not counted.
  if (failure.blocking && !blocked) return { state: s, actions };
  const failures = trial.failures + (failure.blocking ? 0 : 1);
  const why = served
    ? 'failed its canary after serving'
    : blocked
      ? 'cannot serve'
      : failure.code === 'load-stalled'
        ? 'stalled while loading'
        : failures >= t.rollback.after
          ? `failed ${failures} starts`
          : undefined;
  if (!why) {
    // Counted: the record saved with the failure carries the count (a restart of the supervisor keeps it).
    const next = { ...s, history: { ...h, trial: { ...trial, failures } } };
    return { state: next, actions: [...actions.filter((a) => a.type !== 'persist'), persist(next, t)] };
  }
  const kept = actions.filter((a) => a.type !== 'persist' && !(a.type === 'log' && REPLACED.has(a.event)));
  const go = goBack(s, inp, good, failure.summary, failure.code ?? 'unknown', `the new spec (${short(spec)}) ${why}`);
  return { state: go.state, actions: [...kept, ...go.actions] };
}

/** Recreates the good spec (by its image's digest): the shell serves it while the rollback is in force. */
function goBack(
  s: State,
  inp: Input,
  good: GoodSpec,
  because: string,
  code: string,
  what: string,
  planned = false,
): Step {
  const { now, settings: t } = inp;
  const rollback: Rollback = { from: t.configSpec, to: good.hash, because, code, at: now };
  const { trial: _t, ...rest } = s.history;
  const history = { ...rest, rollback, restarts: 0 };
  const r = reconcileNow({ ...s, history }, inp, containerOf(s), planned);
  const msg =
    `rolling ${t.name} back to the last spec that served (${short(good.hash)}, image ${goodImage(good)}, proven ` +
    `${fmt(now - good.provenAt)} ago): ${what}: ${because}; ${t.configFile} is unchanged: edit it to try again`;
  const fields = { diagnosis: code, rolledBackFrom: rollback.from, rolledBackTo: good.hash };
  // An operator's rollback is no failure: said at warning, not err.
  const said = log(planned ? 'warn' : 'error', 'rollback', msg, fields);
  return { state: r.state, actions: [said, persist(r.state, t), ...r.actions] };
}

/** Why an operator's rollback cannot happen now; undefined: it can. */
export function cannotRollback(s: State, t: Settings): string | undefined {
  if (s.phase === 'stopping' || s.phase === 'stopped') return 'the supervisor is stopping';
  if (isWaiting(s, 'docker')) return 'waiting for Docker';
  const rb = s.history.rollback;
  if (rb) return `already rolled back to ${short(rb.to)} (edit the config to leave it)`;
  if (!lastGood(s.history, t.specHash)) return 'no other spec has served through its canary window';
  return undefined;
}

/** `gptoss-supervisor rollback`, D-Bus Rollback(): back to the newest good spec other than the one in force. */
export const rollbackRequested: Handler<EventOf<'rollbackRequested'>> = (s, ev, inp) => {
  const t = inp.settings;
  const no = cannotRollback(s, t);
  if (no) return { state: s, actions: [log('warn', 'job-skipped', `rollback asked by ${ev.by}: not now: ${no}`)] };
  const good = lastGood(s.history, t.specHash)!;
  return goBack(s, inp, good, `asked by ${ev.by}`, 'requested', 'an operator asked', true);
};

/**
 * A config in force: a rollback ends once the config asks for another spec than the refused one
 * (that edit is tried as usual); a new spec is on trial while a good one is known.
 */
export function onConfig(h: History, t: Settings, specChanged: boolean): { history: History; said: Action[] } {
  const rb = h.rollback;
  const over = rb !== undefined && rb.from !== t.configSpec;
  const { rollback: _r, trial: _t, ...rest } = h;
  const history: History = { ...rest, ...(rb && !over ? { rollback: rb } : {}) };
  const trial = specChanged && !(rb && !over) ? trialOf(h, t.specHash) : h.trial;
  if (trial) history.trial = trial;
  const said = over
    ? [log('info', 'rollback', `the config changed: the rollback to ${short(rb.to)} is over; trying the new spec`)]
    : [];
  return { history, said };
}

/** The status line's word on a rollback in force: `(rolled back: WHY; edit FILE to try again)`. */
export function rollbackText(s: State, t: Settings): string {
  const rb = s.history.rollback;
  if (!rb) return '';
  const too = rb.failedToo ? `; the last good spec fails too: ${rb.failedToo}` : '';
  return ` (rolled back: ${rb.because}${too}; edit ${t.configFile} to try again)`;
}

/** A trial run's first serving: one deep probe at once (the canary), its failure sends the model back. */
export function onCanary(s: RunningState, t: Settings): boolean {
  const trial = s.history.trial;
  return t.rollback.enabled && trial !== undefined && !trial.operator && trial.spec === s.run.spec?.hash;
}
