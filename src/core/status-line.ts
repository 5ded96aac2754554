// The one-line human status of each state, as systemctl status and D-Bus show it.
import { formatDuration as fmt } from '../config/duration.js';
import type { Settings } from '../config/settings.js';
import { engineLoadText } from './engine.js';
import type { State } from './state.js';
import { waitLabel } from './wait.js';

export function statusLine(s: State, now: number, t: Settings): string {
  const line = phaseLine(s, now, t);
  return s.configError ? `config invalid: ${s.configError}; ${line}` : line;
}

function phaseLine(s: State, now: number, t: Settings): string {
  const restarts = s.history.restarts;
  switch (s.phase) {
    case 'waiting':
      return `waiting for ${waitLabel(s.wait.reason)}${s.wait.detail ? `: ${s.wait.detail}` : ''}`;
    case 'starting':
      return restarts > 0 ? `starting ${t.name} (restart ${restarts})` : `starting ${t.name}`;
    case 'loading': {
      const base = `loading ${t.servedName}: ${fmt(now - s.run.startedAt)} of ${fmt(t.startupTimeout)}`;
      return s.run.probes.live ? `${base}, /health answers, waiting for /v1/models to list it` : base;
    }
    case 'serving': {
      const since = s.run.probes.servingSince ?? s.since;
      const load = engineLoadText(s.run.engine);
      return (
        `serving ${t.servedName} on port ${t.port} for ` +
        `${fmt(now - since)}${restarts ? ` (${restarts} recent restarts)` : ''}${load ? `; engine: ${load}` : ''}`
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
    case 'stopping':
      return `stopping ${t.name} (up to ${fmt(t.stopTimeout)})`;
    case 'stopped':
      return 'stopped';
  }
}
