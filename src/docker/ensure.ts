// Carries out a reconcile pass against the engine: look, plan, act; look again when raced.
import { sameSpec, sameToken } from '../container/same.js';
import type { ContainerSpec } from '../container/spec.js';
import { planReconcile, type Observation, type Outcome, type Step } from '../supervisor/reconcile.js';
import type { Engine } from './engine.js';
import { DockerFailed, Raced } from './errors.js';

export interface EnsureResult {
  outcome: Outcome;
  id: string;
  reason: string;
}

export interface EnsureOptions {
  stopTimeoutMs: number;
  /** Told each plan before it is carried out. */
  onPlan?: (outcome: Outcome, reason: string) => void;
  /**
   * Runs right before a container is created or started, after any stop: the preflight checks.
   * It throws to start nothing. Adopting a running container never calls it.
   */
  beforeStart?: () => Promise<void>;
}

const MAX_ROUNDS = 8;

export async function observe(engine: Engine, spec: ContainerSpec, token: string | undefined): Promise<Observation & { inspectedId?: string }> {
  const c = await engine.inspect(spec.name);
  if (!c) return { kind: 'absent' };
  const quick = sameSpec(spec, c);
  const comparison = quick.same ? quick : sameSpec(spec, c, await engine.imageEnv(c.Image));
  return { kind: 'present', id: c.Id, running: c.State.Running, comparison, tokenSame: sameToken(c, token) };
}

/**
 * Makes exactly one container named `spec.name` exist and run with `spec`. Docker's unique names
 * make a second create fail; whoever loses a race looks again and adopts what the winner made.
 */
export async function ensureContainer(engine: Engine, spec: ContainerSpec, token: string | undefined, opts: EnsureOptions): Promise<EnsureResult> {
  let first: { outcome: Outcome; reason: string } | undefined;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const obs = await observe(engine, spec, token);
    const plan = planReconcile(obs);
    if (plan.steps.length === 0) {
      const id = obs.kind === 'present' ? obs.id : '';
      return first ? { ...first, id } : { outcome: plan.outcome, reason: plan.reason, id };
    }
    opts.onPlan?.(plan.outcome, plan.reason);
    first ??= { outcome: plan.outcome, reason: plan.reason };
    try {
      const id = await run(engine, spec, plan.steps, opts);
      return { ...first, id };
    } catch (err) {
      if (!(err instanceof Raced)) throw err;
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 200));
    }
  }
  throw new DockerFailed('reconcile', undefined, `another process kept changing container ${spec.name}; is a second supervisor running?`);
}

async function run(engine: Engine, spec: ContainerSpec, steps: Step[], opts: EnsureOptions): Promise<string> {
  let created = '';
  let checked = false;
  for (const step of steps) {
    if ((step.op === 'create' || step.op === 'start') && !checked) {
      checked = true;
      await opts.beforeStart?.();
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
