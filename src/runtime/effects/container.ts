// The container effects: look at it (observe) and make it exist and run as desired (reconcile).
import type { Event, Seen } from '../../core/events.js';
import { TAIL_READ } from '../../core/exit-tail.js';
import type { RunInputs } from '../../core/state.js';
import { tokenFingerprint } from '../../container/token-env.js';
import { convergeContainer } from '../../docker/converge.js';
import type { ContainerEngine } from '../../docker/engine-api.js';
import { EngineUnreachable, ImageMissing } from '../../docker/errors.js';
import type { Logger } from '../../log/logger.js';
import { encodingsFingerprint, preflight, PrereqMissing } from '../../preflight/gather.js';
import type { Desired } from '../desired.js';
import type { EncodingsCache } from './encodings.js';

/**
 * An exit, from Docker's die event and the log: no inspect, which Docker answers only once it has
 * finished with the exit (~100 ms after the event): the restart begins that much sooner.
 */
export async function exitFromEvent(engine: ContainerEngine, id: string, code: number, oom: boolean): Promise<Event> {
  const log = await engine.logTail(id, TAIL_READ).catch(() => '');
  return { type: 'observed', seen: { kind: 'exited', id, exit: { code, oom, tail: log.split('\n') } } };
}

/** What Docker says about the container now: an `observed` event, or `engineLost` when it does not answer. */
export async function look(engine: ContainerEngine, name: string): Promise<Event> {
  try {
    return { type: 'observed', seen: await seen(engine, name) };
  } catch (err) {
    // Either way the machine must hear of it: waiting for Docker re-checks on its own.
    const message = err instanceof EngineUnreachable ? err.message : `inspecting ${name}: ${(err as Error).message}`;
    return { type: 'engineLost', message };
  }
}

async function seen(engine: ContainerEngine, name: string): Promise<Seen> {
  const c = await engine.inspect(name);
  if (!c) return { kind: 'absent' };
  if (c.State.Running) return { kind: 'running', id: c.Id, startedAt: Date.parse(c.State.StartedAt) };
  // No log (a log driver without reads, a race with removal) is no reason to miss the exit.
  const log = await engine.logTail(c.Id, TAIL_READ).catch(() => '');
  return { kind: 'exited', id: c.Id, exit: { code: c.State.ExitCode, oom: c.State.OOMKilled, tail: log.split('\n') } };
}

export interface ReconcileContext {
  engine: ContainerEngine;
  desired: Desired;
  log: Logger;
  encodings: EncodingsCache;
  /** Look at Docker's GPU support too (a warning only). */
  gpuRuntime: boolean;
  /** Says a preflight warning, once. */
  warnOnce(msg: string): void;
  now(): number;
}

/** One reconcile pass (stopping `stopFirst` first), as the event that says how it went. */
export async function reconcile(ctx: ReconcileContext, stopFirst: string | undefined): Promise<Event> {
  const { engine, desired, log } = ctx;
  const { spec, token, settings, config } = desired;
  let encodings: string | undefined;
  try {
    if (stopFirst) await engine.stop(stopFirst, settings.stopTimeout);
    const res = await convergeContainer(engine, spec, token, {
      stopTimeoutMs: settings.stopTimeout,
      // A recreate stops the old container first (up to stopTimeout): say so before, not after.
      onPlan: (outcome, reason) =>
        log.log(
          outcome === 'recreated' ? 'info' : 'debug',
          `${spec.name}: ${outcome === 'recreated' ? 'recreating' : outcome}: ${reason}`,
        ),
      beforeStart: async () => {
        const { results, facts } = await preflight({
          config,
          engine,
          tokenSource: desired.tokenSource,
          encodings: ctx.encodings,
          gpuRuntime: ctx.gpuRuntime,
        });
        for (const r of results)
          if (r.status === 'warn') ctx.warnOnce(`${r.id}: ${r.detail}${r.fix ? `; ${r.fix}` : ''}`);
        encodings = encodingsFingerprint(facts.encodings?.files ?? []);
      },
    });
    // Adopted (nothing started): the files it runs with are, as far as anyone can tell, today's.
    encodings ??= encodingsFingerprint(await ctx.encodings.facts(config.paths.encodings, config.encodings.verify));
    const inputs: RunInputs = { model: config.model.id };
    const fp = tokenFingerprint(token);
    if (fp) inputs.token = fp;
    if (encodings) inputs.encodings = encodings;
    // Docker's StartedAt is a moment before start returns: now is as good, and saves an inspect.
    return { type: 'reconciled', id: res.id, outcome: res.outcome, reason: res.reason, startedAt: ctx.now(), inputs };
  } catch (err) {
    if (err instanceof PrereqMissing) {
      const r = err.result;
      return {
        type: 'prereqMissing',
        waitFor: r.waitFor ?? 'config',
        message: r.detail,
        ...(r.fix ? { fix: r.fix } : {}),
      };
    }
    const kind = err instanceof EngineUnreachable ? 'engine' : err instanceof ImageMissing ? 'image' : 'docker';
    return { type: 'reconcileFailed', kind, message: (err as Error).message };
  }
}
