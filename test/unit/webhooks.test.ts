import test, { type ExecutionContext } from 'ava';
import { createServer } from 'node:http';
import { Alerts } from '../../src/alerts/webhooks.js';
import type { Alert } from '../../src/core/rules/alerts.js';
import { createLogger } from '../../src/log/logger.js';
import { until } from '../helpers/poll.js';

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
