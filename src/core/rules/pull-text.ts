// Image pulls in words: the progress worth showing, and what a failure means.
import type { PullSummary } from '../model/events.js';

function size(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)} kB`;
  return `${n} B`;
}

/** `3.2 of 9.8 GB, 12 of 31 layers` (sizes known so far: Docker learns them layer by layer). */
export function describePull(s: PullSummary): string {
  if (s.layers === 0) return 'starting';
  const bytes = s.totalBytes ? `${size(s.bytes)} of ${size(s.totalBytes)}` : size(s.bytes);
  return `${bytes}, ${s.layersDone} of ${s.layers} layers`;
}

const NOT_FOUND = new RegExp(
  [
    'manifest unknown',
    'manifest for \\S{1,512} not found',
    'name unknown',
    'not found: manifest',
    'repository does not exist',
    '\\b404\\b',
  ].join('|'),
  'i',
);
const REFUSED = new RegExp(
  [
    'unauthorized',
    'authentication required',
    'no basic auth credentials',
    'denied',
    '\\b40[13]\\b',
    'incorrect username or password',
  ].join('|'),
  'i',
);

/** Both patterns, for the hostile-input suite to time (a registry's error text is the outside's). */
export const PULL_PATTERNS: Readonly<Record<string, RegExp>> = { NOT_FOUND, REFUSED };

export type PullFailureKind = 'not-found' | 'auth' | 'network';

/**
 * What a failed pull means. Not found and refused credentials need a person (retried slowly);
 * anything else (refused connections, timeouts, a registry restarting) is retried with backoff.
 */
export function classifyPullError(message: string): PullFailureKind {
  if (NOT_FOUND.test(message)) return 'not-found';
  if (REFUSED.test(message)) return 'auth';
  return 'network';
}
