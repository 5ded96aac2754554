// Alert delivery: one queue per webhook, retried with backoff, rate-limited, never in supervision's way.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { CLEAR_TEXT, clearTextToken } from '../config/schema-monitoring.js';
import { throttleAlert, waitingAlert, type Alert } from '../core/rules/alerts.js';
import type { State } from '../core/model/state.js';
import type { Logger } from '../log/logger.js';
import { readCapped } from '../util/read-capped.js';

export type Webhook = Config['alerts']['webhooks'][number];

/** Each attempt may take this long; a slow target delays only its own queue. */
const ATTEMPT_TIMEOUT_MS = 5000;
/** Of an answer, at most this much is read (nothing in it is used): a huge one is cut off, not held in memory. */
const ANSWER_CAP = 4096;
/** Messages waiting for one target beyond this are dropped (oldest first): a dead target must not grow memory. */
const MAX_QUEUE = 20;

/** A secret from `/path` or `credential:NAME` ($CREDENTIALS_DIRECTORY/NAME, systemd's LoadCredential=). */
export async function readSecret(source: string): Promise<string> {
  let path = source;
  if (source.startsWith('credential:')) {
    const dir = process.env['CREDENTIALS_DIRECTORY'];
    if (!dir) throw new Error(`${source}: no systemd credentials here ($CREDENTIALS_DIRECTORY unset)`);
    path = join(dir, source.slice('credential:'.length));
  }
  const r = await readCapped(path, 8192);
  if (!r.ok) throw new Error(`${source}: ${r.why}`);
  return r.data.toString('utf8').trim();
}

export interface Delivery {
  url: string;
  init: { method: 'POST'; headers: Record<string, string>; body: string };
}

const PRIORITY: Record<string, string> = {
  budget: '5',
  crashloop: '4',
  stalled: '4',
  diagnosis: '4',
  'stuck-memory': '4',
  waiting: '3',
  throttled: '3',
  slow: '3',
};

/** The request a webhook gets, in its format; `scrub` takes any secret out of the texts first. */
export async function requestFor(w: Webhook, a: Alert, scrub: (t: string) => string): Promise<Delivery> {
  const url = w.url ?? (await readSecret(w.urlFile!));
  const headers: Record<string, string> = {};
  if (w.tokenFile) {
    // The schema refuses this for `url`; a URL read from urlFile is seen only now.
    if (clearTextToken(url)) throw new Error(`${w.urlFile ?? 'url'}: ${CLEAR_TEXT}`);
    headers['Authorization'] = `Bearer ${await readSecret(w.tokenFile)}`;
  }
  const title = scrub(a.title);
  const message = scrub(a.message);
  if (w.format === 'ntfy') {
    headers['Title'] = headerText(title);
    headers['Priority'] = PRIORITY[a.event] ?? '3';
    headers['Tags'] = a.trouble ? 'warning' : 'white_check_mark';
    headers['Content-Type'] = 'text/plain; charset=utf-8';
    return { url, init: { method: 'POST', headers, body: message } };
  }
  headers['Content-Type'] = 'application/json';
  const body =
    w.format === 'slack'
      ? { text: `*${title}*\n${message}` }
      : {
          source: 'gptoss-supervisor',
          host: hostname(),
          event: a.event,
          trouble: a.trouble,
          title,
          message,
          at: new Date().toISOString(),
        };
  return { url, init: { method: 'POST', headers, body: JSON.stringify(body) } };
}

/**
 * A header value as ntfy reads it: ASCII as is; anything else (a header carries Latin-1 at most, and
 * ntfy reads its bytes as UTF-8) as RFC 2047 encoded words of UTF-8, which ntfy decodes (2.4.0 and
 * newer), each at most 75 characters and cut between characters.
 */
export function headerText(text: string): string {
  if (/^[\x20-\x7e]*$/.test(text)) return text;
  const words: string[] = [];
  let part = '';
  for (const ch of text) {
    if (Buffer.byteLength(part + ch) > 45) {
      words.push(part);
      part = '';
    }
    part += ch;
  }
  if (part) words.push(part);
  return words.map((p) => `=?UTF-8?B?${Buffer.from(p).toString('base64')}?=`).join(' ');
}

export interface Outcome {
  ok: boolean;
  detail: string;
  /**
   * The request went out whole and no answer came (a timeout, a reset): the target may have the message,
   * so it is not sent again (a second copy would be a duplicate to the operator).
   */
  unanswered?: boolean;
}

/**
 * One attempt: ok, or why not. Over node:http(s) rather than fetch, to know whether the request went out
 * whole ('finish': connected, and past TLS): only one that did not may be tried again. No redirects.
 */
export function sendOnce(d: Delivery, timeoutMs = ATTEMPT_TIMEOUT_MS): Promise<Outcome> {
  return new Promise((resolve) => {
    const url = new URL(d.url);
    const body = Buffer.from(d.init.body, 'utf8');
    const headers = { ...d.init.headers, 'Content-Length': String(body.length) };
    // No pooled connection: one the target closed while idle would fail after the request "went out".
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
      method: d.init.method,
      headers,
      agent: false,
    });
    let written = false;
    let status: number | undefined;
    const answered = (code = status ?? 0): Outcome => {
      const redirect =
        code >= 300 && code < 400 ? ": a redirect, not followed; set the webhook's url to the address it leads to" : '';
      return { ok: code >= 200 && code < 300, detail: `HTTP ${code}${redirect}` };
    };
    const end = (o: Outcome) => {
      clearTimeout(timer);
      resolve(o);
      req.destroy();
    };
    const timer = setTimeout(() => {
      const none = { ok: false, detail: `no answer in ${timeoutMs / 1000}s`, unanswered: written };
      end(status === undefined ? none : answered());
    }, timeoutMs);
    req.on('finish', () => (written = true));
    req.on('response', (res) => {
      status = res.statusCode ?? 0;
      // The answer's status is all that matters: a few KiB of it are read, never a flood.
      let read = 0;
      res.on('data', (c: Buffer) => {
        read += c.length;
        if (read > ANSWER_CAP) end(answered());
      });
      res.on('end', () => end(answered())).on('error', () => end(answered()));
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (status !== undefined) return end(answered());
      const code = err.code ?? err.name;
      const hint = code === 'EPERM' ? " (the unit's IP firewall: run install.sh again, README Monitoring)" : '';
      end({ ok: false, detail: `${code}${hint}`, unanswered: written });
    });
    req.end(body);
  });
}

interface Target {
  w: Webhook;
  queue: Alert[];
  busy: boolean;
  /** When messages were sent (the rate limit's window). */
  sent: number[];
  /** Keys already sent in the current episode of trouble; undefined when none is open. */
  episode?: Set<string>;
}

export interface AlertsOptions {
  log: Logger;
  retries: number;
  rateLimit: { max: number; window: number };
  /** Called with each delivery's outcome (metrics). */
  onResult?: (target: string, ok: boolean) => void;
  /** Backoff base between attempts (tests make it short). */
  retryBaseMs?: number;
  /** How long one attempt may take (tests make it short). */
  attemptTimeoutMs?: number;
}

/**
 * The webhooks, each with its queue. `raise` never waits: delivery runs in the background, one message
 * at a time per target, so a target that is down or slow delays nothing but its own messages.
 */
export class Alerts {
  private targets = new Map<string, Target>();
  constructor(
    private readonly o: AlertsOptions,
    webhooks: readonly Webhook[],
  ) {
    this.configure(webhooks, o);
  }

  configure(webhooks: readonly Webhook[], o: Pick<AlertsOptions, 'retries' | 'rateLimit'>): void {
    this.o.retries = o.retries;
    this.o.rateLimit = o.rateLimit;
    const next = new Map<string, Target>();
    for (const w of webhooks) {
      // The same target object: a delivery under way drains its queue and clears its `busy`.
      const old = this.targets.get(w.name);
      if (old) old.w = w;
      next.set(w.name, old ?? { w, queue: [], busy: false, sent: [] });
    }
    this.targets = next;
  }

  /** Offers an alert to every webhook that wants it; the episode and rate rules decide what is sent. */
  raise(a: Alert, now = Date.now(), only?: string): void {
    for (const t of this.targets.values()) {
      if (only !== undefined && t.w.name !== only) continue;
      if (!t.w.events.includes(a.event as never) && a.event !== 'test') continue;
      if (a.event === 'recovered') {
        // A "recovered" only closes trouble this target was told about.
        if (!t.episode) continue;
        t.episode = undefined;
      } else if (a.trouble) {
        t.episode ??= new Set();
        if (t.episode.has(a.key)) continue;
        t.episode.add(a.key);
      }
      const w = this.o.rateLimit.window;
      t.sent = t.sent.filter((x) => x > now - w);
      if (t.sent.length >= this.o.rateLimit.max && a.event !== 'recovered') {
        this.o.log.log(
          'warn',
          `alert to ${t.w.name} not sent (rate limit, ${this.o.rateLimit.max} per window): ${a.title}`,
        );
        continue;
      }
      t.sent.push(now);
      t.queue.push(a);
      if (t.queue.length > MAX_QUEUE) t.queue.shift();
      void this.drain(t);
    }
  }

  /** A wait that has lasted each target's `waitingAfter`: one message per wait (its key is when it began). */
  waiting(s: State, now: number, name: string, line: string): void {
    for (const t of this.targets.values()) {
      if (t.episode?.has(`waiting-${s.since}`)) continue;
      const a = waitingAlert(s, now, t.w.waitingAfter, name, line);
      if (a) this.raise(a, now, t.w.name);
    }
  }

  /** A GPU throttle that has lasted gpu.throttleAlertAfter: one message per stretch. */
  throttled(s: State, now: number, after: number, name: string): void {
    const a = throttleAlert(s, now, after, name);
    if (a) this.raise(a, now);
  }

  private async drain(t: Target): Promise<void> {
    if (t.busy) return;
    t.busy = true;
    try {
      while (t.queue.length) {
        const a = t.queue.shift()!;
        await this.deliver(t.w, a);
      }
    } finally {
      t.busy = false;
    }
  }

  private async deliver(w: Webhook, a: Alert): Promise<void> {
    const scrub = (s: string) => this.o.log.scrub(s);
    let last = '';
    for (let i = 0; i <= this.o.retries; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, (this.o.retryBaseMs ?? 1000) * 2 ** (i - 1)));
      let r: Outcome;
      try {
        r = await sendOnce(await requestFor(w, a, scrub), this.o.attemptTimeoutMs);
      } catch (err) {
        r = { ok: false, detail: (err as Error).message };
      }
      if (r.ok) {
        this.o.log.log('info', `alert sent to ${w.name}: ${a.title}`, { alert: a.event });
        this.o.onResult?.(w.name, true);
        return;
      }
      if (r.unanswered) {
        // It went out: another copy would be a duplicate. The queue goes on to the next message.
        this.o.onResult?.(w.name, false);
        const why = `${r.detail}; the request went out, so it is not sent again: the target may have it`;
        this.o.log.log('warn', `alert to ${w.name} not confirmed (${why}): ${a.title}`, { alert: a.event });
        return;
      }
      last = r.detail;
    }
    this.o.onResult?.(w.name, false);
    this.o.log.log('warn', `alert to ${w.name} failed after ${this.o.retries + 1} attempts (${last}): ${a.title}`, {
      alert: a.event,
    });
  }
}
