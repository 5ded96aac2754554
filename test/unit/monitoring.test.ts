import test from 'ava';
import { configSchema } from '../../src/config/schema.js';
import { parseListen } from '../../src/config/schema-monitoring.js';
import { parseConfig } from '../../src/config/load.js';
import { formatProblem } from '../../src/config/problem.js';
import { alertsOf, restartCause } from '../../src/core/rules/alerts.js';
import { Driver, MIN, S, SEC } from '../helpers/driver.js';

const F = '/etc/gptoss/config.yaml';

test('metrics.listen: HOST:PORT with an IP; another address than loopback only with allowRemote', (t) => {
  t.deepEqual(parseListen('127.0.0.1:8479'), { host: '127.0.0.1', port: 8479 });
  t.deepEqual(parseListen('[::1]:9000'), { host: '::1', port: 9000 });
  t.is(parseListen('localhost:8479'), undefined);
  t.is(parseListen('127.0.0.1:99999'), undefined);
  t.is(configSchema.parse({}).metrics.listen, '127.0.0.1:8479');
  t.is(configSchema.parse({ metrics: { listen: null } }).metrics.listen, null);
  t.false(configSchema.safeParse({ metrics: { listen: '0.0.0.0:8479' } }).success);
  t.true(
    configSchema.safeParse({ metrics: { listen: '0.0.0.0:8479', allowRemote: true, allowFrom: ['10.0.0.0/24'] } })
      .success,
  );
  // allowRemote names who may scrape: no `any` in the firewall.
  t.false(configSchema.safeParse({ metrics: { listen: '0.0.0.0:8479', allowRemote: true } }).success);
});

test('bad monitoring input gets located errors', (t) => {
  const rows: [string, RegExp][] = [
    [
      'metrics:\n  listen: 0.0.0.0:8479\n',
      /:2:11: metrics\.listen: 0\.0\.0\.0:8479 is not a loopback address.*allowRemote: true/,
    ],
    ['metrics:\n  listen: here\n', /:2:11: metrics\.listen: expected HOST:PORT/],
    [
      'alerts:\n  webhooks:\n    - name: a\n      url: ftp://x\n',
      /:4:12: alerts\.webhooks\.0\.url: expected an http\(s\) URL/,
    ],
    ['alerts:\n  webhooks:\n    - name: a\n', /alerts\.webhooks\.0: give exactly one of url and urlFile/],
    [
      'alerts:\n  webhooks:\n    - name: a\n      url: http://x/\n      events: [nope]\n',
      /alerts\.webhooks\.0\.events\.0: expected one of crashloop/,
    ],
    [
      'alerts:\n  webhooks:\n    - name: a\n      url: http://x/\n      tokenFile: token\n',
      /tokenFile: expected an absolute path or credential:NAME/,
    ],
    ['restart:\n  budget:\n    count: 0\n', /:3:12: restart\.budget\.count: must be at least 1/],
    [
      'alerts:\n  webhooks:\n    - name: a\n      url: http://ntfy.lan/t\n      tokenFile: /etc/gptoss/ntfy\n',
      /:4:12: alerts\.webhooks\.0\.url: http: would send the token of tokenFile in clear text; use https:/,
    ],
    [
      'alerts:\n  webhooks:\n    - name: a\n      url: "https://u:pw@ntfy.sh/t"\n',
      /:4:12: alerts\.webhooks\.0\.url: must not carry a user or password/,
    ],
  ];
  for (const [text, re] of rows) {
    const r = parseConfig(text, F);
    t.false(r.ok, text);
    if (!r.ok) t.regex(r.problems.map(formatProblem).join('\n'), re, text);
  }
});

test('a token over http is fine to a loopback relay', (t) => {
  for (const host of ['127.0.0.1:8080', 'localhost', '[::1]:80']) {
    const r = parseConfig(`alerts:\n  webhooks:\n    - name: a\n      url: http://${host}/t\n      tokenFile: /x\n`, F);
    t.true(r.ok, r.ok ? '' : r.problems.map(formatProblem).join('\n'));
  }
});

test('alerts: a crash loop, its diagnosis, and recovery; a stall; the budget', (t) => {
  const d = new Driver({ ...S, crashLoopAfter: 2, budget: { count: 4, window: 60 * MIN } }).booted('c1').serving();
  // Every event the driver sends, its alerts kept (title too: what the operator reads).
  const seen: string[] = [];
  const send = d.send.bind(d);
  d.send = (ev, random) => {
    const before = d.state;
    const actions = send(ev, random);
    seen.push(...alertsOf(ev, before, d.state, 'gpt-oss-120b').map((a) => `${a.event}: ${a.title}`));
    return actions;
  };
  const restarted = (id: string) => {
    d.at(d.now + 10 * MIN).tick();
    d.send({ type: 'reconciled', id, outcome: 'started', reason: 'x', startedAt: d.now });
  };
  const oom = { code: 137, oom: true, tail: [] };
  d.send({ type: 'observed', seen: { kind: 'exited', id: 'c1', exit: oom } });
  restarted('c2');
  d.send({ type: 'observed', seen: { kind: 'exited', id: 'c2', exit: oom } });
  t.deepEqual(seen.splice(0), [
    'diagnosis: gpt-oss-120b: failed (oom-killed)',
    'diagnosis: gpt-oss-120b: failed (oom-killed)',
    'crashloop: gpt-oss-120b: crash loop',
  ]);
  t.is(restartCause(d.state), 'oom-killed');
  // Out of the crash loop: serving again is the recovery.
  restarted('c3');
  d.serving();
  t.is(d.state.phase, 'serving');
  t.deepEqual(seen.splice(0), ['recovered: gpt-oss-120b: serving again']);
  // Requests in, no token for the stall window, looked at twice: the engine stalled.
  const engine = (ms: number) =>
    d.at(ms).send({
      type: 'probed',
      kind: 'engine',
      epoch: d.state.epoch,
      ok: true,
      sample: { source: 'metrics', running: 1, waiting: 0, generated: 100 },
    });
  const from = d.now;
  for (let at = from; d.state.phase === 'serving' && at <= from + 10 * MIN; at += 10 * SEC) engine(at);
  t.is(d.state.history.diagnosis?.code, 'engine-stalled');
  // Its restart is the third in a row (serving for moments does not reset the count): a crash loop again.
  t.deepEqual(seen.splice(0), [
    'stalled: gpt-oss-120b: stalled (engine-stalled)',
    'crashloop: gpt-oss-120b: crash loop',
  ]);
  // The next load hangs in compile past its stall timeout: stalled too.
  restarted('c4');
  d.line('Compiling a graph for dynamic shape takes 27.55 s');
  d.at(d.now + 5 * MIN).tick();
  t.is(d.state.history.diagnosis?.code, 'load-stalled');
  t.deepEqual(seen.splice(0), ['stalled: gpt-oss-120b: stalled (load-stalled)', 'crashloop: gpt-oss-120b: crash loop']);
  // A fifth failure within the hour would be a fifth restart, one more than restart.budget allows: failed.
  restarted('c5');
  d.send({ type: 'observed', seen: { kind: 'exited', id: 'c5', exit: { code: 1, oom: false, tail: [] } } });
  t.is(d.state.phase, 'failed');
  t.deepEqual(seen.splice(0), ['budget: gpt-oss-120b: restart budget spent, not restarting']);
});

test("restart causes: the diagnosis code of this failure, else the cause's kind", (t) => {
  const d = new Driver().booted('c1').serving();
  d.send({ type: 'observed', seen: { kind: 'exited', id: 'c1', exit: { code: 1, oom: false, tail: [] } } });
  t.is(restartCause(d.state), 'exit');
});
