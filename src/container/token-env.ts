// The HF token in the container's environment: the one place that builds, finds and hides its entry.
import { createHash } from 'node:crypto';

export const TOKEN_VAR = 'HF_TOKEN';
const PREFIX = `${TOKEN_VAR}=`;

/** `HF_TOKEN=value`, the entry a create body carries. */
export function tokenEntry(value: string): string {
  return `${PREFIX}${value}`;
}

export function isTokenEntry(entry: string): boolean {
  return entry.startsWith(PREFIX);
}

/** The token an environment list carries, undefined when none (an empty value is none: the hub reads it so). */
export function tokenIn(env: readonly string[] | null | undefined): string | undefined {
  const entry = env?.find(isTokenEntry);
  return entry === undefined ? undefined : entry.slice(PREFIX.length) || undefined;
}

/** A short stand-in for the token: equal tokens, equal fingerprints; the token cannot be read back. */
export function tokenFingerprint(token: string | undefined): string | undefined {
  return token === undefined
    ? undefined
    : createHash('sha256').update(`gptoss-token:${token}`).digest('hex').slice(0, 16);
}
