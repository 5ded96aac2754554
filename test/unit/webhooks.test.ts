import test from 'ava';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Alerts, requestFor, sendOnce } from '../../src/alerts/webhooks.js';
import type { Alert } from '../../src/core/rules/alerts.js';
import { createLogger } from '../../src/log/logger.js';

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
    while (got.length < 1) await new Promise((r) => setTimeout(r, 10));
    alerts.configure([{ ...hook }], o);
    release();
    alerts.raise({ event: 'recovered', trouble: false, title: 'x: serving again', message: 'm', key: 'recovered' });
    const until = async (n: number) => {
      const deadline = Date.now() + 5000;
      while (got.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    };
    await until(2);
    // And after that delivery has ended: the target is not left marked busy.
    alerts.raise({ event: 'crashloop', trouble: true, title: 'x: crash loop', message: 'm', key: 'crashloop' });
    await until(3);
    t.deepEqual(got, ['crashloop', 'recovered', 'crashloop']);
  } finally {
    server.closeAllConnections();
    server.close();
  }
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
  const dir = await mkdtemp(join(tmpdir(), 'gptoss-hook-'));
  await writeFile(join(dir, 'url'), 'http://ntfy.example.internal/topic\n');
  await writeFile(join(dir, 'token'), 'tk_secret\n');
  const w = { ...hook('x'), url: undefined, urlFile: join(dir, 'url'), tokenFile: join(dir, 'token') };
  const e = await t.throwsAsync(requestFor(w, alert('x'), (x) => x));
  t.regex(e?.message ?? '', /http:.*in clear text.*https:/);
  t.false((e?.message ?? '').includes('tk_secret'));
  await writeFile(join(dir, 'url'), 'http://127.0.0.1:9/topic\n');
  t.is((await requestFor(w, alert('x'), (x) => x)).init.headers['Authorization'], 'Bearer tk_secret');
});
