// Rollback in the pure machine: the last good spec, a new spec on trial, what sends it back, and what does not.
import test from 'ava';
import type { Action, Persisted } from '../../src/core/model/events.js';
import type { RanSpec } from '../../src/core/model/rollback.js';
import { isRunning } from '../../src/core/model/state.js';
import { persisted } from '../../src/core/model/state.js';
import { checkRecord } from '../../src/reader/record.js';
import { specSourceOf } from '../../src/config/spec-source.js';
import { configSchema, defaultConfig } from '../../src/config/schema.js';
import { Driver, MIN, S, SEC } from '../helpers/driver.js';

/** A real time: the state record takes only times of this century. */
const T0 = Date.UTC(2026, 11, 4);

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'c'.repeat(64);
/** The hash of the spec a rollback to A runs (its image by digest: another hash). */
const R = 'f'.repeat(64);
const source = specSourceOf(defaultConfig());
const ran = (hash: string, restores?: string): RanSpec => ({
  hash,
  image: 'nvcr.io/nvidia/vllm:25.09-py3',
  imageId: `sha256:${hash}`,
  source,
  ...(restores ? { restores } : {}),
});
const KV_LINE =
  "ValueError: To serve at least one request with the models's max seq len (65536), (4.54 GiB KV cache is " +
  'needed, which is larger than the available KV cache memory (2.82 GiB). Based on the available memory, the ' +
  'estimated maximum model length is 40000. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` ' +
  'when initializing the engine.';

const logs = (as: Action[], event?: string) =>
  as.flatMap((a) => (a.type === 'log' && (!event || a.event === event) ? [a] : []));
const has = (as: Action[], type: Action['type']) => as.some((a) => a.type === type);

/** A run of `spec` (container `id`) created now, through to serving. */
function run(d: Driver, id: string, spec: RanSpec): Driver {
  d.send({ type: 'reconciled', id, outcome: 'created', reason: 'no container', startedAt: d.now, spec });
  return d.serving();
}

/** A serving through its canary window: A is the last known good. */
function goodA(): Driver {
  const d = new Driver({ ...S, specHash: A, configSpec: A }, T0);
  d.looked();
  run(d, 'c1', ran(A));
  d.at(d.now + 10 * MIN);
  d.probe('liveness', true);
  return d;
}

/** A good, then the config changed to B: made before break, B created and loading. */
function changedToB(d = goodA()): Driver {
  d.t = { ...d.t, specHash: B, configSpec: B };
  d.send({ type: 'configApplied', file: '/etc/gptoss/config.yaml', previous: { name: d.t.name, specHash: A } });
  d.send({ type: 'prepared', spec: B, ok: true });
  d.send({
    type: 'reconciled',
    id: 'c2',
    outcome: 'recreated',
    reason: 'spec changed',
    startedAt: d.now,
    spec: ran(B),
  });
  return d;
}

const exit = (d: Driver, id: string, code: number, tail: string[]) =>
  d.send({ type: 'observed', seen: { kind: 'exited', id, exit: { code, oom: false, tail } } });

/**
 * What the shell does once a rollback is in force: its settings are the good spec's (another hash), the
 * config's stays.
 */
const asShell = (d: Driver) =>
  (d.t = { ...d.t, specHash: R, configSpec: d.state.history.rollback?.from ?? d.t.configSpec });

test('a spec that serves through the canary window becomes the last known good; only then', (t) => {
  const d = new Driver({ ...S, specHash: A, configSpec: A });
  d.looked();
  run(d, 'c1', ran(A));
  d.at(d.now + 10 * MIN - SEC);
  d.probe('liveness', true);
  t.is(d.state.history.good, undefined, 'a second short of the window');
  d.at(d.now + SEC);
  const said = d.probe('liveness', true);
  t.is(d.state.history.good?.[0]?.hash, A);
  t.is(d.state.history.good?.[0]?.imageId, `sha256:${A}`);
  t.true(has(said, 'persist'), 'saved at once');
  t.regex(logs(said, 'state-record')[0]?.msg ?? '', /last known good/);
});

test('a new spec is on trial only while a good one is known', (t) => {
  const fresh = new Driver({ ...S, specHash: A, configSpec: A });
  fresh.looked();
  fresh.t = { ...fresh.t, specHash: B, configSpec: B };
  fresh.reload({ specChanged: true });
  t.is(fresh.state.history.trial, undefined, 'first install: nothing to go back to');
  const d = changedToB();
  t.deepEqual(d.state.history.trial, { spec: B, failures: 0 });
});

test('the KV cache refuses the new maxModelLen: back to A at once, the diagnosis at err, no config wait', (t) => {
  const d = changedToB();
  const said = exit(d, 'c2', 1, [KV_LINE]);
  const rb = d.state.history.rollback;
  t.is(rb?.from, B);
  t.is(rb?.to, A);
  t.is(rb?.code, 'kv-cache');
  t.is(d.state.phase, 'starting');
  t.true(has(said, 'reconcile'));
  t.is(logs(said, 'waiting').length, 0, 'the wait it replaces is not said');
  t.is(logs(said, 'diagnosis')[0]?.level, 'error', 'the diagnosis of B is still said');
  const line = logs(said, 'rollback')[0];
  t.is(line?.level, 'error');
  t.is(line?.fields?.['diagnosis'], 'kv-cache');
  t.regex(line?.msg ?? '', /the new spec \(bbbbbbbbbbbb\) cannot serve: the KV cache cannot hold/);
  t.regex(line?.msg ?? '', /\/etc\/gptoss\/config\.yaml is unchanged: edit it to try again/);
  t.is(d.state.history.trial, undefined);
  // The shell serves A again (by digest: another hash); the status line says why.
  asShell(d);
  run(d, 'c3', ran(R, A));
  t.regex(
    d.status(),
    new RegExp(
      String.raw`^serving gpt-oss-120b on port 8000 for 0s \(rolled back: the KV cache cannot hold one request ` +
        String.raw`of model\.maxModelLen \(65536 tokens\); vLLM estimates 40000 tokens fit; ` +
        String.raw`edit /etc/gptoss/config\.yaml to try again\)`,
    ),
  );
});

test('an exit nobody recognises: back after rollback.after failed starts, not before', (t) => {
  const d = changedToB();
  exit(d, 'c2', 1, ['Traceback (most recent call last):', 'SystemError: something new']);
  t.is(d.state.history.rollback, undefined, 'one failure: a restart');
  t.is(d.state.history.trial?.failures, 1);
  t.is(d.state.phase, 'backoff');
  d.at(d.v.restartAt ?? 0);
  d.tick();
  d.send({ type: 'reconciled', id: 'c2', outcome: 'started', reason: 'exited', startedAt: d.now, spec: ran(B) });
  const said = exit(d, 'c2', 1, ['SystemError: something new']);
  t.is(d.state.history.rollback?.code, 'unknown');
  t.regex(logs(said, 'rollback')[0]?.msg ?? '', /failed 2 starts/);
  t.is(logs(said, 'restart-scheduled').length, 0, 'the restart it replaces is not said');
  t.is(d.state.history.restarts, 0, 'the good spec starts with a clean slate');
});

test('a load that stalls goes back at once; a wait on the host is not the spec’s fault', (t) => {
  const d = changedToB();
  d.at(d.now + 20 * MIN);
  d.tick();
  t.is(d.state.history.rollback?.code, 'load-stalled');

  // The port taken by another process: a wait on the host, neither a rollback nor a failed start of B.
  const h = changedToB();
  exit(h, 'c2', 1, ['OSError: [Errno 98] Address already in use']);
  t.is(h.state.phase, 'waiting');
  t.is(h.state.history.rollback, undefined);
  t.is(h.state.history.trial?.failures, 0, 'not counted either');
});

test('a canary: a deep probe at once when the new spec serves; its failure sends the model back', (t) => {
  const d = changedToB();
  d.tick();
  d.probe('startup', true);
  d.tick();
  d.probe('readiness', true);
  d.tick();
  const said = d.probe('warmup', true);
  t.true(
    said.some((a) => a.type === 'probe' && a.kind === 'deep'),
    'the canary asked for',
  );
  d.send({ type: 'probed', kind: 'deep', epoch: d.state.epoch, ok: false, error: 'chat completion: HTTP 500' });
  t.is(d.state.history.rollback?.to, A);
  t.regex(logs(d.actions, 'rollback')[0]?.msg ?? '', /failed its canary after serving/);
});

test('no rollback: for the operator’s own restart, twice for one change, or when off', (t) => {
  const op = changedToB();
  op.send({ type: 'restartRequested', by: 'D-Bus Restart()' });
  t.true(op.state.history.trial?.operator);
  op.send({ type: 'reconciled', id: 'c2', outcome: 'started', reason: 'x', startedAt: op.now, spec: ran(B) });
  exit(op, 'c2', 1, [KV_LINE]);
  t.is(op.state.history.rollback, undefined);
  t.is(op.state.phase, 'waiting');

  const off = goodA();
  off.t = { ...off.t, rollback: { ...off.t.rollback, enabled: false } };
  changedToB(off);
  exit(off, 'c2', 1, [KV_LINE]);
  t.is(off.state.history.rollback, undefined);

  // Rolled back, and A fails too: the usual backoff; the status says both failed; no second rollback.
  const d = changedToB();
  exit(d, 'c2', 1, [KV_LINE]);
  asShell(d);
  d.send({ type: 'reconciled', id: 'c3', outcome: 'created', reason: 'x', startedAt: d.now, spec: ran(R, A) });
  const said = exit(d, 'c3', 1, ['SystemError: something new']);
  t.is(d.state.phase, 'backoff');
  t.is(d.state.history.rollback?.failedToo, 'container exited (exit 1)');
  t.is(logs(said, 'rollback')[0]?.level, 'error');
  t.regex(d.status(), /\(rolled back: .*; the last good spec fails too: container exited \(exit 1\); edit/);
});

test('the config changes again: the rollback is over and the new spec is tried; a settings edit keeps it', (t) => {
  const d = changedToB();
  exit(d, 'c2', 1, [KV_LINE]);
  asShell(d);
  run(d, 'c3', ran(R, A));
  // Settings only: the config still asks for B.
  d.send({ type: 'configApplied', file: '/etc/gptoss/config.yaml', previous: { name: d.t.name, specHash: R } });
  t.is(d.state.history.rollback?.from, B);
  // An edit: C.
  d.t = { ...d.t, specHash: C, configSpec: C };
  const said = d.send({
    type: 'configApplied',
    file: '/etc/gptoss/config.yaml',
    previous: { name: d.t.name, specHash: R },
  });
  t.is(d.state.history.rollback, undefined);
  t.deepEqual(d.state.history.trial, { spec: C, failures: 0 });
  t.regex(logs(said, 'rollback')[0]?.msg ?? '', /the rollback to aaaaaaaaaaaa is over; trying the new spec/);
  t.true(has(said, 'prepare'), 'made before break, as any change');
});

test('a supervisor restart keeps it all: the record carries the good specs, the trial and the rollback', (t) => {
  const d = changedToB();
  exit(d, 'c2', 1, [KV_LINE]);
  const record = persisted(d.state, d.t);
  t.is(record.container?.spec, B, "the record belongs to the config's spec");
  const back = checkRecord(JSON.parse(JSON.stringify(record)));
  t.true('record' in back, JSON.stringify(back));
  const p = (back as { record: Persisted }).record;
  t.is(p.rollback?.to, A);
  const again = new Driver({ ...d.t, specHash: R, configSpec: B });
  again.looked({ persisted: p });
  t.is(again.state.history.rollback?.from, B);
  t.is(again.state.phase, 'starting');
  t.true(has(again.actions, 'reconcile'), 'the rollback is finished: its spec is started');

  // The config changed while the supervisor was down: the good specs stay, the new spec is on trial.
  const moved = new Driver({ ...S, specHash: C, configSpec: C });
  moved.looked({ persisted: p });
  t.is(moved.state.history.good?.[0]?.hash, A);
  t.deepEqual(moved.state.history.trial, { spec: C, failures: 0 });
  t.is(moved.state.history.rollback, undefined);
});

test('the reader drops a good spec the schema no longer takes (and a rollback to it), not the record', (t) => {
  const d = changedToB();
  exit(d, 'c2', 1, [KV_LINE]);
  const record = JSON.parse(JSON.stringify(persisted(d.state, d.t))) as Persisted & { good: { source: unknown }[] };
  record.good[0]!.source = { model: { maxModelLen: 'lots' }, container: { secretEnv: [] }, paths: {} };
  const back = checkRecord(record);
  t.true('record' in back);
  const p = (back as { record: Persisted }).record;
  t.deepEqual(p.good, []);
  t.is(p.rollback, undefined);
  t.is(p.restarts, d.state.history.restarts);
});

test('an operator’s rollback: to the newest other good spec, drained; refused, saying why, when none', (t) => {
  const none = new Driver({ ...S, specHash: A, configSpec: A });
  none.looked();
  run(none, 'c1', ran(A));
  const said = none.send({ type: 'rollbackRequested', by: 'D-Bus Rollback()' });
  t.regex(logs(said)[0]?.msg ?? '', /not now: no other spec has served through its canary window/);
  t.is(none.state.phase, 'serving');

  // B served through its window too: an operator may still want A back.
  const d = changedToB();
  d.serving();
  d.send({ type: 'probed', kind: 'deep', epoch: d.state.epoch, ok: true, detail: 'ok' });
  d.at(d.now + 10 * MIN);
  d.probe('liveness', true);
  t.is(d.state.history.good?.[0]?.hash, B);
  t.is(d.state.history.trial, undefined);
  const go = d.send({ type: 'rollbackRequested', by: 'D-Bus Rollback()' });
  t.is(d.state.history.rollback?.to, A);
  t.is(d.state.history.rollback?.code, 'requested');
  const rec = go.find((a) => a.type === 'reconcile');
  t.true(rec?.type === 'reconcile' && rec.stopFirst === 'c2' && rec.drain === S.gate?.drainTimeout);
});

test('the old container failing while the new spec is prepared is not the new spec’s failure', (t) => {
  const d = goodA();
  d.t = { ...d.t, specHash: B, configSpec: B };
  d.send({ type: 'configApplied', file: '/etc/gptoss/config.yaml', previous: { name: d.t.name, specHash: A } });
  t.true(isRunning(d.state) && d.state.run.prepare !== undefined);
  exit(d, 'c1', 1, ['SystemError: something new']);
  t.is(d.state.history.trial?.failures, 0);
  t.is(d.state.history.rollback, undefined);
});

test('a good spec that ended says how (history)', (t) => {
  const d = changedToB();
  t.regex(d.state.history.good?.[0]?.ended?.how ?? '', /^replaced$/);
  const config = configSchema.parse({});
  t.truthy(config.rollback.enabled);
});

test('the memory guard kills the new spec twice in a row: back to A at the second, not the first', (t) => {
  const GiB = 1024 ** 3;
  const d = goodA();
  d.t = { ...d.t, memoryGuard: { floor: 'auto', pressure: 40, stuckThreshold: 8 * GiB } };
  changedToB(d);
  const starved = () =>
    d.send({ type: 'memorySampled', epoch: d.state.epoch, sample: { available: 3 * GiB, total: 128 * GiB } });
  const first = starved();
  t.true(
    first.some((a) => a.type === 'killContainer'),
    'killed',
  );
  t.is(d.state.phase, 'backoff', 'the first kill backs off, as any failure of a cause not surely the spec’s');
  t.is(d.state.history.rollback, undefined);
  t.is(d.state.history.trial?.failures, 1);
  d.at(d.state.phase === 'backoff' ? d.state.restart.at : 0);
  d.tick();
  d.send({ type: 'reconciled', id: 'c3', outcome: 'started', reason: 'restart', startedAt: d.now, spec: ran(B) });
  const second = starved();
  t.true(second.some((a) => a.type === 'killContainer'));
  t.like(d.state.history.rollback, { from: B, to: A, code: 'host-memory-pressure' });
  t.regex(logs(second, 'rollback')[0]?.msg ?? '', /rolling .* back to the last spec that served/);
});
