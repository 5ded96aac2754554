// Which long-lived watchers the state needs now (Elm's subscriptions): the shell diffs the answer
// against what runs, starting and stopping watchers; it never decides what to watch itself.
import type { Settings } from '../model/settings.js';
import { isRunning, type State } from '../model/state.js';
import { SAMPLE_MS } from '../rules/memory-guard.js';

export type Subscription =
  /** Docker's event stream for the container's name (it says when Docker goes away and comes back). */
  | { kind: 'container-events'; name: string }
  /**
   * The run's output from `since` (ms): followed live (an attach, where progress bars move) while it
   * loads; through Docker's log once it serves (an attach held for days would tie its output to us).
   */
  | { kind: 'container-log'; id: string; epoch: number; live: boolean; since: number }
  /** The tiktoken files: appearing, replaced, removed. */
  | { kind: 'encodings'; dir: string; verify: boolean }
  /** The scheduled jobs' timers (they say "it is time"; the machine decides). */
  | { kind: 'jobs'; deepProbe: string | null; maintenanceRestart: string | null }
  /** The gate, the model's front door: its control connection (and, outside systemd, its process). */
  | { kind: 'gate'; host: string; port: number }
  /** gate.apiKeyFile, watched: the keys the gate asks for. */
  | { kind: 'api-keys'; file: string }
  /**
   * The memory guard's sampler: MemAvailable and PSI every `periodMs` (200 ms while the model loads, 1 s
   * while it serves), with what the run's container cgroup holds.
   */
  | { kind: 'memory-sampler'; periodMs: number; id: string; epoch: number }
  /** GPU telemetry while the model serves: one nvidia-smi query every `periodMs`. */
  | { kind: 'gpu-telemetry'; periodMs: number; epoch: number };

/** A watcher's identity: a subscription whose key is unchanged keeps its watcher as it is. */
export function subscriptionKey(s: Subscription): string {
  switch (s.kind) {
    case 'container-events':
      return `container-events ${s.name}`;
    case 'container-log':
      return `container-log ${s.id} ${s.epoch} ${s.live ? 'live' : 'docker'}`;
    case 'encodings':
      return `encodings ${s.dir} ${s.verify}`;
    case 'jobs':
      return `jobs ${s.deepProbe ?? '-'} ${s.maintenanceRestart ?? '-'}`;
    case 'gate':
      return `gate ${s.host}:${s.port}`;
    case 'api-keys':
      return `api-keys ${s.file}`;
    case 'memory-sampler':
      return `memory-sampler ${s.periodMs} ${s.id} ${s.epoch}`;
    case 'gpu-telemetry':
      return `gpu-telemetry ${s.periodMs} ${s.epoch}`;
  }
}

export function subscriptions(s: State, t: Settings): Subscription[] {
  // Stopped: supervision is over, nothing is watched.
  if (s.phase === 'stopped') return [];
  const subs: Subscription[] = [
    { kind: 'container-events', name: t.name },
    { kind: 'encodings', dir: t.encodingsDir, verify: t.verifyEncodings },
    { kind: 'jobs', ...t.jobs },
  ];
  // The gate outlives a stop of the model: clients keep hearing why it does not serve.
  if (t.gate) subs.push({ kind: 'gate', ...t.gate.listen });
  if (t.gate?.apiKeyFile) subs.push({ kind: 'api-keys', file: t.gate.apiKeyFile });
  if (isRunning(s)) {
    const live = s.phase === 'loading';
    // From the run's start while it loads (a line printed before the watch began is not missed);
    // from when it began serving afterwards (the start-up lines were heard live). A second of slack.
    const from = live ? s.run.startedAt : (s.run.probes.servingSince ?? s.since);
    subs.push({ kind: 'container-log', id: s.run.containerId, epoch: s.epoch, live, since: from - 1000 });
    if (t.memoryGuard) {
      const periodMs = live ? SAMPLE_MS.loading : SAMPLE_MS.serving;
      subs.push({ kind: 'memory-sampler', periodMs, id: s.run.containerId, epoch: s.epoch });
    }
    if (!live && t.telemetryPeriod > 0 && t.gpus !== 'none')
      subs.push({ kind: 'gpu-telemetry', periodMs: t.telemetryPeriod, epoch: s.epoch });
  }
  return subs;
}
