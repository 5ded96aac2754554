// The one-line human status of each state, as systemctl status and D-Bus show it.
import { formatDuration as fmt } from '../rules/duration.js';
import type { Settings } from '../model/settings.js';
import { engineLoadText } from './engine.js';
import { downloadMs, loadText } from './load.js';
import { prepareText } from './prepare.js';
import { rollbackText } from './rollback.js';
import { isRunning, type RunningState, type State } from '../model/state.js';
import { waitLabel } from '../rules/wait.js';
import { slowText } from '../rules/decode.js';
import { throttleText } from '../rules/telemetry.js';

/**
 * `loading gpt-oss-120b: compiling (torch.compile) for 1m10s; weights in 57s; 3m2s in, usually ready in 7m40s`
 * (or `3m2s of 15m` without an earlier load of this spec).
 */
function loadingLine(s: RunningState, now: number, t: Settings): string {
  const l = s.run.load;
  const elapsed = now - s.run.startedAt - downloadMs(l, now);
  const last = s.history.lastLoad;
  const clock =
    last?.spec === t.specHash
      ? `${fmt(elapsed)} in, usually ready in ${fmt(last.took)}`
      : `${fmt(elapsed)} of ${fmt(t.startupTimeout)}`;
  if (l?.phase === 'download') return `loading ${t.servedName}: ${loadText(l, now)}`;
  const p = s.run.probes;
  const what = p.ready
    ? `listed; waiting for its first completion (warm-up)${p.lastError ? `: ${p.lastError}` : ''}`
    : p.live
      ? '/health answers, waiting for /v1/models to list it'
      : l
        ? loadText(l, now)
        : '';
  return `loading ${t.servedName}: ${what ? `${what}; ` : ''}${clock}`;
}

export function statusLine(s: State, now: number, t: Settings): string {
  const prep = isRunning(s) ? s.run.prepare : undefined;
  const base = `${phaseLine(s, now, t)}${rollbackText(s, t)}`;
  const line = !prep ? base : prep.refused ? `${base}; ${prepareText(prep)}` : prepareText(prep);
  const withDoor = `${line}${doorText(s)}`;
  return s.configError ? `config invalid: ${s.configError}; ${withDoor}` : withDoor;
}

/** What the gate is doing that a person should know: requests it holds, a port it cannot take. */
function doorText(s: State): string {
  const d = s.door;
  if (!d) return '';
  const held = d.held > 0 ? `; ${d.held} request${d.held === 1 ? '' : 's'} held at the gate` : '';
  const deaf = d.listening ? '' : `; the gate does not listen: ${d.why ?? 'not yet'}`;
  return `${held}${deaf}`;
}

/** The GPU held back, and decoding slower than the spec's baseline, while they last. */
function hostText(s: RunningState): string {
  const gpu = throttleText(s.run.gpu);
  const d = s.run.decode;
  const base = s.history.decode?.secondsPerToken;
  const slow = d?.slowSince !== undefined && d.recent !== undefined && base ? slowText(d.recent, base) : undefined;
  return `${gpu ? `; ${gpu}` : ''}${slow ? `; ${slow}` : ''}`;
}

function phaseLine(s: State, now: number, t: Settings): string {
  const restarts = s.history.restarts;
  switch (s.phase) {
    case 'waiting':
      return `waiting for ${waitLabel(s.wait.reason)}${s.wait.detail ? `: ${s.wait.detail}` : ''}`;
    case 'starting':
      return restarts > 0 ? `starting ${t.name} (restart ${restarts})` : `starting ${t.name}`;
    case 'loading':
      return loadingLine(s, now, t);
    case 'serving': {
      const since = s.run.probes.servingSince ?? s.since;
      const load = engineLoadText(s.run.engine);
      return (
        `serving ${t.servedName} on port ${t.port} for ` +
        `${fmt(now - since)}${restarts ? ` (${restarts} recent restarts)` : ''}${load ? `; engine: ${load}` : ''}` +
        hostText(s)
      );
    }
    case 'unhealthy': {
      const p = s.run.probes;
      if (p.failures > 0)
        return `unhealthy: ${p.failures} of ${t.failureThreshold} liveness failures (${p.lastError ?? 'failed'})`;
      return `unhealthy: not ready (${p.lastError ?? 'readiness probe failed'})`;
    }
    case 'backoff':
    case 'crashloop': {
      const left = Math.max(0, s.restart.at - now);
      const head = s.phase === 'crashloop' ? 'crash loop' : 'backoff';
      const cause = s.history.cause;
      return `${head}: restart ${restarts} in ${fmt(left)}${cause ? ` (${cause})` : ''}`;
    }
    case 'failed': {
      const b = t.budget;
      const spent = b ? `restart budget spent (${b.count} restarts within ${fmt(b.window)})` : 'restart budget spent';
      const cause = s.history.cause ? `; last: ${s.history.cause}` : '';
      return `failed: ${spent}${cause}; next try in ${fmt(Math.max(0, s.until - now))} (or a config change, a restart)`;
    }
    case 'stopping':
      return `stopping ${t.name} (up to ${fmt(t.stopTimeout)})`;
    case 'stopped':
      return 'stopped';
  }
}
