// The probes the state machine asks for, against the model's published port.
import type { ProbeKind } from '../../core/state.js';
import { deepProbe, probeHealth, probeModels, type ProbeResult } from '../../health/probe.js';
import type { Desired } from '../desired.js';

export type ProbeOutcome = ProbeResult & { detail?: string };

export function probe(kind: ProbeKind, d: Desired, timeout: number): Promise<ProbeOutcome> {
  const { probeHost: host, settings } = d;
  if (kind === 'deep') return deepProbe(host, settings.port, settings.servedName, timeout);
  if (kind === 'readiness') return probeModels(host, settings.port, settings.servedName, timeout);
  return probeHealth(host, settings.port, timeout);
}
