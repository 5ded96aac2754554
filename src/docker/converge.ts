// Carries out a reconcile pass against the engine: look, plan, act; look again when raced.
import { publishedOf, sameSpec, sameToken } from '../container/same.js';
import type { ContainerSpec } from '../container/spec.js';
import type { Upstream } from '../core/model/door.js';
import { backoffDelay } from '../core/rules/backoff.js';
import { planReconcile, type Observation, type Outcome, type Step } from '../core/rules/plan.js';
import type { ContainerEngine } from './engine-api.js';
import { DockerFailed, Raced } from './errors.js';

export interface ConvergeResult {
  outcome: Outcome;
  id: string;
  reason: string;
  /** Where the container answers on the host (an adopted one keeps its own port). */
  published: Upstream;
  /** The ID of the image it runs; undefined when Docker could not say. */
  imageId?: string;
}

export interface ConvergeOptions<B> {
  stopTimeoutMs: number;
  /** Told each plan before it is carried out. */
  onPlan?: (outcome: Outcome, reason: string) => void;
  /**
   * Runs right before a container is created or started, after any stop: the preflight checks.
   * What it returns blocks the start (nothing is created or started); undefined lets it go on.
   * Adopting a running container never calls it.
   */
  beforeStart?: () => Promise<B | undefined>;
}

/** Converged, or held back by what `beforeStart` returned (only where there is a `beforeStart`). */
export type Converged<B> = [B] extends [never] ? ConvergeResult : ConvergeResult | { held: B };

const MAX_ROUNDS = 8;
/** A lost race waits 50-250 ms before looking again, so two losers do not collide in step. */
const RACE_WAIT = { initialDelay: 150, multiplier: 1, maxDelay: 250, jitter: 2 / 3 };

export async function observe(
  engine: ContainerEngine,
  spec: ContainerSpec,
  token: string | undefined,
): Promise<Observation> {
  const c = await engine.inspect(spec.name);
  if (!c) return { kind: 'absent' };
  const quick = sameSpec(spec, c);
  const comparison = quick.same
    ? quick
    : sameSpec(spec, c, await engine.imageEnv(c.Image), (await engine.imageInfo(spec.body.Image))?.id);
  const published = publishedOf(c);
  return {
    kind: 'present',
    id: c.Id,
    running: c.State.Running,
    comparison,
    tokenSame: sameToken(c, token),
    imageId: c.Image,
    ...(published ? { published } : {}),
  };
}

/**
 * Makes exactly one container named `spec.name` exist and run with `spec`. Docker's unique names
 * make a second create fail; whoever loses a race looks again and adopts what the winner made
 * (and says so: an adopted container is a load it did not start).
 */
export async function convergeContainer<B = never>(
  engine: ContainerEngine,
  spec: ContainerSpec,
  token: string | undefined,
  opts: ConvergeOptions<B>,
): Promise<Converged<B>> {
  let lost = false;
  for (let round = 1; round <= MAX_ROUNDS; round++) {
    const obs = await observe(engine, spec, token);
    const plan = planReconcile(obs);
    if (plan.steps.length === 0) {
      const id = obs.kind === 'present' ? obs.id : '';
      const reason = lost ? `another process started it first (${plan.reason})` : plan.reason;
      const published = (obs.kind === 'present' && obs.published) || spec.published;
      const imageId = obs.kind === 'present' ? obs.imageId : undefined;
      return { outcome: plan.outcome, reason, id, published, ...(imageId ? { imageId } : {}) } as Converged<B>;
    }
    opts.onPlan?.(plan.outcome, plan.reason);
    try {
      const id = await run(engine, spec, plan.steps, opts);
      if (typeof id !== 'string') return id as Converged<B>;
      // One look at what runs: the image it runs, and a port left to Docker (known only once it runs).
      // Without the port nothing can reach it (an error is the reconcile's); the image ID is a bonus.
      const look = engine.inspect(id);
      const started = spec.published.port === 0 ? await look : await look.catch(() => undefined);
      const published = (spec.published.port === 0 && started && publishedOf(started)) || spec.published;
      return {
        outcome: plan.outcome,
        reason: lost ? `${plan.reason}, after a race with another process` : plan.reason,
        id,
        published,
        ...(started ? { imageId: started.Image } : {}),
      } as Converged<B>;
    } catch (err) {
      if (!(err instanceof Raced)) throw err;
      lost = true;
      await new Promise((r) => setTimeout(r, backoffDelay(round, RACE_WAIT, Math.random())));
    }
  }
  throw new DockerFailed(
    'reconcile',
    undefined,
    `another process kept changing container ${spec.name}; is a second supervisor running?`,
  );
}

/** Carries out the steps: the id of the container that runs, or what held the start back. */
async function run<B>(
  engine: ContainerEngine,
  spec: ContainerSpec,
  steps: Step[],
  opts: ConvergeOptions<B>,
): Promise<string | { held: B }> {
  let created = '';
  let checked = false;
  for (const step of steps) {
    if ((step.op === 'create' || step.op === 'start') && !checked) {
      checked = true;
      const held = await opts.beforeStart?.();
      if (held !== undefined) return { held };
    }
    switch (step.op) {
      case 'stop':
        await engine.stop(step.id, opts.stopTimeoutMs);
        break;
      case 'remove':
        await engine.remove(step.id);
        break;
      case 'create':
        created = await engine.create(spec);
        break;
      case 'start':
        await engine.start(step.id || created);
        created ||= step.id;
        break;
    }
  }
  return created;
}
