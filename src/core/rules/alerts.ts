// What deserves a message to the operator, decided from the state before and after an event: plain data.
import type { Event, History } from '../model/events.js';
import { isRunning, type State } from '../model/state.js';
import { slowText } from './decode.js';
import { formatDuration as fmt } from './duration.js';
import { activeReasons, throttleText } from './telemetry.js';

/** The events a webhook can ask for (README, "Monitoring"). */
export const ALERT_EVENTS = [
  'crashloop',
  'diagnosis',
  'stalled',
  'waiting',
  'recovered',
  'maintenance',
  'budget',
  'slo',
  'rollback',
  'stuck-memory',
  'throttled',
  'slow',
] as const;
export type AlertEvent = (typeof ALERT_EVENTS)[number];

export interface Alert {
  event: AlertEvent | 'test';
  /** Trouble opens an episode; `recovered` closes it. */
  trouble: boolean;
  title: string;
  message: string;
  /** For de-duplication within an episode (a diagnosis code, a wait's start). */
  key: string;
}

const STALLS = new Set(['engine-stalled', 'load-stalled']);
const last = (h: History) => h.lastFailure ?? h.cause ?? 'unknown';

/** Why the last restart happened, as a label value: the diagnosis code when this failure has one. */
export function restartCause(after: State): string {
  const h: History = after.history;
  if (h.diagnosis && h.diagnosis.at === after.since) return h.diagnosis.code;
  const c = h.cause ?? '';
  if (/^exit|OOM/.test(c)) return 'exit';
  if (c.startsWith('liveness')) return 'liveness';
  if (c === 'start-up timeout' || c === 'never ready') return 'startup-timeout';
  if (c.startsWith('deep probe')) return 'deep-probe';
  if (c === 'removed') return 'removed';
  return 'other';
}

/** A rollback made, and its good spec failing too. */
function rollbackAlerts(before: State, after: State, name: string): Alert[] {
  const out: Alert[] = [];
  const rb = after.history.rollback;
  if (rb && rb.at !== before.history.rollback?.at)
    out.push({
      event: 'rollback',
      trouble: true,
      title: `${name}: rolled back to the last spec that served (${rb.code})`,
      message:
        `The config's spec (${rb.from.slice(0, 12)}) could not serve: ${rb.because}. The last good spec ` +
        `(${rb.to.slice(0, 12)}) is starting again; the config file is unchanged: edit it to try again.`,
      key: `rollback-${rb.at}`,
    });
  if (rb?.failedToo && !before.history.rollback?.failedToo)
    out.push({
      event: 'rollback',
      trouble: true,
      title: `${name}: the last good spec fails too`,
      message: `After the rollback, the last good spec (${rb.to.slice(0, 12)}) fails too: ${rb.failedToo}.`,
      key: `rollback-failed-${rb.at}`,
    });
  return out;
}

/** The alerts an event's transition raises (`waiting` comes from `waitingAlert`, on the clock). */
export function alertsOf(ev: Event, before: State, after: State, name: string): Alert[] {
  const out: Alert[] = [];
  const d = after.history.diagnosis;
  if (d && d.at !== before.history.diagnosis?.at) {
    const stalled = STALLS.has(d.code);
    out.push({
      event: stalled ? 'stalled' : 'diagnosis',
      trouble: true,
      title: `${name}: ${stalled ? 'stalled' : 'failed'} (${d.code})`,
      message: `${d.summary}\nFix: ${d.remedy}`,
      key: d.code,
    });
  }
  if (after.phase === 'crashloop' && before.phase !== 'crashloop')
    out.push({
      event: 'crashloop',
      trouble: true,
      title: `${name}: crash loop`,
      message: `${after.history.restarts} restarts in a row; last: ${last(after.history)}`,
      key: 'crashloop',
    });
  if (after.phase === 'failed' && before.phase !== 'failed')
    out.push({
      event: 'budget',
      trouble: true,
      title: `${name}: restart budget spent, not restarting`,
      message: `Last failure: ${last(after.history)}. Run \`gptoss-supervisor restart\` or fix the config.`,
      key: 'budget',
    });
  out.push(...rollbackAlerts(before, after, name));
  out.push(...hostAlerts(before, after, name));
  if (after.phase === 'serving' && before.phase !== 'serving')
    out.push({
      event: 'recovered',
      trouble: false,
      title: `${name}: serving again`,
      message: 'The model serves.',
      key: 'recovered',
    });
  if (
    ev.type === 'scheduled' &&
    ev.job === 'maintenanceRestart' &&
    after.history.lastMaintenance !== before.history.lastMaintenance
  )
    out.push({
      event: 'maintenance',
      trouble: false,
      title: `${name}: planned maintenance restart`,
      message: 'schedule.maintenanceRestart restarted the model container; it is loading again.',
      key: `maintenance-${after.history.lastMaintenance ?? 0}`,
    });
  return out;
}

/** The host's trouble an event brought: memory no process holds, decoding slower than usual. */
function hostAlerts(before: State, after: State, name: string): Alert[] {
  const out: Alert[] = [];
  const stuck = (x: State) => x.phase === 'waiting' && x.wait.reason === 'stuck-memory';
  // Often after the wait for the memory to be released: a wait of another reason before it.
  if (after.phase === 'waiting' && after.wait.reason === 'stuck-memory' && !stuck(before))
    out.push({
      event: 'stuck-memory',
      trouble: true,
      title: `${name}: memory held with no process holding it`,
      message: `${after.wait.detail}. Not restarting into it; the model starts once the memory is back.`,
      key: `stuck-memory-${after.since}`,
    });
  const slow = slowAlert(before, after, name);
  if (slow) out.push(slow);
  return out;
}

/** Decoding became slower than the spec's baseline (health.slow): one alert per slow stretch, naming a throttle. */
function slowAlert(before: State, after: State, name: string): Alert | undefined {
  if (!isRunning(after)) return undefined;
  const d = after.run.decode;
  const was = isRunning(before) ? before.run.decode?.slowSince : undefined;
  const base = after.history.decode?.secondsPerToken;
  if (d?.slowSince === undefined || was !== undefined || d.recent === undefined || !base) return undefined;
  const why = activeReasons(after.run.gpu);
  return {
    event: 'slow',
    trouble: true,
    title: `${name}: ${slowText(d.recent, base).split(':')[0]}`,
    message:
      `${slowText(d.recent, base)} (with requests running). ` +
      (why ? `The GPU is throttled (${why}): ${throttleText(after.run.gpu) ?? ''}.` : 'The GPU reports no throttling.'),
    key: `slow-${d.slowSince}`,
  };
}

/** A throttle that has lasted `after` ms (gpu.throttleAlertAfter): one alert per stretch (keyed by its start). */
export function throttleAlert(s: State, now: number, after: number, name: string): Alert | undefined {
  const w = isRunning(s) ? s.run.gpu : undefined;
  const since = w?.throttledSince;
  if (since === undefined || now - since < after) return undefined;
  const text = throttleText(w) ?? 'GPU throttled';
  const figures = (w?.gpus ?? [])
    .filter((g) => g.reasons.length)
    .map((g) => [
      g.temperature !== undefined ? `${g.temperature} C` : '',
      g.powerW !== undefined ? `${g.powerW} W` : '',
    ])
    .flat()
    .filter(Boolean)
    .join(', ');
  return {
    event: 'throttled',
    trouble: true,
    title: `${name}: ${text}`,
    message: `${text}, for ${fmt(now - since)}${figures ? ` (${figures})` : ''}: the model is slower while it lasts.`,
    key: `throttled-${since}`,
  };
}

/** A wait that has lasted `after` ms: one alert per wait (keyed by when it began). */
export function waitingAlert(s: State, now: number, after: number, name: string, line: string): Alert | undefined {
  if (s.phase !== 'waiting' || now - s.since < after) return undefined;
  return {
    event: 'waiting',
    trouble: true,
    title: `${name}: waiting for ${s.wait.reason}`,
    message: line,
    key: `waiting-${s.since}`,
  };
}
