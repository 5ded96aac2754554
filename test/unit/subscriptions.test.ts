import test from 'ava';
import { subscriptionKey, subscriptions, type Subscription } from '../../src/core/machine/subscriptions.js';
import { TIMERS } from '../../src/core/machine/timers.js';
import { wakeAt } from '../../src/core/machine/step.js';
import { PHASES } from '../../src/core/model/state.js';
import { ExitCorrelation } from '../../src/docker/events.js';
import { Watchers } from '../../src/runtime/watchers.js';
import { Driver, MIN, S, SEC } from '../helpers/driver.js';

const keys = (d: Driver) => subscriptions(d.state, d.t).map(subscriptionKey);

test('subscriptions: what each state watches, and when the log watch changes hands', (t) => {
  const d = new Driver();
  const always = [
    `container-events ${S.name}`,
    `encodings ${S.encodingsDir} true`,
    `jobs ${S.jobs.deepProbe ?? '-'} -`,
    'gate 0.0.0.0:8000',
  ];
  t.deepEqual(keys(d), always, 'before the first look: Docker, the files, the jobs');
  d.booted('c1');
  const loading = subscriptions(d.state, d.t).find((s) => s.kind === 'container-log');
  t.deepEqual(loading, { kind: 'container-log', id: 'c1', epoch: d.state.epoch, live: true, since: -1000 });
  d.at(30 * SEC).serving();
  const serving = subscriptions(d.state, d.t).find((s) => s.kind === 'container-log');
  t.deepEqual(
    serving,
    { kind: 'container-log', id: 'c1', epoch: d.state.epoch, live: false, since: 29 * SEC },
    'serving: through Docker log, from a second before serving began',
  );
  d.probe('readiness', false, 'not listed');
  t.is(d.state.phase, 'unhealthy');
  t.deepEqual(
    subscriptions(d.state, d.t).find((s) => s.kind === 'container-log'),
    serving,
    'unhealthy is the same run: the same watch',
  );
  d.send({ type: 'observed', seen: { kind: 'exited', id: 'c1', exit: { code: 1, oom: false, tail: [] } } });
  t.deepEqual(keys(d), always, 'the run ended: no log to follow');
  d.send({ type: 'shutdown', signal: 'SIGTERM' });
  t.is(d.state.phase, 'stopped');
  t.deepEqual(keys(d), [], 'stopped: nothing is watched');
});

test('subscriptions follow the settings: a new name, folder or schedule is a new watcher', (t) => {
  const d = new Driver();
  const before = keys(d);
  d.t = {
    ...S,
    name: 'other',
    encodingsDir: '/srv/enc',
    verifyEncodings: false,
    jobs: { deepProbe: null, maintenanceRestart: '0 4 * * *' },
    gate: { ...S.gate!, listen: { host: '127.0.0.1', port: 9000 }, apiKeyFile: '/etc/gptoss/api_keys' },
  };
  t.deepEqual(keys(d), [
    'container-events other',
    'encodings /srv/enc false',
    'jobs - 0 4 * * *',
    'gate 127.0.0.1:9000',
    'api-keys /etc/gptoss/api_keys',
  ]);
  t.notDeepEqual(keys(d), before);
  const { gate: _g, ...off } = S;
  d.t = off;
  t.false(
    keys(d).some((k) => k.startsWith('gate') || k.startsWith('api-keys')),
    'gate.enabled false: no gate',
  );
});

test('the shell keeps the watchers in step: starts what is new, stops what is gone, keeps the rest', (t) => {
  const log: string[] = [];
  const w = new Watchers((sub: Subscription) => {
    const k = subscriptionKey(sub);
    log.push(`start ${k}`);
    return { stop: () => void log.push(`stop ${k}`) };
  });
  const a: Subscription = { kind: 'container-events', name: 'a' };
  const enc: Subscription = { kind: 'encodings', dir: '/e', verify: true };
  w.sync([a, enc]);
  w.sync([a, enc]);
  w.sync([{ kind: 'container-events', name: 'b' }, enc]);
  t.deepEqual(log, [
    'start container-events a',
    'start encodings /e true',
    'stop container-events a',
    'start container-events b',
  ]);
  t.deepEqual(w.names(), ['encodings /e true', 'container-events b']);
});

test('kill and oom events explain the die that follows; a die nobody asked for is the exit', (t) => {
  let now = 0;
  const c = new ExitCorrelation(() => now);
  t.deepEqual(c.see('die', 'x', { exitCode: '1' }), { code: 1, oom: false }, 'the process ended by itself');
  t.is(c.see('start', 'x', {}), undefined);
  t.is(c.see('oom', 'y', {}), undefined);
  t.deepEqual(c.see('die', 'y', { exitCode: '137' }), { code: 137, oom: true }, 'after an oom event');
  t.is(c.see('kill', 'z', { signal: '15' }), undefined);
  t.is(c.see('die', 'z', { exitCode: '143' }), undefined, 'a kill asked for it: looked at in full');
  now = 11 * SEC;
  t.deepEqual(c.see('die', 'z', { exitCode: '1' }), { code: 1, oom: false }, 'a kill 11 s ago explains nothing');
  t.is(c.see('die', 'w', {}), undefined, 'no exit code: looked at in full');
});

test('every phase has a timer, and wakeAt asks for exactly what the timer fires on', (t) => {
  t.deepEqual(Object.keys(TIMERS).sort(), [...PHASES].sort());
  const d = new Driver().booted('c1').serving();
  d.send({ type: 'observed', seen: { kind: 'exited', id: 'c1', exit: { code: 1, oom: false, tail: [] } } });
  const at = wakeAt(d.state, d.t);
  t.is(at, 10 * SEC, 'backoff: the restart is due');
  t.deepEqual(d.at((at ?? 0) - 1).tick(), [], 'a moment early: nothing');
  t.true(
    d
      .at(at ?? 0)
      .tick()
      .some((a) => a.type === 'reconcile'),
    'on time: the restart',
  );
  t.is(MIN, 60 * SEC);
});
