// /metrics under a flood of idle connections: the ones past the cap are refused at once, the idle ones
// are closed after the socket timeout, and a scrape is answered again; the process keeps its file
// descriptors (before: every connection was held until EMFILE).
import { get } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import test from 'ava';
import { createLogger } from '../../src/log/logger.js';
import { allowList, MetricsExporter, peer } from '../../src/metrics/exporter.js';

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

/** A logger that keeps its lines; `up` resolves when the exporter says it listens. */
function logged() {
  const lines: string[] = [];
  let listening: () => void = () => undefined;
  const up = new Promise<void>((r) => (listening = r));
  const log = createLogger({
    format: 'text',
    level: 'info',
    write: (l) => {
      lines.push(l);
      if (l.includes('/metrics on http://')) listening();
    },
  });
  return { log, up, lines };
}

test('a flood of idle connections: past the cap refused at once, the rest timed out, a scrape answered', async (t) => {
  const port = await freePort();
  const { log, up } = logged();
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

/** This host's first IPv4 address that is not loopback: a peer the allow list must judge. */
function hostAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return undefined;
}

/** A scrape from `from`: its status, or the error that ended it (a connection closed unanswered). */
const scrapeFrom = (port: number, from: string) =>
  new Promise<number | string>((resolve) => {
    const req = get({ host: from, port, path: '/metrics', agent: false, localAddress: from }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });

test('metrics.allowFrom: the scraper it names answered, another address closed unanswered, said once', async (t) => {
  const from = hostAddress();
  if (!from) return t.fail('this host has no IPv4 address but loopback: the allow list cannot be tried');
  const port = await freePort();
  const { log, up, lines } = logged();
  const m = MetricsExporter.create(log);
  try {
    m.serve(`0.0.0.0:${port}`, [`${from}/32`]);
    await up;
    t.is(await scrapeFrom(port, from), 200, 'the scraper it names');
    // The same address, once the config names another scraper (the listener stays where it is).
    m.serve(`0.0.0.0:${port}`, ['203.0.113.7']);
    t.not(await scrapeFrom(port, from), 200, 'an address it does not name');
    t.not(await scrapeFrom(port, from), 200);
    t.is(await scrapeFrom(port, '127.0.0.1'), 200, 'loopback always');
    const said = lines.filter((l) => l.includes(`refused a connection from ${from}`));
    t.is(said.length, 1, `said once at warning: ${said.join(' | ')}`);
    t.regex(said[0] ?? '', /warn .*not loopback and not in metrics\.allowFrom/);
  } finally {
    m.close();
  }
});

test('the allow list: networks, single addresses, IPv4 clients of an IPv6 socket', (t) => {
  const list = allowList(['10.0.0.0/24', '192.168.1.20', 'fd00::/64']);
  const ok = (a: string) => {
    const p = peer(a);
    return p !== undefined && list.check(p.ip, p.type);
  };
  t.true(ok('10.0.0.255'));
  t.false(ok('10.0.1.0'));
  t.true(ok('::ffff:192.168.1.20'));
  t.false(ok('192.168.1.21'));
  t.true(ok('fd00::1'));
  t.false(ok('fd01::1'));
  t.true(ok('127.0.0.1'));
  t.true(ok('::1'));
  t.false(ok('169.254.169.254'));
  t.false(ok(''));
});
