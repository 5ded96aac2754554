// One reconcile pass, decided: what to do with whatever holds the container name now.
import type { Upstream } from '../model/door.js';

export interface Comparison {
  same: boolean;
  /** Human-readable differences, desired first: `Cmd: --gpu-memory-utilization 0.8 (want 0.85)`. */
  differences: string[];
  /** True when the label hash matched, so the field walk was skipped. */
  byLabel: boolean;
  /**
   * Wanted cache mounts (paths.cache) the container lacks: not drift by themselves (a running model
   * is not restarted for a warmer next start); they come with the next recreate.
   */
  deferred?: string[];
}

export type Observation =
  | { kind: 'absent' }
  | {
      kind: 'present';
      id: string;
      running: boolean;
      comparison: Comparison;
      tokenSame: boolean;
      /** The ID of the image it runs. */
      imageId?: string;
      /** Where it answers on the host, as it is published. */
      published?: Upstream;
    };

export type Step =
  { op: 'create' } | { op: 'start'; id: string } | { op: 'stop'; id: string } | { op: 'remove'; id: string };

export type Outcome = 'adopted' | 'started' | 'created' | 'recreated';

export interface Plan {
  outcome: Outcome;
  /** One line for the log: why these steps. */
  reason: string;
  steps: Step[];
}

export function planReconcile(obs: Observation): Plan {
  if (obs.kind === 'absent') {
    return {
      outcome: 'created',
      reason: 'no container with this name',
      steps: [{ op: 'create' }, { op: 'start', id: '' }],
    };
  }
  const { id, running, comparison, tokenSame } = obs;
  const replace = (reason: string): Plan => ({
    outcome: 'recreated',
    reason,
    steps: [
      ...(running ? [{ op: 'stop' as const, id }] : []),
      { op: 'remove', id },
      { op: 'create' },
      { op: 'start', id: '' },
    ],
  });
  if (!comparison.same) return replace(`spec differs: ${comparison.differences.join('; ')}`);
  if (running) {
    // A running container with the right spec is adopted as is, even with an older token:
    // the model is loaded, and a restart would cost minutes of service for nothing.
    const later = comparison.deferred?.length
      ? `; kept as it is until the next recreate (${comparison.deferred.join('; ')})`
      : '';
    return {
      outcome: 'adopted',
      reason: `${comparison.byLabel ? 'spec hash matches' : 'spec matches field by field'}${later}`,
      steps: [],
    };
  }
  // Stopped: a recreate costs nothing more than a start, and the next load finds the caches.
  if (comparison.deferred?.length) return replace(`stopped, and without ${comparison.deferred.join('; ')}`);
  if (!tokenSame) return replace('stopped, and the HF token changed since it was created');
  return { outcome: 'started', reason: 'stopped with the desired spec', steps: [{ op: 'start', id }] };
}
