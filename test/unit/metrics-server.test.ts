// /metrics under a flood of idle connections: the ones past the cap are refused at once, the idle ones
// are closed after the socket timeout, and a scrape is answered again; the process keeps its file
// descriptors (before: every connection was held until EMFILE).
import { get } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import test from 'ava';
import { createLogger } from '../../src/log/logger.js';
import { MetricsExporter } from '../../src/metrics/exporter.js';

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** Resolves when `n` of the promises have, or rejects after `ms` saying how many had. */
function atLeast(ps: Promise<unknown>[], n: number, ms: number, what: string): Promise<void> {
  let done = 0;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: ${done} of ${n} after ${ms} ms`)), ms);
    for (const p of ps)
      void p.then(() => {
        if (++done === n) {
          clearTimeout(timer);
          resolve();
        }
      });
  });
}

const scrape = (port: number) =>
  new Promise<number>((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });

test('a flood of idle connections: past the cap refused at once, the rest timed out, a scrape answered', async (t) => {
  const port = await freePort();
  let listening: () => void = () => undefined;
  const up = new Promise<void>((r) => (listening = r));
  const log = createLogger({
    format: 'text',
    level: 'info',
    write: (l) => {
      if (l.includes('/metrics on http://')) listening();
    },
  });
  const cap = 4;
  const m = MetricsExporter.create(log, { maxConnections: cap, idleTimeoutMs: 300 });
  m.serve(`127.0.0.1:${port}`);
  const sockets: Socket[] = [];
  try {
    await up;
    // One at a time: each is accepted (or dropped) before the next, so which ones are past the cap is known.
    const closed: Promise<void>[] = [];
    for (let i = 0; i < cap + 10; i++) {
      const s = connect(port, '127.0.0.1');
      sockets.push(s);
      s.on('error', () => undefined);
      closed.push(new Promise((r) => s.once('close', () => r())));
      await new Promise((r) => s.once('connect', r));
    }
    await atLeast(closed.slice(cap), 10, 2000, 'connections past the cap closed by the server');
    await atLeast(closed.slice(0, cap), cap, 5000, 'idle connections closed after the socket timeout');
    t.is(await scrape(port), 200);
  } finally {
    for (const s of sockets) s.destroy();
    m.close();
  }
});
