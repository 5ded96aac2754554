// The container effects: look at it (observe) and make it exist and run as desired (reconcile).
import type { Action, Event, ExitInfo, RunInputs, Seen } from '../../core/model/events.js';
import type { RanSpec } from '../../core/model/rollback.js';
import { specSourceOf } from '../../config/spec-source.js';
import type { CheckResult } from '../../core/rules/checks.js';
import { TAIL_READ } from '../../core/rules/exit-tail.js';
import { kernelMessages, wantsKernel } from '../../systemd/kernel-log.js';
import { tokenFingerprint } from '../../container/token-env.js';
import { convergeContainer, type ConvergeResult } from '../../docker/converge.js';
import type { ContainerEngine } from '../../docker/engine-api.js';
import { EngineUnreachable, ImageMissing } from '../../docker/errors.js';
import { probeHost } from '../../health/probe.js';
import { memAvailableNow } from '../../gpu/host-memory.js';
import type { Logger } from '../../log/logger.js';
import { encodingsFingerprint, preflight } from '../../preflight/gather.js';
import type { Desired } from '../../desired/desired.js';
import type { EncodingsCache } from './encodings.js';

/** What the container effects work with: the engine, the config in force, the clock. */
export interface EffectContext {
  engine: ContainerEngine;
  desired: () => Desired;
  log: Logger;
  encodings: EncodingsCache;
  now: () => number;
  /** Preflight warnings already said: each is said once, not at every start. */
  warned: Set<string>;
}

/**
 * An exit, from Docker's die event and the log: no inspect, which Docker answers only once it has
 * finished with the exit (~100 ms after the event): the restart begins that much sooner.
 */
export async function exitFromEvent(ctx: EffectContext, id: string, code: number, oom: boolean): Promise<Event> {
  const log = await ctx.engine.logTail(id, TAIL_READ).catch(() => '');
  return {
    type: 'observed',
    seen: { kind: 'exited', id, exit: await withKernel({ code, oom, tail: log.split('\n') }, ctx.now()) },
  };
}

/** How far back the kernel's messages can explain an exit (an Xid comes a little before the crash). */
const KERNEL_WINDOW_MS = 2 * 60_000;

/** An exit the kernel may explain (killed, OOM, a CUDA error) gets the kernel's messages of the last minutes. */
async function withKernel(exit: ExitInfo, now: number): Promise<ExitInfo> {
  if (!wantsKernel(exit.code, exit.oom, exit.tail.join('\n'))) return exit;
  const kernel = await kernelMessages(now - KERNEL_WINDOW_MS, now);
  return kernel.length ? { ...exit, kernel } : exit;
}

/** What Docker says about the container now: an `observed` event, or `engineLost` when it does not answer. */
export async function look(ctx: EffectContext): Promise<Event> {
  const name = ctx.desired().spec.name;
  try {
    return { type: 'observed', seen: await seen(ctx.engine, name, ctx.now()) };
  } catch (err) {
    // Either way the machine must hear of it: waiting for Docker re-checks on its own.
    const message = err instanceof EngineUnreachable ? err.message : `inspecting ${name}: ${(err as Error).message}`;
    return { type: 'engineLost', message };
  }
}

async function seen(engine: ContainerEngine, name: string, now: number): Promise<Seen> {
  const c = await engine.inspect(name);
  if (!c) return { kind: 'absent' };
  if (c.State.Running) return { kind: 'running', id: c.Id, startedAt: Date.parse(c.State.StartedAt) };
  // No log (a log driver without reads, a race with removal) is no reason to miss the exit.
  const log = await engine.logTail(c.Id, TAIL_READ).catch(() => '');
  const exit = { code: c.State.ExitCode, oom: c.State.OOMKilled, tail: log.split('\n') };
  return { kind: 'exited', id: c.Id, exit: await withKernel(exit, now) };
}

function warnOnce(ctx: EffectContext, msg: string): void {
  if (ctx.warned.has(msg)) return;
  ctx.warned.add(msg);
  ctx.log.log('warn', `preflight: ${msg}`);
}

const blocked = (r: CheckResult): Event => ({
  type: 'prereqMissing',
  waitFor: r.waitFor ?? 'config',
  message: r.detail,
  ...(r.fix ? { fix: r.fix } : {}),
});

/** A published address as a client on this host reaches it (all interfaces: through loopback). */
const reachable = (p: { host: string; port: number }) => ({ host: probeHost(p.host), port: p.port });

/** The event of a container that runs: what it runs with, where it answers, what it is. */
async function reconciled(
  ctx: EffectContext,
  desired: Desired,
  res: ConvergeResult,
  fingerprint: string | undefined,
  memAvailable: number | undefined,
): Promise<Event> {
  const { token, config } = desired;
  let encodings = fingerprint;
  // Adopted (nothing started): the files it runs with are, as far as anyone can tell, today's.
  encodings ??= encodingsFingerprint(await ctx.encodings.facts(config.paths.encodings, config.encodings.verify));
  const inputs: RunInputs = { model: config.model.id };
  const fp = tokenFingerprint(token);
  if (fp) inputs.token = fp;
  if (encodings) inputs.encodings = encodings;
  // Docker's StartedAt is a moment before start returns: now is as good, and saves an inspect.
  const startedAt = ctx.now();
  const upstream = reachable(res.published);
  const ran = res.imageId ? await ranSpec(ctx.engine, desired, res.imageId) : undefined;
  return {
    type: 'reconciled',
    id: res.id,
    outcome: res.outcome,
    reason: res.reason,
    startedAt,
    inputs,
    upstream,
    ...(ran ? { spec: ran } : {}),
    ...(memAvailable === undefined || res.outcome === 'adopted' ? {} : { memAvailable }),
  };
}

/** One reconcile pass (stopping `stopFirst` first), as the event that says how it went. */
export async function reconcile(ctx: EffectContext, a: Extract<Action, { type: 'reconcile' }>): Promise<Event> {
  const { engine, log } = ctx;
  const desired = ctx.desired();
  const { spec, token, settings, config } = desired;
  const { stopFirst, release } = a;
  let encodings: string | undefined;
  // MemAvailable right before the start: what the run's end should give back (the memory guard).
  let memAvailable: number | undefined;
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
        const { results, facts, blocker } = await preflight({
          config,
          engine,
          tokenSource: desired.tokenSource,
          encodings: ctx.encodings,
          gpuRuntime: a.gpuRuntime === true,
          reclaim: true,
          ...(rel ? { release: rel } : {}),
          now: ctx.now,
        });
        const mem = facts.gpuMemory;
        if (mem && mem.status !== 'unknown' && mem.reclaimed) log.log('info', `gpu memory: ${mem.reclaimed}`);
        for (const r of results)
          if (r.status === 'warn') warnOnce(ctx, `${r.id}: ${r.detail}${r.fix ? `; ${r.fix}` : ''}`);
        encodings = encodingsFingerprint(facts.encodings?.files ?? []);
        if (!blocker) memAvailable = memAvailableNow();
        return blocker;
      },
    });
    if ('held' in res) return blocked(res.held);
    return await reconciled(ctx, desired, res, encodings, memAvailable);
  } catch (err) {
    const kind = err instanceof EngineUnreachable ? 'engine' : err instanceof ImageMissing ? 'image' : 'docker';
    return { type: 'reconcileFailed', kind, message: (err as Error).message };
  }
}

/** The repository of an image reference: `nvcr.io/nvidia/vllm:25.09-py3` -> `nvcr.io/nvidia/vllm`. */
export function repoOf(image: string): string {
  const at = image.indexOf('@');
  const name = at >= 0 ? image.slice(0, at) : image;
  const colon = name.lastIndexOf(':');
  return colon > name.lastIndexOf('/') ? name.slice(0, colon) : name;
}

/**
 * What the container runs, for a rollback to bring back: its image by ID (a tag moved since does
 * not change it) and by the registry's digest where it was pulled.
 */
async function ranSpec(engine: ContainerEngine, desired: Desired, imageId: string): Promise<RanSpec> {
  const info = await engine.imageInfo(imageId).catch(() => undefined);
  const image = desired.config.container.image;
  const digest = image.includes('@sha256:') ? image : info?.repoDigests.find((d) => d.startsWith(`${repoOf(image)}@`));
  return {
    hash: desired.spec.hash,
    image,
    imageId,
    ...(digest ? { digest } : {}),
    source: specSourceOf(desired.config),
    ...(desired.restores ? { restores: desired.restores } : {}),
  };
}

/**
 * Make before break: is the new spec ready to start, with the old container still running? The image
 * is here, and every pre-start check that does not depend on the old container passes (the GPU
 * memory it holds, and the port it publishes under our name, are checked after its stop).
 */
export async function prepareSpec(ctx: EffectContext, spec: string): Promise<Event> {
  const { engine } = ctx;
  const desired = ctx.desired();
  const { config } = desired;
  try {
    if (!(await engine.imageExists(config.container.image))) return { type: 'prepared', spec, ok: false, pull: true };
    const { blocker: b } = await preflight({
      config: { ...config, gpu: { ...config.gpu, checkMemory: false } },
      engine,
      tokenSource: desired.tokenSource,
      encodings: ctx.encodings,
      gpuRuntime: false,
      now: ctx.now,
    });
    if (b) return { type: 'prepared', spec, ok: false, message: b.detail, ...(b.fix ? { fix: b.fix } : {}) };
    return { type: 'prepared', spec, ok: true };
  } catch (err) {
    if (err instanceof EngineUnreachable) return { type: 'engineLost', message: err.message };
    return { type: 'prepared', spec, ok: false, message: (err as Error).message };
  }
}
