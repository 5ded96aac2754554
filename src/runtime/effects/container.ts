// The container effects: look at it (observe) and make it exist and run as desired (reconcile).
import type { Event, Release, Seen } from '../../core/events.js';
import { TAIL_READ } from '../../core/exit-tail.js';
import type { ExitInfo, RunInputs } from '../../core/state.js';
import { kernelMessages, wantsKernel } from '../../systemd/kernel-log.js';
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
  return {
    type: 'observed',
    seen: { kind: 'exited', id, exit: await withKernel({ code, oom, tail: log.split('\n') }) },
  };
}

/** How far back the kernel's messages can explain an exit (an Xid comes a little before the crash). */
const KERNEL_WINDOW_MS = 2 * 60_000;

/** An exit the kernel may explain (killed, OOM, a CUDA error) gets the kernel's messages of the last minutes. */
async function withKernel(exit: ExitInfo): Promise<ExitInfo> {
  if (!wantsKernel(exit.code, exit.oom, exit.tail.join('\n'))) return exit;
  const now = Date.now();
  const kernel = await kernelMessages(now - KERNEL_WINDOW_MS, now);
  return kernel.length ? { ...exit, kernel } : exit;
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
  const exit = { code: c.State.ExitCode, oom: c.State.OOMKilled, tail: log.split('\n') };
  return { kind: 'exited', id: c.Id, exit: await withKernel(exit) };
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
export async function reconcile(
  ctx: ReconcileContext,
  stopFirst: string | undefined,
  release?: Release,
): Promise<Event> {
  const { engine, desired, log } = ctx;
  const { spec, token, settings, config } = desired;
  let encodings: string | undefined;
  try {
    if (stopFirst) await engine.stop(stopFirst, settings.stopTimeout);
    // The wait for the memory runs from the stop, when the supervisor stopped the last run itself.
    const rel = release && stopFirst ? { ...release, since: ctx.now() } : release;
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
          reclaim: true,
          ...(rel ? { release: rel } : {}),
          now: () => ctx.now(),
        });
        const mem = facts.gpuMemory;
        if (mem && mem.status !== 'unknown' && mem.reclaimed) log.log('info', `gpu memory: ${mem.reclaimed}`);
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

/**
 * Make before break: is the new spec ready to start, with the old container still running? The image
 * is here, and every pre-start check that does not depend on the old container passes (the GPU
 * memory it holds, and the port it publishes under our name, are checked after its stop).
 */
export async function prepareSpec(ctx: ReconcileContext, spec: string): Promise<Event> {
  const { engine, desired } = ctx;
  const { config } = desired;
  try {
    if (!(await engine.imageExists(config.container.image))) return { type: 'prepared', spec, ok: false, pull: true };
    await preflight({
      config: { ...config, gpu: { ...config.gpu, checkMemory: false } },
      engine,
      tokenSource: desired.tokenSource,
      encodings: ctx.encodings,
      gpuRuntime: false,
      now: () => ctx.now(),
    });
    return { type: 'prepared', spec, ok: true };
  } catch (err) {
    if (err instanceof PrereqMissing) {
      const r = err.result;
      return { type: 'prepared', spec, ok: false, message: r.detail, ...(r.fix ? { fix: r.fix } : {}) };
    }
    if (err instanceof EngineUnreachable) return { type: 'engineLost', message: err.message };
    return { type: 'prepared', spec, ok: false, message: (err as Error).message };
  }
}
