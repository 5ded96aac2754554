import test from 'ava';
import { backoffDelay } from '../../src/core/rules/backoff.js';
import type { Action } from '../../src/core/model/events.js';
import { common, type Variant } from '../../src/core/model/state.js';
import { wakeAt } from '../../src/core/machine/step.js';
import { statusLine } from '../../src/core/machine/status-line.js';

import { Driver, MIN, S, SEC } from '../helpers/driver.js';

const types = (a: Action[]) => a.map((x) => x.type);
/** A planned stop of a serving run: the gate drains for gate.drainTimeout (60s) first. */
const DRAIN = 60 * SEC;
const logs = (a: Action[]) => a.filter((x): x is Extract<Action, { type: 'log' }> => x.type === 'log');

test('backoff: doubles from the initial delay up to the cap, jitter within bounds', (t) => {
  const p = { initialDelay: 10 * SEC, multiplier: 2, maxDelay: 5 * MIN, jitter: 0.1 };
  const rows: Array<[number, number]> = [
    [1, 10],
    [2, 20],
    [3, 40],
    [4, 80],
    [5, 160],
    [6, 300],
    [9, 300],
  ];
  for (const [n, s] of rows) t.is(backoffDelay(n, p, 0.5), s * SEC, `attempt ${n}`);
  t.is(backoffDelay(1, p, 0), 9 * SEC);
  t.is(backoffDelay(1, p, 0.999999), 11 * SEC);
  t.is(backoffDelay(20, p, 0.999999), 5 * MIN, 'jitter never exceeds maxDelay');
  t.is(backoffDelay(3, { ...p, initialDelay: 0 }, 0.9), 0, 'zero delay stays zero');
});

test('boot with nothing there: observe, then reconcile, then loading with a start-up probe at once', (t) => {
  const d = new Driver();
  t.deepEqual(types(d.send({ type: 'boot' })), ['observe']);
  // The first reconcile of a supervisor's life also looks at Docker's GPU support (a warning only).
  t.deepEqual(d.send({ type: 'observed', seen: { kind: 'absent' } }), [{ type: 'reconcile', gpuRuntime: true }]);
  t.is(d.state.phase, 'starting');
  d.send({ type: 'reconciled', id: 'c1', outcome: 'created', reason: 'x', startedAt: 0 });
  t.is(d.state.phase, 'loading');
  t.is(wakeAt(d.state, S), 0);
  // While the weights may still be downloading, the start-up probe also looks at the model's folder.
  t.deepEqual(d.tick(), [{ type: 'probe', kind: 'startup', epoch: d.state.epoch, timeout: 5 * SEC, disk: true }]);
  t.is(wakeAt(d.state, S), 5 * MIN, 'no second probe while one is in flight: only the stall deadline');
  d.probe('startup', false, 'connection refused');
  t.is(wakeAt(d.state, S), 10 * SEC, 'the next one a period after the last began');
});

/** A load that makes progress: a shard line of vLLM's each minute. */
function progressing(d: Driver, until: number): void {
  for (let ms = 0; ms < until; ms += 10 * SEC) {
    if (ms % MIN === 0)
      d.at(ms).line(`Loading safetensors checkpoint shards:  50% Completed | ${ms / MIN}/15 [00:01<00:01]`);
    d.at(ms).tick();
    d.probe('startup', false, 'connection refused');
  }
}

test('loading: refused probes inside the budget are not failures; status counts the budget', (t) => {
  const d = new Driver().booted();
  progressing(d, 15 * MIN);
  t.is(d.state.phase, 'loading');
  t.is(d.v.restarts, 0);
  d.at(15 * MIN - 10 * SEC);
  t.is(d.status(), 'loading gpt-oss-120b: loading weights 14/15 for 14m50s; 14m50s of 15m');
});

test('start-up budget spent -> backoff, the still-running container is stopped first at restart', (t) => {
  const d = new Driver().booted('c1');
  progressing(d, 15 * MIN);
  d.at(15 * MIN).tick();
  const a = d.probe('startup', false, 'connection refused');
  t.is(d.state.phase, 'backoff');
  t.deepEqual(types(a), ['log', 'persist']);
  t.regex(
    logs(a)[0]!.msg,
    /start-up took longer than health\.startup\.timeout \(15m, downloads left out\); last \/health: connection/,
  );
  t.is(d.status(), 'backoff: restart 1 in 10s (start-up timeout)');
  d.at(15 * MIN + 10 * SEC);
  t.deepEqual(
    d.tick().filter((x) => x.type === 'reconcile'),
    [{ type: 'reconcile', stopFirst: 'c1' }],
  );
  t.is(d.state.phase, 'starting');
});

test('startup OK -> readiness at once; listed -> the first completion; it answers -> serving, READY-worthy', (t) => {
  const d = new Driver().booted();
  d.at(5 * MIN).line('Starting vLLM API server 0 on http://0.0.0.0:8000');
  d.at(7 * MIN).tick();
  d.probe('startup', true);
  t.is(d.state.phase, 'loading');
  t.deepEqual(types(d.tick()), ['probe']);
  t.is(d.status(), 'loading gpt-oss-120b: /health answers, waiting for /v1/models to list it; 7m of 15m');
  t.deepEqual(d.probe('readiness', true), [], 'listed: not serving yet');
  t.is(d.state.phase, 'loading');
  // vLLM's /health is 200 before the server is warm: one real completion first (the deep probe's timeout).
  const warm = d.tick().filter((x) => x.type === 'probe');
  t.deepEqual(warm, [{ type: 'probe', kind: 'warmup', epoch: d.state.epoch, timeout: 60 * SEC }]);
  t.deepEqual(d.probe('warmup', false, 'HTTP 500'), []);
  t.is(d.state.phase, 'loading', 'a failed first completion: still loading');
  const waiting = /^loading gpt-oss-120b: listed; waiting for its first completion \(warm-up\)/;
  t.regex(d.status(), waiting);
  t.regex(d.status(), /: the first completion failed: HTTP 500;/);
  t.deepEqual(d.tick(), [], 'tried again a readiness period later, not at once');
  d.at(7 * MIN + 10 * SEC);
  t.deepEqual(
    d
      .tick()
      .filter((x) => x.type === 'probe')
      .map((x) => (x.type === 'probe' ? x.kind : '')),
    ['liveness', 'readiness', 'warmup'],
  );
  const a = d.probe('warmup', true);
  t.is(d.state.phase, 'serving');
  t.is(logs(a)[0]!.event, 'container-ready');
  t.is(logs(a)[0]!.msg, 'serving gpt-oss-120b on port 8000 after 7m10s (api 2m10s)');
  d.at(9 * MIN);
  t.is(d.status(), 'serving gpt-oss-120b on port 8000 for 1m50s');
});

test('liveness: failures below the threshold are unhealthy, a success heals, the threshold restarts', (t) => {
  const d = new Driver().booted('c1').serving();
  d.at(10 * SEC).tick();
  d.probe('liveness', false, 'timeout after 5s');
  t.is(d.state.phase, 'unhealthy');
  t.is(d.status(), 'unhealthy: 1 of 3 liveness failures (timeout after 5s)');
  d.probe('liveness', true);
  t.is(d.state.phase, 'serving');
  d.probe('liveness', false, 'HTTP 500');
  d.probe('liveness', false, 'HTTP 500');
  const a = d.probe('liveness', false, 'HTTP 500');
  t.is(d.state.phase, 'backoff');
  t.is(d.v.stopFirst, 'c1');
  t.deepEqual(
    logs(a).map((l) => l.event),
    ['health-failed', 'restart-scheduled'],
  );
  t.is(d.status(), 'backoff: restart 1 in 10s (liveness: HTTP 500)');
});

test('readiness lost after serving -> unhealthy, never a restart by itself', (t) => {
  const d = new Driver().booted().serving();
  for (let i = 0; i < 10; i++) d.probe('readiness', false, '/v1/models does not list gpt-oss-120b');
  t.is(d.state.phase, 'unhealthy');
  t.is(d.v.restarts, 0);
  t.is(d.status(), 'unhealthy: not ready (/v1/models does not list gpt-oss-120b)');
  d.probe('readiness', true);
  t.is(d.state.phase, 'serving');
});

test('never ready within the budget -> restart', (t) => {
  const d = new Driver().booted();
  d.probe('startup', true);
  d.at(16 * MIN);
  d.probe('readiness', false, '/v1/models does not list gpt-oss-120b');
  t.is(d.state.phase, 'backoff');
  t.is(d.v.cause, 'never ready');
});

test('exits in a row: growing delays to the cap, then the crash loop state; one log line each', (t) => {
  const d = new Driver();
  d.booted('c1');
  const delays: number[] = [];
  let now = 0;
  for (let i = 1; i <= 8; i++) {
    const a = d.at(now).send({
      type: 'observed',
      seen: { kind: 'exited', id: 'c1', exit: { code: 1, oom: i === 4, tail: ['a', 'b', 'Error: boom'] } },
    });
    const restart = logs(a).filter((l) => l.event === 'restart-scheduled');
    t.is(restart.length, 1, 'one line per restart');
    // Besides, the diagnosis, only when it is new: the OOM kill of run 4.
    t.deepEqual(
      logs(a)
        .filter((l) => l.event !== 'restart-scheduled')
        .map((l) => l.event),
      i === 4 ? ['diagnosis'] : [],
    );
    delays.push((d.v.restartAt ?? 0) - now);
    t.is(d.state.phase, i >= 3 ? 'crashloop' : 'backoff');
    if (i === 4)
      t.regex(
        restart[0]!.msg,
        /container exited \(exit 1, OOM-killed\); restart 4 in 1m20s \(crash loop\); last log: Error: boom$/,
      );
    now = d.v.restartAt ?? now;
    d.at(now).tick();
    d.send({
      type: 'reconciled',
      id: 'c1',
      outcome: 'started',
      reason: 'stopped with the desired spec',
      startedAt: now,
    });
    now += 1000;
  }
  t.deepEqual(
    delays.map((x) => x / SEC),
    [10, 20, 40, 80, 160, 300, 300, 300],
  );
  t.is(d.v.totalRestarts, 8);
});

test('crash loop status line', (t) => {
  const d = new Driver().booted('c1');
  for (let i = 0; i < 4; i++) {
    d.send({ type: 'observed', seen: { kind: 'exited', id: 'c1', exit: { code: 1, oom: true, tail: [] } } });
    d.at(d.v.restartAt ?? 0).tick();
    d.send({ type: 'reconciled', id: 'c1', outcome: 'started', reason: '', startedAt: d.now });
  }
  d.send({ type: 'observed', seen: { kind: 'exited', id: 'c1', exit: { code: 1, oom: true, tail: [] } } });
  d.at(d.now + 40 * SEC);
  t.is(d.status(), 'crash loop: restart 5 in 2m (exit 1, OOM-killed)');
});

test('the restart count resets after resetAfter of serving', (t) => {
  const d = new Driver().booted('c1');
  d.send({ type: 'observed', seen: { kind: 'exited', id: 'c1', exit: { code: 1, oom: false, tail: [] } } });
  d.at(10 * SEC).tick();
  d.send({ type: 'reconciled', id: 'c1', outcome: 'started', reason: '', startedAt: 10 * SEC });
  d.serving();
  t.is(d.v.restarts, 1);
  t.is(wakeAt(d.state, S), 10 * SEC + 10 * SEC, 'probes come first');
  d.at(10 * SEC + 10 * MIN);
  const a = d.tick();
  t.is(d.v.restarts, 0);
  t.true(a.some((x) => x.type === 'persist'));
  t.is(d.v.totalRestarts, 1, 'the total is kept');
});

test('boot with a pending backoff from the last supervisor: waits, then restarts', (t) => {
  const d = new Driver().looked({
    persisted: { restarts: 4, totalRestarts: 9, restartAt: 60 * SEC, cause: 'exit 1' },
    seen: { kind: 'exited', id: 'c1', exit: { code: 1, oom: false, tail: [] } },
  });
  t.is(d.state.phase, 'crashloop');
  t.is(d.status(), 'crash loop: restart 4 in 1m (exit 1)');
  t.deepEqual(d.at(30 * SEC).tick(), []);
  t.deepEqual(types(d.at(60 * SEC).tick()), ['log', 'reconcile']);
  d.send({ type: 'reconciled', id: 'c1', outcome: 'started', reason: '', startedAt: 60 * SEC });
  d.send({ type: 'observed', seen: { kind: 'exited', id: 'c1', exit: { code: 1, oom: false, tail: [] } } });
  t.is(d.v.restarts, 5, 'the count went on from the persisted one');
});

test('boot finding a running container hands it to reconcile (adopt), even with a backoff pending', (t) => {
  const d = new Driver();
  d.send({ type: 'boot', persisted: { restarts: 2, totalRestarts: 2, restartAt: 60 * SEC } });
  t.deepEqual(d.send({ type: 'observed', seen: { kind: 'running', id: 'c1', startedAt: 0 } }), [
    { type: 'reconcile', gpuRuntime: true },
  ]);
});

test('our own restart does not count as an exit: a running container with our id is ignored', (t) => {
  const d = new Driver().booted('c1').serving();
  t.deepEqual(d.send({ type: 'observed', seen: { kind: 'running', id: 'c1', startedAt: 0 } }), []);
  t.is(d.state.phase, 'serving');
});

test('docker restart behind our back: a new load with its own budget, not a failure and not a second restart', (t) => {
  const d = new Driver().booted('c1').serving();
  d.at(5 * MIN);
  const a = d.send({ type: 'observed', seen: { kind: 'running', id: 'c1', startedAt: 5 * MIN - 200 } });
  t.deepEqual(
    logs(a).map((l) => l.level),
    ['warn'],
  );
  t.is(d.state.phase, 'loading');
  t.is(d.v.restarts, 0);
  t.is(d.v.startedAt, 5 * MIN - 200);
  d.tick();
  d.probe('startup', false, 'connection refused');
  t.is(d.state.phase, 'loading', 'refused while it loads is normal');
});

test('the event stream back while not waiting: look, in case an exit was missed', (t) => {
  const d = new Driver().booted('c1').serving();
  t.deepEqual(d.send({ type: 'engineBack' }), [{ type: 'observe' }]);
});

test('removed behind our back -> put back after the backoff; replaced by another -> reconcile at once', (t) => {
  const d = new Driver().booted('c1').serving();
  d.send({ type: 'observed', seen: { kind: 'absent' } });
  t.is(d.state.phase, 'backoff');
  t.is(d.v.cause, 'removed');
  const e = new Driver().booted('c1').serving();
  t.deepEqual(e.send({ type: 'observed', seen: { kind: 'running', id: 'c2', startedAt: 0 } }), [{ type: 'reconcile' }]);
});

test('stale probe results (an older run) are dropped', (t) => {
  const d = new Driver().booted('c1');
  const old = d.state.epoch;
  d.send({ type: 'observed', seen: { kind: 'exited', id: 'c1', exit: { code: 1, oom: false, tail: [] } } });
  const before = d.state;
  t.deepEqual(d.send({ type: 'probed', kind: 'startup', epoch: old, ok: true }), []);
  t.is(d.state, before);
});

test('Docker lost: one line, waiting; back: observe and reconcile (adopt)', (t) => {
  const d = new Driver().booted('c1').serving();
  const a = d.send({ type: 'engineLost', message: 'event stream ended' });
  t.deepEqual(
    logs(a).map((l) => l.event),
    ['docker-lost'],
  );
  t.deepEqual(d.send({ type: 'engineLost', message: 'again' }), [], 'no storm');
  t.is(d.status(), 'waiting for docker: event stream ended');
  t.deepEqual(d.send({ type: 'tick' }), []);
  t.deepEqual(types(d.send({ type: 'engineBack' })), ['observe']);
  const back = d.send({ type: 'observed', seen: { kind: 'running', id: 'c1', startedAt: 0 } });
  t.deepEqual(
    logs(back).map((l) => l.event),
    ['docker-back'],
    'the answer is what says Docker is back',
  );
  t.deepEqual(back.at(-1), { type: 'reconcile' });
});

test('engine unreachable at reconcile: wait, re-check each period, one line', (t) => {
  const d = new Driver().looked();
  const a = d.send({ type: 'reconcileFailed', kind: 'engine', message: 'ECONNREFUSED' });
  t.is(logs(a).length, 1);
  t.is(d.state.phase, 'waiting');
  t.deepEqual(d.at(10 * SEC).tick(), [{ type: 'reconcile' }]);
  t.is(d.state.phase, 'waiting', 'the phase and its age hold while re-checking');
  t.deepEqual(d.send({ type: 'reconcileFailed', kind: 'engine', message: 'still refused' }), []);
  d.send({ type: 'reconciled', id: 'c9', outcome: 'created', reason: '', startedAt: 20 * SEC });
  t.is(d.state.phase, 'loading');
  t.is(d.v.waitingFor, undefined);
});

const IMG = 'nvcr.io/nvidia/vllm:25.09-py3';

test('image missing: one pull, its progress in the status line, then a start at once', (t) => {
  const d = new Driver().looked();
  const a = d.send({
    type: 'reconcileFailed',
    kind: 'image',
    message: 'image nvcr.io/nvidia/vllm:25.09-py3 is not on this host',
  });
  t.deepEqual(
    a.filter((x) => x.type === 'pull'),
    [{ type: 'pull', image: 'nvcr.io/nvidia/vllm:25.09-py3' }],
  );
  t.is(wakeAt(d.state, S), undefined, 'no re-check while the pull runs');
  d.send({
    type: 'pullProgress',
    image: IMG,
    summary: { layers: 31, layersDone: 12, bytes: 3.2e9, totalBytes: 9.8e9 },
  });
  t.is(d.status(), 'waiting for image: pulling nvcr.io/nvidia/vllm:25.09-py3: 3.2 GB of 9.8 GB, 12 of 31 layers');
  t.deepEqual(
    d.send({ type: 'reconcileFailed', kind: 'image', message: 'again' }).filter((x) => x.type === 'pull'),
    [],
    'never two pulls',
  );
  const done = d.send({ type: 'pulled', image: IMG });
  t.deepEqual(
    logs(done).map((l) => l.event),
    ['image-pulled'],
  );
  t.deepEqual(done.at(-1), { type: 'reconcile' });
  t.is(d.state.phase, 'starting');
});

test(
  'pull failures: network errors back off and retry; not found and refused credentials wait long, with a clear ' +
    'line',
  (t) => {
    const d = new Driver().looked();
    d.send({ type: 'reconcileFailed', kind: 'image', message: 'missing' });
    const n1 = d.send(
      { type: 'pullFailed', image: IMG, message: 'dial tcp 127.0.0.1:5000: connect: connection refused' },
      0.5,
    );
    t.is(logs(n1)[0]?.level, 'warn');
    t.is(wakeAt(d.state, S), 10 * SEC, 'first retry after restart.initialDelay');
    t.deepEqual(d.at(10 * SEC).tick(), [{ type: 'reconcile' }]);
    d.send({ type: 'reconcileFailed', kind: 'image', message: 'missing' });
    d.send({ type: 'pullFailed', image: IMG, message: 'EOF' }, 0.5);
    t.is(wakeAt(d.state, S), 30 * SEC, 'then doubling');
    d.send({ type: 'reconcileFailed', kind: 'image', message: 'missing' });
    const nf = d.send({ type: 'pullFailed', image: IMG, message: 'manifest unknown' });
    t.is(logs(nf)[0]?.level, 'error');
    t.regex(d.status(), /does not exist in its registry \(manifest unknown\); check container.image; next try in 5m$/);
    d.send({ type: 'reconcileFailed', kind: 'image', message: 'missing' });
    d.send({ type: 'pullFailed', image: IMG, message: 'unauthorized: authentication required' });
    t.regex(d.status(), /refused access .*docker login nvcr.io/);
    t.deepEqual(
      d.send({ type: 'pullFailed', image: IMG, message: 'aborted', aborted: true }),
      [],
      'an aborted pull says nothing',
    );
  },
);

test('a start that Docker refuses is a failure with backoff', (t) => {
  const d = new Driver().looked();
  d.send({ type: 'reconcileFailed', kind: 'docker', message: 'docker start failed (HTTP 500): something odd' });
  t.is(d.state.phase, 'backoff');
  t.is(d.status(), 'backoff: restart 1 in 10s (start failed)');
});

test('a start refused because the port is taken: wait for the port, no restart loop', (t) => {
  const d = new Driver().looked();
  const a = d.send({
    type: 'reconcileFailed',
    kind: 'docker',
    message: 'docker start failed (HTTP 500): Bind for 0.0.0.0:8000 failed: port is already allocated',
  });
  t.is(d.state.phase, 'waiting');
  t.is(d.v.waitingFor, 'port');
  t.deepEqual(
    logs(a).map((l) => [l.level, l.event]),
    [
      ['error', 'diagnosis'],
      ['warn', 'waiting'],
    ],
  );
  t.is(d.v.restarts, 0, 'not counted as a restart');
  t.deepEqual(
    d.at(10 * SEC).tick(),
    [{ type: 'reconcile' }],
    're-checked each period (the preflight looks at the port)',
  );
});

test('shutdown: stop the container and exit 0; stopOnExit false leaves it running', (t) => {
  const d = new Driver().booted('c1').serving();
  t.deepEqual(types(d.send({ type: 'shutdown', signal: 'SIGTERM' })), ['log', 'stopContainer']);
  t.is(d.status(), 'stopping vllm-gpt-oss (up to 30s)');
  t.deepEqual(
    d.send({ type: 'observed', seen: { kind: 'exited', id: 'c1', exit: { code: 0, oom: false, tail: [] } } }),
    [],
    'our own stop is not a failure',
  );
  t.deepEqual(types(d.send({ type: 'containerStopped' })), ['log', 'exit']);
  t.is(d.state.phase, 'stopped');

  const e = new Driver({ ...S, stopOnExit: false }).booted('c1').serving();
  const a = e.send({ type: 'shutdown', signal: 'SIGTERM' });
  t.deepEqual(types(a), ['log', 'log', 'exit']);
  t.regex(logs(a)[1]!.msg, /leaving container vllm-gpt-oss running/);
});

test('shutdown while waiting with no container: exit at once', (t) => {
  const d = new Driver().looked();
  d.send({ type: 'reconcileFailed', kind: 'engine', message: 'down' });
  t.deepEqual(types(d.send({ type: 'shutdown', signal: 'SIGINT' })), ['log', 'log', 'exit']);
});

test('every phase has a one-line status', (t) => {
  const d = new Driver();
  t.is(d.status(), 'starting vllm-gpt-oss');
  const run = {
    containerId: 'c1',
    startedAt: 0,
    probes: { live: false, ready: false, servedOnce: false, failures: 0, deepFailures: 0, due: {}, inflight: {} },
  };
  const variants: Variant[] = [
    { phase: 'waiting', wait: { reason: 'docker', detail: '' } },
    { phase: 'starting', resync: false },
    ...(['loading', 'serving', 'unhealthy'] as const).map((phase) => ({ phase, run })),
    ...(['backoff', 'crashloop'] as const).map((phase) => ({ phase, restart: { at: 0 } })),
    { phase: 'stopping' },
    { phase: 'stopped' },
  ];
  for (const v of variants) {
    const phase = v.phase;
    const line = statusLine({ ...common(d.state), ...v }, 0, S);
    t.true(line.length > 0 && !line.includes('\n') && !line.includes('undefined'), `${phase}: ${line}`);
  }
});

test('reload: settings only -> in place; spec changed -> prepare first; rejected -> status says so', (t) => {
  const d = new Driver().booted('c1').serving();
  const a = d.reload({ specChanged: false, file: '/etc/gptoss/config.yaml' });
  t.deepEqual(types(a), ['log']);
  t.is(d.state.phase, 'serving');
  d.send({ type: 'configRejected', error: '/etc/gptoss/config.yaml:3:5: health.liveness.perod: unknown key' });
  t.is(
    d.status(),
    'config invalid: /etc/gptoss/config.yaml:3:5: health.liveness.perod: unknown key; serving gpt-oss-120b on port ' +
      '8000 for 0s',
  );
  const b = d.reload({ specChanged: true, file: '/etc/gptoss/config.yaml' });
  t.deepEqual(
    b.slice(1),
    [{ type: 'prepare', spec: S.specHash }],
    'the old container serves while the new spec is checked',
  );
  t.is(d.state.phase, 'serving');
  t.is(d.v.configError, undefined);
  // Not running (a backoff): nothing to keep serving, the new spec starts at once.
  const e = new Driver().booted('c1');
  e.send({ type: 'observed', seen: { kind: 'exited', id: 'c1', exit: { code: 1, oom: false, tail: [] } } });
  t.deepEqual(types(e.reload({ specChanged: true, file: 'f' })), ['log', 'reconcile']);
});

test('make before break: the new image is pulled and checked while the old one serves; a refusal keeps it', (t) => {
  const d = new Driver().booted('c1').serving();
  const image = S.image;
  const mark = d.actions.length;
  d.reload({ specChanged: true, file: 'f' });
  t.deepEqual(d.send({ type: 'prepared', spec: S.specHash, ok: false, pull: true }), [{ type: 'pull', image }]);
  d.send({ type: 'pullProgress', image, summary: { layers: 9, layersDone: 2, bytes: 3.1e9, totalBytes: 9.8e9 } });
  t.is(d.state.phase, 'serving');
  t.is(d.status(), `preparing: pulling ${image}: 3.1 GB of 9.8 GB, 2 of 9 layers; still serving the old container`);
  // Probes of the old container go on meanwhile.
  d.at(10 * SEC).tick();
  t.is(d.state.phase, 'serving');
  t.deepEqual(d.send({ type: 'pulled', image }).slice(1), [{ type: 'prepare', spec: S.specHash }]);
  // The encodings went missing meanwhile: refused, the old one serves on, looked at again each period.
  const r = d.send({
    type: 'prepared',
    spec: S.specHash,
    ok: false,
    message: 'o200k_base.tiktoken is missing',
    fix: 'fetch-encodings',
  });
  t.is(logs(r)[0]?.level, 'error');
  t.regex(
    logs(r)[0]?.msg ?? '',
    /cannot start: o200k_base\.tiktoken is missing; fix: fetch-encodings; the old container keeps serving/,
  );
  t.is(d.state.phase, 'serving');
  t.regex(d.status(), /^serving gpt-oss-120b on port 8000 for 10s; new spec refused: o200k_base\.tiktoken is missing$/);
  t.false(
    d.actions.slice(mark).some((a) => a.type === 'reconcile' || a.type === 'stopContainer'),
    'nothing stopped',
  );
  t.deepEqual(
    d
      .at(20 * SEC)
      .tick()
      .filter((a) => a.type === 'prepare'),
    [{ type: 'prepare', spec: S.specHash }],
  );
  t.deepEqual(
    logs(d.send({ type: 'prepared', spec: S.specHash, ok: false, message: 'o200k_base.tiktoken is missing' })),
    [],
    'said once',
  );
  // Ready: now (and only now) the old one is replaced.
  d.at(30 * SEC).tick();
  const go = d.send({ type: 'prepared', spec: S.specHash, ok: true });
  t.deepEqual(
    go.filter((a) => a.type === 'reconcile'),
    [{ type: 'reconcile', drain: DRAIN }],
    'the gate drains the old one first',
  );
  t.is(d.state.phase, 'starting');
});

test('make before break: a failed pull of the new image is retried with backoff, the old one serving', (t) => {
  const d = new Driver().booted('c1').serving();
  d.reload({ specChanged: true, file: 'f' });
  d.send({ type: 'prepared', spec: S.specHash, ok: false, pull: true });
  const a = d.send({ type: 'pullFailed', image: S.image, message: 'connection refused' });
  t.regex(
    logs(a)[0]?.msg ?? '',
    /pulling .* failed \(connection refused\); the old container keeps serving \(checked again every 10s/,
  );
  t.is(d.state.phase, 'serving');
  t.is(wakeAt(d.state, S), 10 * SEC);
});

test('handover (SIGUSR2): exit 75, the container left running', (t) => {
  const d = new Driver().booted('c1').serving();
  const a = d.send({ type: 'shutdown', signal: 'SIGUSR2', handover: true });
  t.deepEqual(a.at(-1), { type: 'exit', code: 75 });
  t.false(a.some((x) => x.type === 'stopContainer'));
});

test('an adopted container gets the whole start-up budget from now, however old it is', (t) => {
  const d = new Driver().at(3 * 60 * MIN).booted('c1', { outcome: 'adopted', startedAt: 0 });
  d.tick();
  d.probe('startup', false, 'timeout after 5s');
  t.is(d.state.phase, 'loading', 'one slow probe after adoption is not a failed start');
  t.is(d.v.resync, false);
});

test('Docker lost: re-checked each period even if the event stream never says it is back', (t) => {
  const d = new Driver().booted('c1').serving();
  d.send({ type: 'engineLost', message: 'inspecting: HTTP 500' });
  t.is(wakeAt(d.state, S), 10 * SEC);
  t.deepEqual(d.at(10 * SEC).tick(), [{ type: 'observe' }], 'look first: a pending backoff still holds');
  d.send({ type: 'engineLost', message: 'still down' });
  t.is(wakeAt(d.state, S), 20 * SEC, 're-armed');
});

test('a renamed container: the old one is stopped first', (t) => {
  const d = new Driver().booted('c1').serving();
  const a = d.reload({ specChanged: true, renamed: true, file: 'f' });
  t.deepEqual(a.at(-1), { type: 'reconcile', stopFirst: 'c1', drain: DRAIN });
});

const exited = (id: string, tail: string[], code = 1) => ({
  type: 'observed' as const,
  seen: { kind: 'exited' as const, id, exit: { code, oom: false, tail } },
});
const HARMONY =
  'openai_harmony.HarmonyError: error downloading or loading vocab file: failed to download or load vocab file';

test('a preflight failure waits, re-checks each period, and starts at once when the files appear', (t) => {
  const d = new Driver().looked();
  const a = d.send({
    type: 'prereqMissing',
    waitFor: 'encodings',
    message: '/vllm/encodings/o200k_base.tiktoken is missing',
    fix: 'gptoss-supervisor fetch-encodings',
  });
  t.deepEqual(
    logs(a).map((l) => l.msg),
    ['waiting for encodings: /vllm/encodings/o200k_base.tiktoken is missing; fix: gptoss-supervisor fetch-encodings'],
  );
  t.is(d.status(), 'waiting for encodings: /vllm/encodings/o200k_base.tiktoken is missing');
  t.is(d.v.restarts, 0);
  t.deepEqual(d.at(10 * SEC).tick(), [{ type: 'reconcile' }]);
  t.deepEqual(
    d.send({ type: 'prereqMissing', waitFor: 'encodings', message: 'still missing' }),
    [],
    'no new line while the wait goes on',
  );
  d.at(11 * SEC);
  t.deepEqual(
    d.send({ type: 'encodingsChanged', ok: false, detail: 'o200k_base.tiktoken is damaged' }),
    [],
    'a partial download does not start anything',
  );
  t.deepEqual(
    d.send({ type: 'encodingsChanged', ok: true, fingerprint: 'f1', detail: 'ok' }),
    [{ type: 'reconcile' }],
    'complete and verified: at once',
  );
});

test('HarmonyError exit: diagnosed at err, no restart loop, waits for the encodings', (t) => {
  const d = new Driver().booted('c1');
  const a = d.send(exited('c1', ['Traceback (most recent call last):', HARMONY]));
  t.deepEqual(
    logs(a).map((l) => [l.level, l.event]),
    [
      ['error', 'diagnosis'],
      ['warn', 'waiting'],
    ],
  );
  t.is(logs(a)[0]?.fields?.['diagnosis'], 'encodings');
  t.is(d.state.phase, 'waiting');
  t.is(d.v.waitingFor, 'encodings');
  t.is(d.v.diagnosis?.code, 'encodings');
  t.is(d.v.restarts, 0, 'no restart counted');
  t.true(a.some((x) => x.type === 'persist'));
  t.deepEqual(d.send({ type: 'encodingsChanged', ok: true, fingerprint: 'f', detail: 'ok' }), [{ type: 'reconcile' }]);
});

test('token refused (401): waits; the same token and model are never tried again; a new token tries at once', (t) => {
  const d = new Driver({ ...S, tokenFingerprint: 'tok1' }).booted('c1', {
    inputs: { token: 'tok1', model: 'openai/gpt-oss-120b', encodings: 'e' },
  });
  d.send(
    exited('c1', [
      'huggingface_hub.errors.GatedRepoError: 401 Client Error: Unauthorized for url: x',
      'Invalid credentials in Authorization header',
    ]),
  );
  t.is(d.v.waitingFor, 'hf-token');
  t.regex(d.status(), /^waiting for a valid HF token: Hugging Face refused the HF token/);
  t.deepEqual(
    d.v.blocked,
    { token: 'tok1', model: 'openai/gpt-oss-120b', encodings: 'e' },
    'the refused inputs are remembered',
  );
  t.is(wakeAt(d.state, d.t), undefined, 'no periodic retry: the same token would be refused again');
  const same = d.reload({ specChanged: false, file: '/etc/gptoss/config.yaml' });
  t.deepEqual(types(same), ['log'], 'a reload that leaves token and model as they were starts nothing');
  t.is(d.v.waitingFor, 'hf-token');
  d.t = { ...d.t, tokenFingerprint: 'tok2' };
  const a = d.reload({
    specChanged: false,
    file: '/etc/gptoss/config.yaml',
    what: 'HF token (file /etc/gptoss/hf_token)',
  });
  t.regex(logs(a)[0]?.msg ?? '', /^HF token \(file \/etc\/gptoss\/hf_token\) reloaded/);
  t.deepEqual(a.at(-1), { type: 'reconcile' });
});

test('model not found (404) waits for a config change; the edit retries at once', (t) => {
  const d = new Driver().booted('c1');
  d.send(
    exited('c1', [
      'huggingface_hub.errors.RepositoryNotFoundError: 404 Client Error. Repository Not Found for url: x.',
    ]),
  );
  t.is(d.v.waitingFor, 'model');
  t.deepEqual(
    d.reload({ specChanged: true, file: 'f' }).filter((x) => x.type === 'reconcile'),
    [],
    'the same model.id is not tried again',
  );
  d.t = { ...d.t, modelId: 'openai/gpt-oss-20b' };
  const a = d.reload({ specChanged: true, file: 'f' });
  t.is(a.at(-1)?.type, 'reconcile');
});

test('bad vllm flags wait for a config change only: no periodic retry', (t) => {
  const d = new Driver().booted('c1');
  d.send(exited('c1', ['vllm serve: error: unrecognized arguments: --bogus'], 2));
  t.is(d.v.waitingFor, 'config');
  t.is(wakeAt(d.state, S), undefined);
  t.is(d.reload({ specChanged: true, file: 'f' }).at(-1)?.type, 'reconcile');
});

test('free GPU memory too low at start-up: restart with backoff, the diagnosis says what fits', (t) => {
  const d = new Driver().booted('c1');
  const a = d.send(
    exited('c1', [
      'ValueError: Free memory on device (39.6/119.7 GiB) on startup is less than desired GPU memory utilization ' +
        '(0.85, 101.74 GiB). Decrease GPU memory utilization or reduce GPU memory used by other processes.',
    ]),
  );
  t.is(d.state.phase, 'backoff');
  t.regex(logs(a)[0]?.msg ?? '', /^diagnosis gpu-memory: .*gpuMemoryUtilization to 0\.32/);
  t.is(d.status(), 'backoff: restart 1 in 10s (exit 1, gpu-memory)');
});

test('the encodings change while serving: restart to load them (when they really changed), or keep serving', (t) => {
  const d = new Driver().booted('c1', { inputs: { model: 'm', encodings: 'f1' } }).serving();
  t.deepEqual(
    d.send({ type: 'encodingsChanged', ok: true, fingerprint: 'f1', detail: 'ok' }),
    [],
    'touched, same content: nothing',
  );
  const gone = d.send({
    type: 'encodingsChanged',
    ok: false,
    detail: '/vllm/encodings/o200k_base.tiktoken is missing',
  });
  t.deepEqual(
    logs(gone).map((l) => [l.level, l.event]),
    [['warn', 'encodings-changed']],
  );
  t.is(d.state.phase, 'serving', 'removed while serving: keep serving');
  const r = d.send({ type: 'encodingsChanged', ok: true, fingerprint: 'f2', detail: 'ok' });
  t.deepEqual(
    r.at(-1),
    { type: 'reconcile', stopFirst: 'c1', drain: DRAIN },
    'graceful stop, then start the same container',
  );
  t.is(d.v.restarts, 0, 'not a failure');
  const off = new Driver({ ...S, restartOnEncodings: false })
    .booted('c1', { inputs: { model: 'm', encodings: 'f1' } })
    .serving();
  t.deepEqual(
    types(off.send({ type: 'encodingsChanged', ok: true, fingerprint: 'f2', detail: 'ok' })),
    ['log'],
    'restartOnChange false: a warning only',
  );
});

test('a config edit while waiting for memory or the port re-checks at once', (t) => {
  const d = new Driver().looked();
  d.send({
    type: 'prereqMissing',
    waitFor: 'gpu-memory',
    message: '36.0 of 79.6 GiB free on GPU 0, 67.7 GiB needed, held by python3 (pid 438)',
  });
  t.is(
    d.status(),
    'waiting for GPU memory: 36.0 of 79.6 GiB free on GPU 0, 67.7 GiB needed, held by python3 (pid 438)',
  );
  t.is(d.reload({ specChanged: true, file: 'f' }).at(-1)?.type, 'reconcile');
});

test('scheduled deep probe: only while serving, never two at once; failures in a row restart', (t) => {
  const d = new Driver().booted('c1');
  t.deepEqual(types(d.send({ type: 'scheduled', job: 'deepProbe' })), ['log'], 'skipped while loading');
  d.serving();
  const a = d.send({ type: 'scheduled', job: 'deepProbe' });
  t.deepEqual(a, [{ type: 'probe', kind: 'deep', epoch: d.state.epoch, timeout: 60 * SEC }]);
  t.deepEqual(types(d.send({ type: 'scheduled', job: 'deepProbe' })), ['log'], 'not while one runs');
  t.deepEqual(
    types(d.send({ type: 'scheduled', job: 'maintenanceRestart' })),
    ['log'],
    'no maintenance restart during a deep probe',
  );
  d.at(MIN);
  const f1 = d.send({
    type: 'probed',
    kind: 'deep',
    epoch: d.state.epoch,
    ok: false,
    error: 'chat completion: HTTP 500',
  });
  t.deepEqual(
    logs(f1).map((l) => l.msg),
    ['deep probe failed (1 of 2): chat completion: HTTP 500'],
  );
  t.deepEqual(d.v.lastDeep, { at: MIN, ok: false, detail: 'chat completion: HTTP 500' });
  t.is(d.state.phase, 'serving');
  d.send({ type: 'scheduled', job: 'deepProbe' });
  d.send({ type: 'probed', kind: 'deep', epoch: d.state.epoch, ok: false, error: 'chat completion: HTTP 500' });
  t.is(d.state.phase, 'backoff');
  t.is(d.v.stopFirst, 'c1', 'the hung or broken container is stopped first');
});

test('scheduled maintenance restart: graceful, not a failure, at most one a day', (t) => {
  const d = new Driver().booted('c1').serving();
  d.at(3 * MIN);
  const a = d.send({ type: 'scheduled', job: 'maintenanceRestart' });
  t.deepEqual(a.at(-1), { type: 'reconcile', stopFirst: 'c1', drain: DRAIN });
  t.is(d.v.restarts, 0);
  t.is(d.v.lastMaintenance, 3 * MIN);
  t.true(
    a.some((x) => x.type === 'persist'),
    'remembered across supervisor restarts',
  );
  d.send({ type: 'reconciled', id: 'c1', outcome: 'started', reason: '', startedAt: 3 * MIN });
  d.serving();
  const skip = d.at(20 * 60 * MIN).send({ type: 'scheduled', job: 'maintenanceRestart' });
  t.regex(logs(skip)[0]?.msg ?? '', /skipped: the last one was 19h57m ago \(at most one a day\)/);
  t.is(
    d
      .at(24 * 60 * MIN + 3 * MIN)
      .send({ type: 'scheduled', job: 'maintenanceRestart' })
      .at(-1)?.type,
    'reconcile',
  );
});

test('an operator restart (D-Bus Restart()): graceful, not counted', (t) => {
  const d = new Driver().booted('c1').serving();
  const a = d.send({ type: 'restartRequested', by: 'D-Bus Restart()' });
  t.regex(logs(a)[0]?.msg ?? '', /as asked by D-Bus Restart\(\)/);
  t.deepEqual(a.at(-1), { type: 'reconcile', stopFirst: 'c1', drain: DRAIN });
  t.is(d.v.restarts, 0);
});

test('the restart line quotes the log lines that say what went wrong, else the last ones', (t) => {
  const d = new Driver().booted('c1');
  const a = d.send(
    exited('c1', [
      'ERROR 11-25 [standin] STANDIN_FAIL=exit:3: exiting with code 3',
      'INFO banner 1',
      'INFO banner 2',
      'INFO banner 3',
    ]),
  );
  t.regex(
    logs(a).find((l) => l.event === 'restart-scheduled')?.msg ?? '',
    /last log: ERROR 11-25 \[standin\] STANDIN_FAIL=exit:3: exiting with code 3$/,
  );
  const e = new Driver().booted('c1');
  const b = e.send(exited('c1', ['one', 'two', 'three', 'four']));
  t.regex(logs(b).find((l) => l.event === 'restart-scheduled')?.msg ?? '', /last log: two \| three \| four$/);
});

test('a deep probe that passes is saved, so a restarted supervisor does not show an old failure', (t) => {
  const d = new Driver().booted('c1').serving();
  d.send({ type: 'scheduled', job: 'deepProbe' });
  d.at(MIN).send({ type: 'probed', kind: 'deep', epoch: d.state.epoch, ok: false, error: 'chat completion: HTTP 500' });
  d.send({ type: 'scheduled', job: 'deepProbe' });
  const pass = d
    .at(2 * MIN)
    .send({ type: 'probed', kind: 'deep', epoch: d.state.epoch, ok: true, detail: 'answered in 1.2s' });
  const saved = pass.filter((a): a is Extract<Action, { type: 'persist' }> => a.type === 'persist');
  t.is(saved.length, 1, 'the pass is written to state.json');
  t.deepEqual(saved[0]?.record.lastDeep, { at: 2 * MIN, ok: true, detail: 'answered in 1.2s' });
  const next = new Driver();
  next.send({ type: 'boot', persisted: saved[0]!.record });
  t.deepEqual(next.v.lastDeep, { at: 2 * MIN, ok: true, detail: 'answered in 1.2s' });
});

test('a state record applies only to the container it describes (name and spec)', (t) => {
  const mine = {
    restarts: 4,
    totalRestarts: 9,
    restartAt: MIN,
    cause: 'exit 1',
    container: { name: S.name, spec: S.specHash },
  };
  const d = new Driver();
  d.send({ type: 'boot', persisted: mine });
  t.is(d.v.restarts, 4, 'its own record: counts carry on');
  for (const [what, container] of [
    ['another name', { name: 'vllm-other', spec: S.specHash }],
    ['another spec', { name: S.name, spec: 'f'.repeat(64) }],
  ] as const) {
    const e = new Driver();
    const a = e.send({ type: 'boot', persisted: { ...mine, container } });
    t.is(e.v.restarts, 0, `${what}: counts start from zero`);
    t.is(e.v.totalRestarts, 0, what);
    t.is(e.v.cause, undefined, what);
    t.deepEqual(
      logs(a).map((l) => l.event),
      ['state-record'],
      `${what}: said once`,
    );
    e.send({ type: 'observed', seen: { kind: 'absent' } });
    t.is(e.state.phase, 'starting', `${what}: no backoff owed`);
  }
  const saved = d.send({
    type: 'observed',
    seen: { kind: 'exited', id: 'c1', exit: { code: 1, oom: false, tail: [] } },
  });
  t.is(saved.length, 0, 'a pending backoff holds');
  const written = new Driver().booted('c1');
  const f = written.send({
    type: 'observed',
    seen: { kind: 'exited', id: 'c1', exit: { code: 1, oom: false, tail: [] } },
  });
  const rec = f.find((a): a is Extract<Action, { type: 'persist' }> => a.type === 'persist')?.record;
  t.deepEqual(rec?.container, { name: S.name, spec: S.specHash }, 'each record names its container');
});

test('restart budget: a failure more than it allows -> failed, no restart; a config change lifts it', (t) => {
  const d = new Driver({ ...S, budget: { count: 3, window: 60 * MIN } }).booted('c1');
  const exit = (id: string) =>
    d.send({ type: 'observed', seen: { kind: 'exited', id, exit: { code: 1, oom: false, tail: [] } } });
  for (let i = 1; i <= 3; i++) {
    exit(`c${i}`);
    t.is(d.state.phase, i >= 3 ? 'crashloop' : 'backoff', `failure ${i}`);
    d.at(d.now + 10 * MIN).tick();
    d.send({ type: 'reconciled', id: `c${i + 1}`, outcome: 'started', reason: 'x', startedAt: d.now });
  }
  const a = exit('c4');
  t.is(d.state.phase, 'failed');
  const said = logs(a).find((l) => l.event === 'restart-budget');
  t.is(said?.level, 'error');
  t.regex(said?.msg ?? '', /restart budget spent \(3 restarts within 1h\): not restarting .* until the config changes/);
  t.regex(d.status(), /^failed: restart budget spent \(3 restarts within 1h\); last: exit 1; next try in 30m/);
  t.deepEqual(
    a.filter((x) => x.type === 'persist').map((x) => (x as { record: { failedUntil?: number } }).record.failedUntil),
    [60 * MIN],
  );
  // Nothing restarts while it holds.
  t.deepEqual(d.at(59 * MIN).tick(), []);
  t.is(wakeAt(d.state, S), 60 * MIN);
  // A config change lifts it at once.
  const c = d.reload({ specChanged: false, file: 'f' });
  t.deepEqual(
    c.filter((x) => x.type === 'reconcile'),
    [{ type: 'reconcile' }],
  );
  t.deepEqual(d.state.history.failures, []);
});

test('restart budget: its window passing restarts; an operator restart lifts it; a new supervisor keeps it', (t) => {
  const B = { ...S, budget: { count: 1, window: 10 * MIN } };
  const d = new Driver(B).booted('c1');
  d.send({ type: 'observed', seen: { kind: 'exited', id: 'c1', exit: { code: 1, oom: false, tail: [] } } });
  d.at(1 * MIN).tick();
  d.send({ type: 'reconciled', id: 'c2', outcome: 'started', reason: 'x', startedAt: d.now });
  d.send({ type: 'observed', seen: { kind: 'exited', id: 'c2', exit: { code: 1, oom: false, tail: [] } } });
  t.is(d.state.phase, 'failed');
  t.is(wakeAt(d.state, B), 10 * MIN, 'when the first failure leaves the window');
  t.deepEqual(
    d
      .at(10 * MIN)
      .tick()
      .filter((x) => x.type === 'reconcile'),
    [{ type: 'reconcile' }],
  );
  // A supervisor started while it holds: still failed.
  const e = new Driver(B).at(5 * MIN);
  e.send({
    type: 'boot',
    persisted: { restarts: 2, totalRestarts: 2, failedUntil: 10 * MIN, container: { name: B.name, spec: B.specHash } },
  });
  t.is(e.state.phase, 'failed');
  const r = e.send({ type: 'restartRequested', by: 'gptoss-supervisor restart' });
  t.deepEqual(
    r.filter((x) => x.type === 'reconcile'),
    [{ type: 'reconcile', gpuRuntime: true }],
  );
});

test('each wait looks again on its own clock: waits.recheck, waits.gpuRuntimeRecheck, waits.pullRetry', (t) => {
  // Every clock different from the others and from the keys they once borrowed (startup.period, maxDelay).
  const W: typeof S = {
    ...S,
    startupPeriod: 3 * SEC,
    backoff: { ...S.backoff, maxDelay: 17 * MIN },
    recheck: 7 * SEC,
    gpuRuntimeRecheck: 11 * MIN,
    pullRetry: 13 * MIN,
  };
  const d = new Driver(W).looked();
  d.send({ type: 'prereqMissing', waitFor: 'port', message: 'port 8000 is taken' });
  t.is(wakeAt(d.state, W), 7 * SEC, 'a missing prerequisite: waits.recheck');
  d.at(7 * SEC).tick();
  d.send({ type: 'prereqMissing', waitFor: 'gpu-runtime', message: 'no nvidia runtime' });
  t.is(wakeAt(d.state, W), 7 * SEC + 11 * MIN, 'no GPU runtime: waits.gpuRuntimeRecheck');
  d.send({ type: 'reconcileFailed', kind: 'image', message: 'missing' });
  d.send({ type: 'pullFailed', image: W.image, message: 'manifest unknown' });
  t.is(wakeAt(d.state, W), 7 * SEC + 13 * MIN, 'a pull refused for a person: waits.pullRetry');
  t.regex(d.status(), /next try in 13m$/);
});

test('only the first reconcile of a supervisor looks at the GPU runtime', (t) => {
  const d = new Driver().booted('c1').serving();
  d.send({ type: 'observed', seen: { kind: 'exited', id: 'c1', exit: { code: 1, oom: false, tail: [] } } });
  const again = d
    .at(MIN)
    .tick()
    .filter((a) => a.type === 'reconcile');
  t.deepEqual(again, [{ type: 'reconcile' }]);
});

test('a config change: the machine tells a new spec and a new name from the settings it had', (t) => {
  const d = new Driver().booted('c1').serving();
  const same = d.reload({ specChanged: false });
  t.deepEqual(types(same), ['log'], 'same name and spec: applied in place');
  t.regex(logs(same)[0]?.msg ?? '', /container untouched/);
  const spec = d.reload({ specChanged: true });
  t.deepEqual(types(spec), ['log', 'prepare'], 'a new spec while serving: make before break');
  const e = new Driver().booted('c1').serving();
  const renamed = e.reload({ specChanged: false, renamed: true });
  t.regex(logs(renamed)[0]?.msg ?? '', /container\.name changed from vllm-gpt-oss-before to vllm-gpt-oss/);
  t.deepEqual(
    renamed.at(-1),
    { type: 'reconcile', stopFirst: 'c1', drain: DRAIN },
    'the old one holds the port: stopped first',
  );
});
