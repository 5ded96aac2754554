import test from 'ava';
import { createServer } from 'node:http';
import { Alerts } from '../../src/alerts/webhooks.js';
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
