import test, { type ExecutionContext } from 'ava';
import { writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

import { join } from 'node:path';
import { Alerts, requestFor, sendOnce } from '../../src/alerts/webhooks.js';
import type { Alert } from '../../src/core/rules/alerts.js';
import { createLogger } from '../../src/log/logger.js';
import { until } from '../helpers/poll.js';
import { tempDir } from '../helpers/temp.js';

test('a reload while a delivery is under way: later alerts still go out', async (t) => {
  const got: string[] = [];
  let release: () => void = () => undefined;
  const held = new Promise<void>((r) => (release = r));
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      got.push((JSON.parse(body) as { event: string }).event);
      // The first answer waits until the reload has happened.
      void (got.length === 1 ? held : Promise.resolve()).then(() => res.writeHead(200).end());
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  const hook = {
    name: 'ops',
    format: 'json' as const,
    url,
    events: ['crashloop' as const, 'recovered' as const],
    waitingAfter: 600_000,
  };
  const o = {
    log: createLogger({ level: 'error', format: 'text', write: () => undefined }),
    retries: 0,
    rateLimit: { max: 10, window: 3_600_000 },
  };
  const alerts = new Alerts(o, [hook]);
  try {
    alerts.raise({ event: 'crashloop', trouble: true, title: 'x: crash loop', message: 'm', key: 'crashloop' });
    const delivered = (n: number) =>
      until(
        `delivery ${n}`,
        5000,
        () => got.length >= n,
        () => JSON.stringify(got),
      );
    await delivered(1);
    alerts.configure([{ ...hook }], o);
    release();
    alerts.raise({ event: 'recovered', trouble: false, title: 'x: serving again', message: 'm', key: 'recovered' });
    await delivered(2);
    // And after that delivery has ended: the target is not left marked busy.
    alerts.raise({ event: 'crashloop', trouble: true, title: 'x: crash loop', message: 'm', key: 'crashloop' });
    await delivered(3);
    t.deepEqual(got, ['crashloop', 'recovered', 'crashloop']);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

/** The log's lines, and a wait for one that matches (on each write, with a deadline that says what was seen). */
function lines() {
  const seen: string[] = [];
  const waiters: Array<() => void> = [];
  const log = createLogger({
    level: 'info',
    format: 'text',
    write: (l) => {
      seen.push(l.trimEnd());
      for (const w of waiters.splice(0)) w();
    },
  });
  async function waitFor(re: RegExp, ms: number): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = seen.find((l) => re.test(l));
      if (hit) return hit;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no log line ${String(re)} in ${ms}ms; seen:\n${seen.join('\n')}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
  return { log, seen, waitFor };
}

/** A webhook target that records each message's event and answers (or not) as `answer` says. */
async function target(answer: (n: number, res: ServerResponse) => void) {
  const got: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      got.push((JSON.parse(body) as { event: string }).event);
      answer(got.length, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  const close = () => {
    server.closeAllConnections();
    server.close();
  };
  return { got, url, close };
}

const hookAt = (url: string) => ({
  name: 'ops',
  format: 'json' as const,
  url,
  events: ['crashloop' as const, 'recovered' as const],
  waitingAfter: 600_000,
});
const CRASHLOOP = {
  event: 'crashloop',
  trouble: true,
  title: 'x: crash loop',
  message: 'm',
  key: 'crashloop',
} as const;
const RECOVERED = {
  event: 'recovered',
  trouble: false,
  title: 'x: serving again',
  message: 'm',
  key: 'recovered',
} as const;

test('a target that got a message and never answered is not sent it again; the next one follows, once', async (t) => {
  const slow = await target(() => undefined);
  const l = lines();
  const o = {
    log: l.log,
    retries: 2,
    rateLimit: { max: 10, window: 3_600_000 },
    retryBaseMs: 10,
    attemptTimeoutMs: 300,
  };
  const alerts = new Alerts(o, [hookAt(slow.url)]);
  try {
    alerts.raise(CRASHLOOP);
    alerts.raise(RECOVERED);
    // The outcome of the last message: every attempt there will be has been made.
    await l.waitFor(/alert to ops .*: x: serving again$/, 10_000);
    t.deepEqual(slow.got, ['crashloop', 'recovered'], l.seen.join('\n'));
    t.regex(
      l.seen.join('\n'),
      /warn +alert to ops not confirmed \(no answer in 0\.3s; .*not sent again.*\): x: crash loop$/m,
    );
  } finally {
    slow.close();
  }
});

test('a message that did not reach the target is tried again: an answer not 2xx, a refused connection', async (t) => {
  const flaky = await target((n, res) => res.writeHead(n === 1 ? 503 : 200).end());
  const l = lines();
  const o = {
    log: l.log,
    retries: 2,
    rateLimit: { max: 10, window: 3_600_000 },
    retryBaseMs: 10,
    attemptTimeoutMs: 2000,
  };
  const alerts = new Alerts(o, [hookAt(flaky.url)]);
  try {
    alerts.raise(CRASHLOOP);
    await l.waitFor(/alert sent to ops: x: crash loop$/, 10_000);
    t.deepEqual(flaky.got, ['crashloop', 'crashloop'], 'the 503 was tried again');
  } finally {
    flaky.close();
  }
  // The same port, closed now: refused, three attempts.
  const down = new Alerts({ ...o, log: l.log }, [hookAt(flaky.url)]);
  down.raise(CRASHLOOP);
  t.regex(await l.waitFor(/alert to ops failed/, 10_000), /failed after 3 attempts \(ECONNREFUSED\): x: crash loop$/);
});

/** A webhook target on loopback that keeps the title of each JSON alert it gets; closed at teardown. */
async function receiver(t: ExecutionContext) {
  const got: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      got.push((JSON.parse(body) as { title: string }).title);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  const delivered = (n: number) =>
    until(
      `delivery ${n}`,
      5000,
      () => got.length >= n,
      () => JSON.stringify(got),
    );
  return { got, url, delivered };
}

/** Alerts to one target that takes every event, `max` per minute; the warnings it logs are kept. */
function limited(url: string, max: number) {
  const warned: string[] = [];
  const log = createLogger({
    level: 'warn',
    format: 'json',
    write: (l) => warned.push((JSON.parse(l) as { msg: string }).msg),
  });
  const hook = {
    name: 'ops',
    format: 'json' as const,
    url,
    events: ['diagnosis' as const, 'recovered' as const],
    waitingAfter: 600_000,
  };
  const alerts = new Alerts({ log, retries: 0, rateLimit: { max, window: 60_000 } }, [hook]);
  return { alerts, warned };
}

const trouble = (key: string): Alert => ({ event: 'diagnosis', trouble: true, title: `x: ${key}`, message: 'm', key });
const recovered: Alert = {
  event: 'recovered',
  trouble: false,
  title: 'x: serving again',
  message: 'm',
  key: 'recovered',
};

test('alerts.rateLimit: past max in the window an alert is not sent, a warning says so; later it is', async (t) => {
  const r = await receiver(t);
  const { alerts, warned } = limited(r.url, 2);
  alerts.raise(trouble('one'), 1_000);
  alerts.raise(trouble('two'), 2_000);
  alerts.raise(trouble('three'), 3_000);
  t.deepEqual(warned, ['alert to ops not sent (rate limit, 2 per window): x: three']);
  // A minute after the first, one place in the window is free again.
  alerts.raise(trouble('four'), 61_000);
  await r.delivered(3);
  // One queue per target, in order: 'four' third means 'three' was never sent.
  t.deepEqual(r.got, ['x: one', 'x: two', 'x: four']);
});

test('alerts.rateLimit: recovered is sent past the limit (it closes trouble the target heard of)', async (t) => {
  const r = await receiver(t);
  const { alerts, warned } = limited(r.url, 1);
  alerts.raise(trouble('one'), 1_000);
  alerts.raise(trouble('two'), 2_000);
  alerts.raise(recovered, 3_000);
  t.deepEqual(warned, ['alert to ops not sent (rate limit, 1 per window): x: two']);
  await r.delivered(2);
  t.deepEqual(r.got, ['x: one', 'x: serving again']);
});

/** A local HTTP server for one test; `handle` answers each request. */
async function serve(handle: (req: IncomingMessage, res: ServerResponse, body: string) => void) {
  const got: Array<{ url: string; headers: IncomingMessage['headers']; body: string }> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      got.push({ url: req.url ?? '', headers: req.headers, body });
      handle(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const close = () => {
    server.closeAllConnections();
    server.close();
  };
  return { url, got, close };
}

const alert = (title: string): Alert => ({ event: 'crashloop', trouble: true, title, message: 'the body', key: 'k' });
const hook = (url: string, format: 'json' | 'ntfy' | 'slack' = 'json') => ({
  name: 'ops',
  format,
  url,
  events: ['crashloop' as const],
  waitingAfter: 600_000,
});

test('a redirect is not followed: the body never reaches the host it points to', async (t) => {
  const inner = await serve((_q, res) => res.writeHead(200).end());
  const outer = await serve((_q, res) => res.writeHead(307, { Location: `${inner.url}/internal` }).end());
  try {
    const r = await sendOnce(await requestFor(hook(`${outer.url}/hook`), alert('x: crash loop'), (s) => s));
    t.false(r.ok);
    t.regex(r.detail, /HTTP 307.*redirect/);
    t.is(outer.got.length, 1);
    t.deepEqual(inner.got, [], 'the internal host got the POST');
  } finally {
    inner.close();
    outer.close();
  }
});

test('a huge answer is not read: a few KiB, then the connection is closed', async (t) => {
  const total = 64 * 2 ** 20;
  let finished = false;
  let closed: () => void = () => undefined;
  const hungUp = new Promise<void>((r) => (closed = r));
  const s = await serve((_q, res) => {
    res.writeHead(200, { 'Content-Length': String(total) });
    res.on('finish', () => (finished = true));
    res.on('close', () => closed());
    const chunk = Buffer.alloc(2 ** 20, 120);
    let sent = 0;
    const more = () => {
      while (sent < total) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', more);
      }
      res.end();
    };
    more();
  });
  try {
    const r = await sendOnce(await requestFor(hook(`${s.url}/hook`), alert('x'), (x) => x));
    t.true(r.ok, r.detail);
    await hungUp;
    t.false(finished, 'the whole 64 MiB answer was read');
  } finally {
    s.close();
  }
});

test('ntfy: a title outside Latin-1 is sent, RFC 2047 encoded; an ASCII one as is', async (t) => {
  const s = await serve((_q, res) => res.writeHead(200).end());
  try {
    const title = 'gpt-oss-120b — 模型: crash loop ⚠';
    const r = await sendOnce(await requestFor(hook(`${s.url}/topic`, 'ntfy'), alert(title), (x) => x));
    t.true(r.ok, r.detail);
    const sent = String(s.got[0]?.headers['title']);
    t.regex(sent, /^=\?UTF-8\?B\?[A-Za-z0-9+/=]+\?=( =\?UTF-8\?B\?[A-Za-z0-9+/=]+\?=)*$/);
    t.true(
      sent.split(' ').every((w) => w.length <= 75),
      sent,
    );
    t.is(decode2047(sent), title);
    t.is(s.got[0]?.body, 'the body');
    await sendOnce(await requestFor(hook(`${s.url}/topic`, 'ntfy'), alert('x: crash loop'), (x) => x));
    t.is(s.got[1]?.headers['title'], 'x: crash loop');
  } finally {
    s.close();
  }
});

/** RFC 2047 B-encoded words, as ntfy (Go's mime.WordDecoder) reads them: adjacent words join. */
function decode2047(v: string): string {
  const words = v.split(' ').map((w) => /^=\?UTF-8\?B\?(.*)\?=$/.exec(w)?.[1] ?? '');
  return Buffer.concat(words.map((w) => Buffer.from(w, 'base64'))).toString('utf8');
}

test('a bearer token is never sent over http: to another host than loopback (urlFile: at delivery)', async (t) => {
  const dir = await tempDir(t, 'gptoss-hook-');
  await writeFile(join(dir, 'url'), 'http://ntfy.example.internal/topic\n');
  await writeFile(join(dir, 'token'), 'tk_secret\n');
  const w = { ...hook('x'), url: undefined, urlFile: join(dir, 'url'), tokenFile: join(dir, 'token') };
  const e = await t.throwsAsync(requestFor(w, alert('x'), (x) => x));
  t.regex(e?.message ?? '', /http:.*in clear text.*https:/);
  t.false((e?.message ?? '').includes('tk_secret'));
  await writeFile(join(dir, 'url'), 'http://127.0.0.1:9/topic\n');
  t.is((await requestFor(w, alert('x'), (x) => x)).init.headers['Authorization'], 'Bearer tk_secret');
});
