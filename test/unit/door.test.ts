// The front door's policy and orders, as plain data: what a request gets in each state, what the
// gate is told, what clients experienced over a window, and when that is an alert.
import test from 'ava';
import { doorView } from '../../src/core/machine/door.js';
import type { DoorView, RequestRecord } from '../../src/core/model/door.js';
import { admit, holdExpired, retryAfter, unauthorized } from '../../src/core/rules/door.js';
import { RequestStats, sloAlert } from '../../src/core/rules/requests.js';
import { Driver, MIN, S, SEC } from '../helpers/driver.js';

const T = 1_800_000_000_000;
const view = (over: Partial<DoorView> = {}): DoorView => ({
  open: false,
  holdable: true,
  message: 'gpt-oss-120b is loading: compiling (torch.compile)',
  code: 'model_loading',
  holdTimeout: 30 * SEC,
  maxHeld: 2,
  drainTimeout: 60 * SEC,
  maxBodySize: 1024,
  keys: [],
  ...over,
});

test('admission: open forwards; closed holds for the hold; each reason to answer at once, with Retry-After', (t) => {
  t.deepEqual(admit(view({ open: true }), T, 0), { kind: 'forward' });
  t.deepEqual(admit(view(), T, 0), { kind: 'hold', until: T + 30 * SEC });
  t.deepEqual(admit(view({ eta: T + 20 * SEC }), T, 0), { kind: 'hold', until: T + 30 * SEC }, 'ready within the hold');
  const late = admit(view({ eta: T + 250_500 }), T, 0);
  t.like(late, { kind: 'answer', status: 503, retryAfter: 251 });
  if (late.kind === 'answer')
    t.deepEqual(late.body, {
      error: {
        message: 'gpt-oss-120b is loading: compiling (torch.compile)',
        type: 'service_unavailable',
        param: null,
        code: 'model_loading',
      },
    });
  const operator = admit(
    view({ holdable: false, code: 'model_unavailable', message: 'waiting for a valid HF token' }),
    T,
    0,
  );
  t.like(operator, { kind: 'answer', status: 503, retryAfter: 60 });
  const full = admit(view(), T, 2);
  t.like(full, { kind: 'answer', status: 503, retryAfter: 5 });
  if (full.kind === 'answer') t.regex(full.body.error.message, /2 requests are already waiting$/);
  t.like(admit(view({ holdTimeout: 0 }), T, 0), { kind: 'answer', status: 503 }, 'no hold: answered at once');
  t.like(holdExpired(view({ eta: T + 4000 }), T), { kind: 'answer', status: 503, retryAfter: 4 });
  t.like(holdExpired(undefined, T), { kind: 'answer', status: 503, retryAfter: 5 });
  t.is(retryAfter(view({ eta: T - 5000 }), T, 9), 1, 'an ETA already passed: try again at once');
  t.like(unauthorized(), { kind: 'answer', status: 401, body: { error: { code: 'invalid_api_key' } } });
});

const orders = (d: Driver) => doorView(d.state, d.t, d.now, ['k'])!;

test("the door's orders follow the state: loading, serving open, a failure restarting, an operator's wait", (t) => {
  const d = new Driver().at(T).booted('c1', { upstream: { host: '127.0.0.1', port: 40123 } });
  let v = orders(d);
  t.like(v, { open: false, holdable: true, code: 'model_loading', run: `c1@${T}`, keys: ['k'] });
  t.deepEqual(v.upstream, { host: '127.0.0.1', port: 40123 });
  t.is(v.eta, undefined, 'a first load: no ETA');
  t.regex(v.message, /^gpt-oss-120b is loading: starting vLLM$/);
  d.at(T + 2 * MIN).serving();
  v = orders(d);
  t.like(v, { open: true, message: '' });
  // A failure: restarting, and the last load (2 min) is what the next one should take.
  d.send({ type: 'observed', seen: { kind: 'exited', id: 'c1', exit: { code: 137, oom: false, tail: [] } } });
  v = orders(d);
  t.like(v, { open: false, holdable: true, code: 'model_restarting' });
  t.is(v.eta, (d.state.phase === 'backoff' ? d.state.restart.at : 0) + 2 * MIN);
  t.regex(v.message, /^gpt-oss-120b is restarting after a failure \(exit 137\), ready in about 2m\d+s$/);
  t.is(v.run, undefined, 'no run behind the door');
  // A wait only an operator ends: nothing to hold for.
  d.at(T + 3 * MIN).tick();
  d.send({ type: 'prereqMissing', waitFor: 'hf-token', message: 'refused' });
  t.like(orders(d), { open: false, holdable: false, code: 'model_unavailable' });
  t.regex(orders(d).message, /waiting for a valid HF token$/);
  // Docker away: it comes back by itself.
  d.send({ type: 'engineLost', message: 'gone' });
  t.like(orders(d), { holdable: true });
  const { gate: _g, ...noGate } = S;
  d.t = noGate;
  t.is(doorView(d.state, d.t, d.now, []), undefined, 'gate.enabled false: no orders');
  t.is(MIN, 60 * SEC);
});

const rec = (outcome: RequestRecord['outcome'], at: number, ttftMs?: number): RequestRecord => ({
  outcome,
  ms: 100,
  at,
  ...(ttftMs !== undefined ? { ttftMs } : {}),
});

test('what clients experienced: answered well over those that count, time to first token p95, a window', (t) => {
  const r = new RequestStats();
  r.add([
    ...Array.from({ length: 18 }, (_, i) => rec('ok', T + i, 80)),
    rec('replayed', T, 2500),
    rec('cut', T),
    rec('client_error', T),
    rec('client_error', T),
  ]);
  const s = r.summary(T + 1000);
  t.is(s.counted, 20, 'client errors count neither way');
  t.is(s.successRate, 19 / 20);
  // 19 first bytes, 18 within 100 ms (94.7%): the 95th percentile is the slow one's bucket.
  t.is(s.ttftP95, 3000);
  r.add([rec('ok', T, 90)]);
  t.is(r.summary(T + 1000).ttftP95, 100, 'one more fast one: 19 of 20 within 100 ms');
  r.add([rec('engine_error', T + 30 * MIN)]);
  t.is(r.summary(T + 31 * MIN, 10 * MIN).counted, 1, 'a 10-minute window sees only the last one');
  t.is(r.summary(T + 2 * 60 * MIN).counted, 0, 'an hour later, nothing is kept');
});

test('the slo alert: under the target with enough requests, once a window; never on too few', (t) => {
  const slo = { window: 10 * MIN, successRate: 0.99 };
  const few = sloAlert({ counted: 5, successRate: 0.6 }, slo, T, 'gpt-oss-120b');
  t.is(few, undefined);
  t.is(sloAlert({ counted: 100, successRate: 0.995 }, slo, T, 'gpt-oss-120b'), undefined);
  const a = sloAlert({ counted: 100, successRate: 0.9 }, slo, T, 'gpt-oss-120b');
  t.like(a, { event: 'slo', trouble: true, title: 'gpt-oss-120b: 90.0% of requests answered well (target 99.0%)' });
  t.is(sloAlert({ counted: 100, successRate: 0.8 }, slo, T + MIN, 'x')?.key, a?.key, 'the same window: the same key');
  t.not(sloAlert({ counted: 100, successRate: 0.8 }, slo, T + 11 * MIN, 'x')?.key, a?.key);
});
