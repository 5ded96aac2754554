// The one-line human status of each state, as systemctl status and D-Bus show it.
import { formatDuration as fmt } from '../config/duration.js';
import type { Settings, State } from './machine.js';
import { waitLabel } from './wait.js';

export function statusLine(s: State, now: number, t: Settings): string {
  const line = phaseLine(s, now, t);
  return s.configError ? `config invalid: ${s.configError}; ${line}` : line;
}

function phaseLine(s: State, now: number, t: Settings): string {
  switch (s.phase) {
    case 'waiting':
      return `waiting for ${s.waitingFor ? waitLabel(s.waitingFor) : 'a prerequisite'}${s.detail ? `: ${s.detail}` : ''}`;
    case 'starting':
      return s.restarts > 0 ? `starting ${t.name} (restart ${s.restarts})` : `starting ${t.name}`;
    case 'loading': {
      const since = s.startedAt ?? s.since;
      const base = `loading ${t.servedName}: ${fmt(now - since)} of ${fmt(t.startupTimeout)}`;
      return s.live ? `${base}, /health answers, waiting for /v1/models to list it` : base;
    }
    case 'serving':
      return `serving ${t.servedName} on port ${t.port} for ${fmt(now - (s.servingSince ?? s.since))}${s.restarts ? ` (${s.restarts} recent restarts)` : ''}`;
    case 'unhealthy':
      if (s.failures > 0) return `unhealthy: ${s.failures} of ${t.failureThreshold} liveness failures (${s.lastProbeError ?? 'failed'})`;
      return `unhealthy: not ready (${s.lastProbeError ?? 'readiness probe failed'})`;
    case 'backoff':
    case 'crashloop': {
      const left = Math.max(0, (s.restartAt ?? now) - now);
      const head = s.phase === 'crashloop' ? 'crash loop' : 'backoff';
      return `${head}: restart ${s.restarts} in ${fmt(left)}${s.cause ? ` (${s.cause})` : ''}`;
    }
    case 'stopping':
      return `stopping ${t.name} (up to ${fmt(t.stopTimeout)})`;
    case 'stopped':
      return 'stopped';
  }
}
