// One request at the gate: what the door keeps of it, and the plain HTTP steps that need nothing of the
// door's own state (reading the body, the headers that go through, the API key, the answer when the
// gate itself goes away).
import { createHash, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import { apiError, type Admission } from '../core/rules/door.js';

/** Headers that belong to one connection, never forwarded (RFC 9110 7.6.1). */
const HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** A message's headers less those of one connection. */
export function endToEnd(h: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, val] of Object.entries(h)) if (!HOP.has(k) && val !== undefined) out[k] = val;
  return out;
}

/** One request the door owns until its answer ends. */
export interface Pending {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  arrived: number;
  /** The body, when it was read whole (up to maxBodySize): the request can be sent again. */
  body: Buffer[];
  /** Read past maxBodySize: the rest is piped from the client once, and it is never sent again. */
  overflow: boolean;
  until?: number;
  timer?: NodeJS.Timeout;
  upstream?: http.ClientRequest;
  /** The connection pool it was sent through. */
  agent?: http.Agent;
  /** Bytes of the answer went to the client: it can no longer be sent again. */
  sent: boolean;
  sse: boolean;
  replayed: boolean;
  /** Taken back from the model at the drain deadline, to be sent again. */
  detached: boolean;
  /** Held before the supervisor said anything: its hold is set again when it does. */
  untold?: boolean;
  firstByteAt?: number;
  done: boolean;
}

/** The gate is going away and the model is not open: the next gate will hold it. */
export const goingAway = (): Admission => ({
  kind: 'answer',
  status: 503,
  retryAfter: 1,
  body: apiError('the gate is restarting; send it again', 'service_unavailable', 'gate_restarting'),
});

const sha256 = (s: string) => createHash('sha256').update(s).digest();

/** The Authorization header's bearer key matches one of the key hashes (each compared in constant time). */
export function authorized(header: string | undefined, keys: readonly string[]): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  const presented = sha256(m?.[1] ?? '');
  let ok = false;
  for (const k of keys) {
    const want = Buffer.from(k, 'hex');
    if (want.length === presented.length && timingSafeEqual(want, presented)) ok = true;
  }
  return ok && m !== null;
}

/** The body, up to `max` bytes; past that, the rest waits in the client's connection to be piped. */
export function readBody(p: Pending, max: number): Promise<void> {
  return new Promise((resolve) => {
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      p.body.push(c);
      if (size > max) {
        p.overflow = true;
        p.req.pause();
        p.req.off('data', onData);
        resolve();
      }
    };
    p.req.on('data', onData);
    p.req.on('end', () => resolve());
    p.req.on('error', () => resolve());
    p.req.on('close', () => resolve());
  });
}
