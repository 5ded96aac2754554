// The config's monitoring sections: the Prometheus endpoint and the alert webhooks.
import { isIP } from 'node:net';
import { z } from 'zod';
import { ALERT_EVENTS } from '../core/rules/alerts.js';
import { duration, positiveInt } from './schema-parts.js';

/** `HOST:PORT` (`[::1]:PORT` for IPv6) as the supervisor will listen on it. */
export function parseListen(s: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(s);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!host || isIP(host) === 0 || !(port >= 1 && port <= 65535)) return undefined;
  return { host, port };
}

/** An IP address, or a network as ADDRESS/BITS. */
const cidr = z.string('expected an IP address or a network such as 10.0.0.0/24').refine((s) => {
  const [ip, bits, more] = s.split('/');
  if (more !== undefined || !ip || isIP(ip) === 0) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (isIP(ip) === 4 ? 32 : 128);
}, 'expected an IP address or a network such as 10.0.0.0/24');

const loopback = (host: string) => host === '::1' || host.startsWith('127.');

const metrics = z
  .strictObject({
    // Where /metrics is served: a loopback address by default; null turns it off.
    listen: z
      .string('expected HOST:PORT such as 127.0.0.1:8479, or null to turn /metrics off')
      .refine((s) => parseListen(s) !== undefined, 'expected HOST:PORT with an IP address, such as 127.0.0.1:8479')
      .nullable()
      .default('127.0.0.1:8479'),
    // Another address than loopback shows the state to anyone who reaches it: say so on purpose.
    allowRemote: z.boolean().default(false),
    // The scrapers' addresses (1.2.3.4, 10.0.0.0/24, fd00::/64): install.sh lets only them through the
    // unit's IP firewall.
    allowFrom: z.array(cidr).max(32, 'at most 32 addresses').default([]),
  })
  .prefault({})
  .superRefine((m, ctx) => {
    const l = m.listen ? parseListen(m.listen) : undefined;
    if (l && !loopback(l.host) && !m.allowRemote)
      ctx.addIssue({
        code: 'custom',
        path: ['listen'],
        message:
          `${m.listen} is not a loopback address: anyone who reaches it reads the supervisor's state; if that is ` +
          "what you mean, set metrics.allowRemote: true and metrics.allowFrom: [the scraper's address]",
      });
    if (l && !loopback(l.host) && m.allowRemote && m.allowFrom.length === 0)
      ctx.addIssue({
        code: 'custom',
        path: ['allowRemote'],
        message:
          "needs metrics.allowFrom, the scrapers' addresses (e.g. [192.168.1.20] or [10.0.0.0/24]): the unit's IP " +
          'firewall lets only them in (run install.sh again after changing it)',
      });
  });

export const CLEAR_TEXT =
  'http: would send the token of tokenFile in clear text; use https:, or http: only to a loopback address';

/** A bearer token to this URL would cross the network unencrypted: http: to another host than loopback. */
export function clearTextToken(url: string): boolean {
  try {
    const u = new URL(url);
    const host = u.hostname.replace(/^\[|\]$/g, '');
    return u.protocol === 'http:' && !(host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host));
  } catch {
    return false;
  }
}

/** A secret's place: an absolute path, or `credential:NAME` (a systemd credential of the unit). */
const secretSource = z
  .string()
  .refine(
    (s) => s.startsWith('/') || /^credential:[A-Za-z0-9_.-]+$/.test(s),
    'expected an absolute path or credential:NAME (a systemd credential, LoadCredential= in the unit)',
  );

const webhookUrl = z
  .string()
  .refine((u) => {
    try {
      const url = new URL(u);
      return (url.protocol === 'https:' || url.protocol === 'http:') && !/\s/.test(u);
    } catch {
      return false;
    }
  }, 'expected an http(s) URL such as https://ntfy.sh/my-topic')
  .refine((u) => {
    try {
      const url = new URL(u);
      return !url.username && !url.password;
    } catch {
      return true;
    }
  }, 'must not carry a user or password (fetch refuses such a URL: nothing would be sent); use tokenFile');

const webhook = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected a short name (letters, digits, "_", "." and "-")'),
    // json: a generic JSON POST; ntfy: ntfy.sh's publish format; slack: Slack-compatible incoming webhooks.
    format: z.enum(['json', 'ntfy', 'slack'], 'must be json, ntfy or slack').default('json'),
    // The URL, or where to read it (a Slack webhook URL is itself a secret).
    url: webhookUrl.optional(),
    urlFile: secretSource.optional(),
    // A token sent as "Authorization: Bearer ..." (ntfy access tokens), read from a file or credential.
    tokenFile: secretSource.optional(),
    events: z.array(z.enum(ALERT_EVENTS, `expected one of ${ALERT_EVENTS.join(', ')}`)).default([...ALERT_EVENTS]),
    // `waiting` fires once a wait has lasted this long.
    waitingAfter: duration('10m', '1s', '7d'),
  })
  .superRefine((w, ctx) => {
    if ((w.url === undefined) === (w.urlFile === undefined))
      ctx.addIssue({ code: 'custom', message: 'give exactly one of url and urlFile' });
    if (w.tokenFile && w.url && clearTextToken(w.url))
      ctx.addIssue({ code: 'custom', path: ['url'], message: CLEAR_TEXT });
  });

const alerts = z
  .strictObject({
    webhooks: z.array(webhook).max(16, 'at most 16 webhooks').default([]),
    // At most `max` messages per webhook within `window`, whatever happens (a crash loop is already
    // one message and a "recovered").
    rateLimit: z.strictObject({ max: positiveInt(10), window: duration('1h', '1m', '7d') }).prefault({}),
    // Failed deliveries are tried again this many times, with backoff (1 s, 2 s, 4 s, ...).
    retries: z.int('expected a whole number').min(0).max(10).default(4),
    // What clients of the model experienced, measured at the gate: an `slo` alert when the share of
    // requests answered well over the last `window` falls under `successRate`.
    slo: z
      .strictObject({
        window: duration('10m', '1m', '1d'),
        successRate: z.number().min(0, 'must be between 0 and 1').max(1, 'must be between 0 and 1').default(0.99),
      })
      .prefault({}),
  })
  .prefault({})
  .superRefine((a, ctx) => {
    const seen = new Set<string>();
    a.webhooks.forEach((w, i) => {
      if (seen.has(w.name))
        ctx.addIssue({ code: 'custom', path: ['webhooks', i, 'name'], message: `"${w.name}" is used twice` });
      seen.add(w.name);
    });
  });

export const monitoringSchemas = { metrics, alerts };
