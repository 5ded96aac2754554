// The moves every handler makes: start a reconcile, fail into backoff, wait for what a restart cannot fix.
import { formatDuration as fmt } from '../rules/duration.js';
import type { Settings } from '../model/settings.js';
import { backoffDelay } from '../rules/backoff.js';
import { diagnose } from '../rules/diagnose.js';
import type { Diagnosis, WaitReason } from '../model/diagnosis.js';
import { log, type Input, type Step } from './handler.js';
import type { Action, DiagnosisRecord, ExitInfo, History, RunInputs } from '../model/events.js';
import { enter, isRunning, isWaiting, persisted, type Failure, type Phase, type State } from '../model/state.js';
import { CREDENTIAL_WAITS, waitLabel } from '../rules/wait.js';

/** The inputs a start would use now: the model and a fingerprint of the token. */
export function currentInputs(t: Settings): RunInputs {
  return t.tokenFingerprint ? { model: t.modelId, token: t.tokenFingerprint } : { model: t.modelId };
}

/** In a credential wait, with the token and model.id still the ones Hugging Face refused. */
export function refusedAgain(s: State, t: Settings): boolean {
  if (!isWaiting(s) || !CREDENTIAL_WAITS.has(s.wait.reason) || !s.wait.blocked) return false;
  const { blocked } = s.wait;
  return blocked.token === t.tokenFingerprint && blocked.model === t.modelId;
}

/**
 * Start a reconcile now (phase starting), stopping `stopFirst` first; never with inputs that were
 * refused. `planned`: an operator's or the config's stop of a run that serves: the gate drains first.
 */
export function reconcileNow(s: State, inp: Input, stopFirst?: string, planned = false): Step {
  if (refusedAgain(s, inp.settings)) return { state: s, actions: [] };
  const drain = planned ? drainOf(s, inp.settings) : undefined;
  return withReconcile(enter(s, { phase: 'starting', resync: false }, inp.now), inp, stopFirst, drain);
}

/** How long the gate drains before a planned stop of this run: only a run that served, only with a gate. */
export function drainOf(s: State, t: Settings): number | undefined {
  const ms = t.gate?.drainTimeout;
  return ms && isRunning(s) && s.run.probes.servedOnce ? ms : undefined;
}

/**
 * A reconcile, with the last run's memory to wait for when it ended lately (gpu.releaseTimeout), and
 * Docker's GPU support looked at on the first one only (a warning: a start without it is diagnosed).
 */
export function withReconcile(s: State, inp: Input, stopFirst?: string, drain?: number): Step {
  const t = inp.settings;
  const e = s.ended;
  const g = t.memoryGuard;
  // With the guard on, memory the last run did not give back is looked for after the wait too.
  const stuck =
    g && e?.availableBefore !== undefined
      ? { availableBefore: e.availableBefore, stuckBytes: g.stuckThreshold }
      : undefined;
  const window =
    t.releaseTimeout > 0 && (stopFirst !== undefined || (e !== undefined && inp.now - e.at < t.releaseTimeout));
  const release =
    e && (window || stuck)
      ? { since: e.at, container: stopFirst ?? e.container, timeout: t.releaseTimeout, ...stuck }
      : undefined;
  const action: Action = {
    type: 'reconcile',
    ...(stopFirst ? { stopFirst } : {}),
    ...(release ? { release } : {}),
    ...(s.runtimeLooked ? {} : { gpuRuntime: true }),
    ...(drain ? { drain } : {}),
  };
  return { state: s.runtimeLooked ? s : { ...s, runtimeLooked: true }, actions: [action] };
}

export function exitText(e: ExitInfo | undefined): string {
  if (!e) return '';
  const code = e.code === null ? 'container removed' : `exit ${e.code}`;
  return e.oom ? `${code}, OOM-killed` : code;
}

export interface FailOptions {
  cause: string;
  exit?: ExitInfo;
  /** The container to stop before the restart: it failed its probes but still runs. */
  stillRunning?: string;
  diagnosis?: Diagnosis;
}

/** What the rollback check hears of a failure: the diagnosis's words where there is one. */
const failureOf = (reason: string, opts: FailOptions): Failure => ({
  summary: opts.diagnosis?.summary ?? reason,
  code: opts.diagnosis?.code ?? 'unknown',
  blocking: false,
});

/** A run failed: count it, pick the delay, and wait in backoff (or crash loop). */
export function fail(s: State, inp: Input, reason: string, opts: FailOptions): Step {
  const { now, settings: t } = inp;
  const b = t.budget;
  const failures = b ? [...(s.history.failures ?? []).filter((x) => x > now - b.window), now] : undefined;
  if (b && failures && failures.length > b.count) return budgetSpent(s, inp, reason, opts, failures);
  const restarts = s.history.restarts + 1;
  const delay = backoffDelay(restarts, t.backoff, inp.random);
  const phase = restarts >= t.crashLoopAfter ? 'crashloop' : 'backoff';
  const said = diagnosisLog(s, opts.diagnosis, now);
  const history = {
    ...guardKept(s.history, opts.diagnosis),
    restarts,
    totalRestarts: s.history.totalRestarts + 1,
    lastFailure: reason,
    cause: opts.cause,
  };
  if (opts.exit) history.lastExit = opts.exit;
  if (said.record) history.diagnosis = said.record;
  if (failures) history.failures = failures;
  const restart = opts.stillRunning ? { at: now + delay, stopFirst: opts.stillRunning } : { at: now + delay };
  const next = { ...enter({ ...s, history }, { phase, restart }, now), failure: failureOf(reason, opts) };
  const msg =
    `${reason}; restart ${restarts} in ` +
    `${fmt(delay)}${phase === 'crashloop' ? ' (crash loop)' : ''}${lastLines(opts.exit)}`;
  const fields: Record<string, unknown> = { restartCount: restarts, delayMs: delay, state: phase };
  if (opts.exit) {
    fields['exitCode'] = opts.exit.code;
    fields['oomKilled'] = opts.exit.oom;
  }
  if (opts.diagnosis) fields['diagnosis'] = opts.diagnosis.code;
  const level = phase === 'crashloop' ? 'error' : 'warn';
  return { state: next, actions: [...said.actions, log(level, 'restart-scheduled', msg, fields), persist(next, t)] };
}

/** One failure more than restart.budget allows: give up (state `failed`) until the window lets one more. */
function budgetSpent(s: State, inp: Input, reason: string, opts: FailOptions, failures: number[]): Step {
  const { now, settings: t } = inp;
  const b = t.budget!;
  const said = diagnosisLog(s, opts.diagnosis, now);
  const history = { ...guardKept(s.history, opts.diagnosis), lastFailure: reason, cause: opts.cause, failures };
  if (opts.exit) history.lastExit = opts.exit;
  if (said.record) history.diagnosis = said.record;
  // The next restart is allowed when the oldest failure in the window has left it.
  const until = (failures[failures.length - b.count - 1] ?? now) + b.window;
  const next = {
    ...enter(
      { ...s, history },
      { phase: 'failed', until, ...(opts.stillRunning ? { stopFirst: opts.stillRunning } : {}) },
      now,
    ),
    failure: failureOf(reason, opts),
  };
  const msg =
    `${reason}; restart budget spent (${b.count} restarts within ${fmt(b.window)}): not restarting ` +
    `${t.name} until the config changes, \`gptoss-supervisor restart\`, or ${fmt(until - now)} from now`;
  const fields = {
    state: 'failed',
    budgetCount: b.count,
    budgetWindowMs: b.window,
    ...(opts.diagnosis ? { diagnosis: opts.diagnosis.code } : {}),
  };
  return { state: next, actions: [...said.actions, log('error', 'restart-budget', msg, fields), persist(next, t)] };
}

/**
 * The lines that say what went wrong, when there are any: stderr and stdout interleave loosely
 * in Docker's log, so the very last lines may be a banner printed just before.
 */
function lastLines(exit: ExitInfo | undefined): string {
  const tail = exit?.tail ?? [];
  const notable = tail.filter((l) => /\b(error|exception|traceback|fatal|failed|killed)\b/i.test(l));
  const shown = (notable.length ? notable : tail).slice(-3);
  return shown.length ? `; last log: ${shown.join(' | ')}` : '';
}

export const persist = (s: State, t: Settings): Action => ({ type: 'persist', record: persisted(s, t) });

/** The memory guard's kills in a row: kept only through another of its kills (any other failure breaks the row). */
function guardKept(h: History, d: Diagnosis | undefined): History {
  if (d?.code === 'host-memory-pressure' || !h.guardKills) return h;
  const { guardKills: _g, ...rest } = h;
  return rest;
}

/**
 * The diagnosis of a failure, said once at priority err (journalctl -p err), and again only
 * when it changes: a crash loop repeats its restart line, not the explanation.
 */
function diagnosisLog(
  s: State,
  d: Diagnosis | undefined,
  now: number,
): { record?: DiagnosisRecord; actions: Action[] } {
  if (!d) return { actions: [] };
  const record: DiagnosisRecord = { code: d.code, summary: d.summary, remedy: d.remedy, at: now };
  const before = s.history.diagnosis;
  if (before?.code === d.code && before.summary === d.summary) return { record, actions: [] };
  const evidence = (d as { evidence?: string }).evidence;
  const msg = `diagnosis ${d.code}: ${d.summary}; fix: ${d.remedy}${evidence ? `; log: ${evidence}` : ''}`;
  return { record, actions: [log('error', 'diagnosis', msg, { diagnosis: d.code })] };
}

/** Diagnoses a failure with the settings the remedies quote. */
export function diagnoseWith(
  t: Settings,
  f: { exitCode: number | null; oom: boolean; lines: readonly string[]; kernel?: readonly string[] | undefined },
) {
  const { kernel, ...rest } = f;
  return diagnose({
    ...rest,
    ...(kernel ? { kernel } : {}),
    utilization: t.utilization,
    maxModelLen: t.maxModelLen,
    port: t.port,
    encodingsDir: t.encodingsDir,
    modelId: t.modelId,
    image: t.image,
  });
}

/** How often each wait is re-checked; undefined: only a change (config, files, the token) ends it. */
function recheckOf(what: WaitReason, t: Settings, blocked: RunInputs | undefined): number | undefined {
  if (what === 'config') return undefined;
  // The refused token and model are only worth trying again when one of them changes.
  if (blocked && CREDENTIAL_WAITS.has(what)) return undefined;
  // Only a new runtime and a Docker restart fix this one; the restart is seen by itself.
  if (what === 'gpu-runtime') return t.gpuRuntimeRecheck;
  // Memory comes back within seconds of a run's end: look often, so the start is not late.
  if (what === 'gpu-release') return Math.min(t.recheck, 2000);
  return t.recheck;
}

/** A failure a restart cannot fix: wait for what can, without a restart loop. */
export function blockOn(s: State, inp: Input, d: Diagnosis, exit: ExitInfo | undefined): Step {
  const { now, settings: t } = inp;
  const what = d.waitFor ?? 'config';
  const said = diagnosisLog(s, d, now);
  const blocked = CREDENTIAL_WAITS.has(what)
    ? ((isRunning(s) ? s.run.inputs : undefined) ?? currentInputs(t))
    : undefined;
  // The files looked right to the preflight, yet vLLM could not load them (a mount, a format):
  // only a change of the files or the config ends this wait, not a timer that would restart it.
  const every = what === 'encodings' ? undefined : recheckOf(what, t, blocked);
  const history = { ...guardKept(s.history, d), lastFailure: d.summary, cause: d.code };
  if (said.record) history.diagnosis = said.record;
  if (exit) history.lastExit = exit;
  const wait = {
    reason: what,
    detail: d.summary,
    ...(every === undefined ? {} : { recheckAt: now + every }),
    ...(blocked ? { blocked } : {}),
  };
  const failure = { summary: d.summary, code: d.code, blocking: true };
  const next = { ...enter({ ...s, history }, { phase: 'waiting', wait }, now), failure };
  const waiting = isWaiting(s, what)
    ? []
    : [
        log('warn', 'waiting', `waiting for ${waitLabel(what)}: ${d.summary}; not restarting until it changes`, {
          diagnosis: d.code,
        }),
      ];
  return { state: next, actions: [...said.actions, ...waiting, persist(next, t)] };
}

/** A prerequisite is missing: wait for it, re-checked each period; one line when the wait begins. */
export function waitFor(
  s: State,
  inp: Input,
  what: WaitReason,
  detail: string,
  fix?: string,
  extra: Action[] = [],
): Step {
  const { now, settings: t } = inp;
  if (isWaiting(s, what)) {
    const every = recheckOf(what, t, s.wait.blocked);
    const { recheckAt: _r, ...rest } = s.wait;
    return {
      state: { ...s, wait: { ...rest, detail, ...(every === undefined ? {} : { recheckAt: now + every }) } },
      actions: extra,
    };
  }
  const every = recheckOf(what, t, undefined);
  const next = enter(
    s,
    { phase: 'waiting', wait: { reason: what, detail, ...(every === undefined ? {} : { recheckAt: now + every }) } },
    now,
  );
  // Memory no process holds needs a person (a reboot): said once at priority err.
  const level = what === 'stuck-memory' ? 'error' : 'warn';
  const line = log(level, 'waiting', `waiting for ${waitLabel(what)}: ${detail}${fix ? `; fix: ${fix}` : ''}`, {
    waitingFor: what,
  });
  return { state: next, actions: [line, ...extra] };
}

/** Backoff or crash loop, by the restarts in a row. */
export function restartPhase(s: State, t: Settings): Extract<Phase, 'backoff' | 'crashloop'> {
  return s.history.restarts >= t.crashLoopAfter ? 'crashloop' : 'backoff';
}
