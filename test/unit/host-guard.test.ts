// The host under the model (issue 25): the memory guard's decisions, memory that does not come back,
// the GPU's telemetry (recorded nvidia-smi answers) and decode speed against its baseline.
import { readFileSync } from 'node:fs';
import test from 'ava';
import { subscriptions } from '../../src/core/machine/subscriptions.js';
import { alertsOf, throttleAlert } from '../../src/core/rules/alerts.js';
import { checkRelease } from '../../src/core/rules/release.js';
import { floorOf, judgeSample, fittingUtilization, guardDiagnosis } from '../../src/core/rules/memory-guard.js';
import { isSlow, spanOf, windowRate } from '../../src/core/rules/decode.js';
import type { MemorySample } from '../../src/core/model/host.js';
import { isRunning, type State } from '../../src/core/model/state.js';
import { parseTelemetry } from '../../src/gpu/telemetry.js';
import { parseFullAvg10, parseMemHead, MemorySampler } from '../../src/gpu/host-memory.js';
import { Driver, MIN, S, SEC } from '../helpers/driver.js';
import { SMI_FIXTURES } from '../helpers/smi.js';
import { tempDir } from '../helpers/temp.js';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const GiB = 1024 ** 3;
const fixture = (f: string) => readFileSync(`${SMI_FIXTURES}${f}`, 'utf8');
const GUARD = { floor: 'auto' as const, pressure: 40, stuckThreshold: 8 * GiB };

/** Booted with MemAvailable known before the start, loading. */
function loading(d: Driver, id: string, before = 100 * GiB): Driver {
  d.send({
    type: 'reconciled',
    id,
    outcome: 'created',
    reason: 'no container',
    startedAt: d.now,
    memAvailable: before,
  });
  return d;
}

const sample = (available: number, o: Partial<MemorySample> = {}): MemorySample => ({
  available,
  total: 128 * GiB,
  ...o,
});

const memory = (d: Driver, s: MemorySample) => d.send({ type: 'memorySampled', epoch: d.state.epoch, sample: s });

test('the floor: auto is 4 GiB over 64 GiB of memory, else a sixteenth; a size is taken as it is', (t) => {
  t.is(floorOf('auto', 128 * GiB), 4 * GiB);
  t.is(floorOf('auto', 24 * GiB), 1.5 * GiB);
  t.is(floorOf(22097 * 1024 ** 2, 128 * GiB), 22097 * 1024 ** 2);
});

test('a sample: under the floor trips at once; pressure over its limit trips on the second in a row', (t) => {
  const g = { floor: 4 * GiB, pressure: 40 };
  t.is(judgeSample(sample(4 * GiB + 1), g, 0).trip, undefined);
  t.is(judgeSample(sample(4 * GiB - 1), g, 0).trip, 'floor');
  const one = judgeSample(sample(50 * GiB, { pressure: 41 }), g, 0);
  t.deepEqual([one.trip, one.pressureHigh], [undefined, 1]);
  t.is(judgeSample(sample(50 * GiB, { pressure: 41 }), g, 1).trip, 'pressure');
  t.is(judgeSample(sample(50 * GiB, { pressure: 40 }), g, 1).pressureHigh, 0, 'at the limit is not over it');
  t.is(judgeSample(sample(50 * GiB, { pressure: 99 }), { ...g, pressure: null }, 5).trip, undefined, 'off');
  t.is(judgeSample(sample(50 * GiB), g, 1).pressureHigh, 0, 'no PSI: never high');
});

test('the fix has numbers: the gpuMemoryUtilization that leaves the floor of what was there before', (t) => {
  const f = {
    sample: sample(3.5 * GiB, { cgroup: 96 * GiB }),
    floor: 4 * GiB,
    trip: 'floor' as const,
    phase: 'loading (profiling memory)',
    pressureLimit: 40,
    memBefore: 100 * GiB,
    utilization: 0.85,
    inARow: 1,
  };
  // (100 - 4) / 128 = 0.75
  t.deepEqual(fittingUtilization(f), { value: 0.75, base: 100 * GiB });
  const d = guardDiagnosis(f);
  t.is(d.code, 'host-memory-pressure');
  t.regex(d.summary, /MemAvailable 3\.5 GiB, under the floor of 4\.0 GiB .*cgroup held 96\.0 GiB/);
  t.regex(
    d.remedy,
    /set model\.gpuMemoryUtilization to 0\.75 \(0\.75 x 128\.0 GiB = 96\.0 GiB leaves the 4\.0 GiB floor/,
  );
  t.is(d.waitFor, undefined, 'the first kill: the usual backoff');
  t.is(guardDiagnosis({ ...f, inARow: 2 }).waitFor, 'config', 'the second in a row: a config change');
  // Without what was there before: what is available now plus what the container held.
  const { memBefore: _m, ...now } = f;
  // (3.5 + 96 - 4) / 128 = 0.746
  t.deepEqual(fittingUtilization(now), { value: 0.74, base: 99.5 * GiB });
});

test('a load under the floor is killed at once, diagnosed, backed off; twice with the spec: wait for a change', (t) => {
  const d = new Driver({ ...S, memoryGuard: GUARD });
  d.looked();
  loading(d, 'c1');
  t.deepEqual(memory(d, sample(90 * GiB, { pressure: 0 })), [], 'a sample above the floor: nothing');
  const before = d.state;
  memory(d, sample(90 * GiB, { pressure: 0 }));
  t.is(d.state, before, 'most samples change nothing, not even the object');
  d.line('Loading weights took 30.12 seconds');
  const acts = memory(d, sample(3.5 * GiB, { cgroup: 96 * GiB, pressure: 12 }));
  t.deepEqual(acts[0], { type: 'killContainer', id: 'c1' }, 'SIGKILL first');
  const said = acts.find((a) => a.type === 'log' && a.event === 'memory-guard');
  t.like(said, { level: 'error', fields: { trip: 'floor', availableBytes: 3.5 * GiB, cgroupBytes: 96 * GiB } });
  t.is(d.state.phase, 'backoff');
  t.is(d.state.history.cause, 'host-memory-pressure');
  t.like(d.state.history.guardKills, { spec: S.specHash, count: 1 });
  t.regex(d.state.history.diagnosis?.summary ?? '', /while the model was loading/);
  // The restart, and the same again.
  const restartAt = d.state.phase === 'backoff' ? d.state.restart.at : 0;
  d.at(restartAt);
  const again = d.tick();
  t.truthy(
    again.find((a) => a.type === 'reconcile'),
    'restarted after the backoff',
  );
  loading(d, 'c2');
  const second = memory(d, sample(2 * GiB, { cgroup: 97 * GiB }));
  t.deepEqual(second[0], { type: 'killContainer', id: 'c2' });
  t.is(d.state.phase, 'waiting');
  t.is(d.state.phase === 'waiting' ? d.state.wait.reason : undefined, 'config');
  t.regex(d.status(), /2 kills in a row with this spec: no restart until the config changes/);
  t.falsy(
    d.tick().find((a) => a.type === 'reconcile'),
    'no restart by itself',
  );
});

test('a kill of another kind breaks the row: the next guard kill backs off again', (t) => {
  const d = new Driver({ ...S, memoryGuard: GUARD });
  d.looked();
  loading(d, 'c1');
  memory(d, sample(1 * GiB));
  t.is(d.state.history.guardKills?.count, 1);
  d.at(d.state.phase === 'backoff' ? d.state.restart.at : 0).tick();
  loading(d, 'c2');
  d.send({ type: 'observed', seen: { kind: 'exited', id: 'c2', exit: { code: 1, oom: false, tail: [] } } });
  t.is(d.state.history.guardKills, undefined, 'an exit of its own ends the row');
  d.at(d.state.phase === 'backoff' ? d.state.restart.at : 0).tick();
  loading(d, 'c3');
  memory(d, sample(1 * GiB));
  t.is(d.state.history.guardKills?.count, 1, 'counted from one again');
  t.not(d.state.phase, 'waiting', 'a restart later (a backoff, here the crash loop), not a wait for the config');
});

test('pressure: two samples in a row over the limit kill; one, or with a low one between, does not', (t) => {
  const d = new Driver({ ...S, memoryGuard: GUARD });
  d.looked();
  loading(d, 'c1');
  memory(d, sample(60 * GiB, { pressure: 55 }));
  memory(d, sample(60 * GiB, { pressure: 3 }));
  t.deepEqual(memory(d, sample(60 * GiB, { pressure: 55 })), [], 'not two in a row');
  const acts = memory(d, sample(60 * GiB, { pressure: 61 }));
  t.deepEqual(acts[0], { type: 'killContainer', id: 'c1' });
  t.regex(
    d.state.history.diagnosis?.summary ?? '',
    /memory pressure 61\.0% \(PSI full avg10\) over memoryGuard\.pressure 40%/,
  );
});

test('the guard off, or a sample of an older run: nothing', (t) => {
  const { memoryGuard: _g, ...off } = S;
  const d = new Driver(off);
  d.looked();
  loading(d, 'c1');
  t.deepEqual(memory(d, sample(0)), []);
  const on = new Driver({ ...S, memoryGuard: GUARD });
  on.looked();
  loading(on, 'c1');
  t.deepEqual(on.send({ type: 'memorySampled', epoch: on.state.epoch - 1, sample: sample(0) }), []);
  t.is(on.state.phase, 'loading');
});

test('the end of a load says how close it came to the floor', (t) => {
  const d = new Driver({ ...S, memoryGuard: GUARD });
  d.looked();
  loading(d, 'c1');
  memory(d, sample(60 * GiB));
  memory(d, sample(19.2 * GiB));
  memory(d, sample(30 * GiB));
  d.serving();
  const said = d.actions.find((a) => a.type === 'log' && a.event === 'memory-guard');
  t.like(said, {
    level: 'info',
    msg: 'memory guard: the load left MemAvailable at 19.2 GiB at its lowest, 15.2 GiB over the floor of 4.0 GiB',
    fields: { lowestAvailableBytes: 19.2 * GiB, floorBytes: 4 * GiB },
  });
  const before = d.state;
  memory(d, sample(10 * GiB));
  t.is(d.state, before, 'serving: the lowest is no longer kept');
});

test('the end of a load says the most the container held, whatever the host did meanwhile', (t) => {
  const d = new Driver({ ...S, memoryGuard: GUARD });
  d.looked();
  loading(d, 'c1');
  memory(d, sample(60 * GiB, { cgroup: 1 * GiB }));
  memory(d, sample(50 * GiB, { cgroup: 3 * GiB }));
  // Another program freed memory meanwhile: MemAvailable rises while the container holds more.
  memory(d, sample(70 * GiB, { cgroup: 5 * GiB }));
  memory(d, sample(70 * GiB, { cgroup: 4 * GiB }));
  d.serving();
  const said = d.actions.find((a) => a.type === 'log' && a.event === 'memory-guard');
  t.like(said, {
    msg:
      'memory guard: the load left MemAvailable at 50.0 GiB at its lowest, 46.0 GiB over the floor of 4.0 GiB; ' +
      'the container held 5.0 GiB at most',
    fields: { lowestAvailableBytes: 50 * GiB, floorBytes: 4 * GiB, peakContainerBytes: 5 * GiB },
  });
});

test('sampling follows the state: every 200 ms while loading, every second while serving, none otherwise', (t) => {
  const d = new Driver({ ...S, memoryGuard: GUARD, telemetryPeriod: 30 * SEC });
  const of = () => subscriptions(d.state, d.t).filter((s) => s.kind === 'memory-sampler' || s.kind === 'gpu-telemetry');
  t.deepEqual(of(), []);
  d.looked();
  loading(d, 'c1');
  t.deepEqual(of(), [{ kind: 'memory-sampler', periodMs: 200, id: 'c1', epoch: d.state.epoch }]);
  d.serving();
  t.deepEqual(of(), [
    { kind: 'memory-sampler', periodMs: 1000, id: 'c1', epoch: d.state.epoch },
    { kind: 'gpu-telemetry', periodMs: 30_000, epoch: d.state.epoch },
  ]);
  d.t = { ...d.t, telemetryPeriod: 0 };
  const { memoryGuard: _g, ...off } = d.t;
  d.t = off;
  t.deepEqual(of(), [], 'both off by config');
});

test('memory that does not come back: waited for, then called stuck only with no process and no container', (t) => {
  const base = { apps: [], availableBefore: 100 * GiB, availableNow: 76.6 * GiB, stuckBytes: 8 * GiB };
  t.regex(checkRelease({ ...base, leftMs: 30_000 }, undefined).detail, /23\.4 GiB of the host's memory not back/);
  t.is(checkRelease({ ...base, leftMs: 30_000 }, undefined).waitFor, 'gpu-release');
  const stuck = checkRelease({ ...base, leftMs: 0, noProcess: true, containerRunning: false }, undefined);
  t.is(stuck.waitFor, 'stuck-memory');
  t.is(
    stuck.detail,
    '23.4 GiB held since the last run ended with no process holding it (the driver); a reboot frees it',
  );
  t.is(checkRelease({ ...base, leftMs: 0, noProcess: false, containerRunning: false }, undefined).status, 'pass');
  t.is(checkRelease({ ...base, leftMs: 0, noProcess: true, containerRunning: true }, undefined).status, 'pass');
  t.is(
    checkRelease({ ...base, availableNow: 93 * GiB, leftMs: 0, noProcess: true, containerRunning: false }, undefined)
      .status,
    'pass',
    'under the threshold',
  );
});

test('stuck memory: said once at err, the stuck-memory alert once; the reconcile carries the figures', (t) => {
  const d = new Driver({ ...S, memoryGuard: GUARD, releaseTimeout: 3 * MIN });
  d.looked();
  loading(d, 'c1', 100 * GiB);
  d.send({ type: 'observed', seen: { kind: 'exited', id: 'c1', exit: { code: 1, oom: false, tail: [] } } });
  d.at(d.state.phase === 'backoff' ? d.state.restart.at : 0);
  const r = d.tick().find((a) => a.type === 'reconcile');
  t.like(r, { release: { container: 'c1', availableBefore: 100 * GiB, stuckBytes: 8 * GiB } });
  // The wait for the release first (gpu.releaseTimeout), then the memory called stuck.
  d.send({ type: 'prereqMissing', waitFor: 'gpu-release', message: '23.4 GiB not back (waiting up to 2s more)' });
  const before: State = d.state;
  const detail = '23.4 GiB held since the last run ended with no process holding it (the driver); a reboot frees it';
  const acts = d.send({ type: 'prereqMissing', waitFor: 'stuck-memory', message: detail, fix: 'reboot the host' });
  const line = acts.find((a) => a.type === 'log' && a.event === 'waiting');
  t.like(line, { level: 'error' });
  t.is(d.status().split('; fix')[0]?.includes(`waiting for memory: ${detail}`), true, d.status());
  const alerts = alertsOf(
    { type: 'prereqMissing', waitFor: 'stuck-memory', message: detail },
    before,
    d.state,
    'gpt-oss-120b',
  );
  t.deepEqual(
    alerts.filter((a) => a.event === 'stuck-memory').map((a) => a.title),
    ['gpt-oss-120b: memory held with no process holding it'],
  );
  // Looked at again: the same wait, no second alert.
  const still = d.state;
  d.send({ type: 'prereqMissing', waitFor: 'stuck-memory', message: detail });
  t.deepEqual(
    alertsOf({ type: 'tick' }, still, d.state, 'x').filter((a) => a.event === 'stuck-memory'),
    [],
  );
});

test('telemetry: recorded H200 answers, new and old reason names, with and without units; GB10 [N/A]', (t) => {
  const busy = parseTelemetry(fixture('h200/busy-16-event.txt'));
  t.deepEqual(busy, [
    {
      index: 0,
      uuid: 'GPU-295df82b-1be4-49cd-f42f-9a20fcc9ca7b',
      smMhz: 1470,
      smMaxMhz: 1980,
      temperature: 60,
      powerW: 691.59,
      reasons: ['sw_power_cap'],
    },
  ]);
  // Asked with the old names, a driver of today answers with the new ones in its header.
  t.deepEqual(parseTelemetry(fixture('h200/busy-16-throttle.txt'), 'clocks_throttle_reasons')[0]?.reasons, [
    'sw_power_cap',
  ]);
  const idle = parseTelemetry(fixture('h200/idle-event.txt'))[0];
  t.deepEqual(idle?.reasons, [], 'idle: gpu_idle is not a throttle, and was not asked');
  t.deepEqual(parseTelemetry(fixture('gb10/telemetry-na.txt')), [
    { index: 0, smMhz: 850, temperature: 92, reasons: ['sw_thermal_slowdown'] },
  ]);
  t.deepEqual(parseTelemetry(fixture('h200/bad-field.txt')), [], 'an error text is no GPU');
});

test('a throttle: the status line while it lasts, one alert after throttleAlertAfter, a line when it ends', (t) => {
  const d = new Driver({ ...S, memoryGuard: GUARD, telemetryPeriod: 30 * SEC, throttleAlertAfter: 5 * MIN });
  d.looked();
  loading(d, 'c1');
  d.serving();
  const gpus = parseTelemetry(fixture('gb10/telemetry-thermal.txt'));
  const at = d.now;
  const said = d.send({ type: 'gpuSampled', epoch: d.state.epoch, gpus });
  t.like(said[0], { level: 'warn', event: 'gpu-telemetry', msg: 'GPU throttled (thermal): SM 850 of 2418 MHz' });
  t.regex(d.status(), /^serving .*; GPU throttled \(thermal\): SM 850 of 2418 MHz$/);
  t.is(throttleAlert(d.state, at + 4 * MIN, 5 * MIN, 'm'), undefined, 'not yet');
  d.at(at + 5 * MIN);
  t.deepEqual(d.send({ type: 'gpuSampled', epoch: d.state.epoch, gpus }), [], 'still throttled: said once');
  const a = throttleAlert(d.state, d.now, 5 * MIN, 'm');
  t.like(a, { event: 'throttled', title: 'm: GPU throttled (thermal): SM 850 of 2418 MHz', key: `throttled-${at}` });
  t.regex(a?.message ?? '', /, for 5m \(92 C, 38\.2 W\): the model is slower while it lasts\.$/);
  d.send({ type: 'gpuSampled', epoch: d.state.epoch, gpus: [], error: 'nvidia-smi not found' });
  t.regex(d.status(), /GPU throttled/, 'a failed look keeps what was known');
  const back = d.send({
    type: 'gpuSampled',
    epoch: d.state.epoch,
    gpus: parseTelemetry(fixture('gb10/telemetry-steady.txt')),
  });
  t.like(back[0], { level: 'info', msg: 'GPU no longer throttled (after 5m)' });
  t.notRegex(d.status(), /throttled/);
  t.is(throttleAlert(d.state, d.now, 5 * MIN, 'm'), undefined);
});

test('decode spans: from the histogram, else generated tokens per running request; none while idle', (t) => {
  const e = (o: object) => ({ source: 'metrics' as const, running: 2, waiting: 0, ...o });
  t.deepEqual(spanOf({ at: 0, sum: 10, count: 100 }, e({ tpot: { sum: 15, count: 150 } }), 10_000), {
    at: 10_000,
    seconds: 5,
    tokens: 50,
  });
  t.deepEqual(spanOf({ at: 0, generated: 100 }, e({ generated: 300 }), 10_000), {
    at: 10_000,
    seconds: 20,
    tokens: 200,
  });
  t.is(spanOf({ at: 0, sum: 10, count: 100 }, e({ running: 0, tpot: { sum: 15, count: 150 } }), 10_000), undefined);
  t.is(spanOf({ at: 0, sum: 10, count: 100 }, e({ tpot: { sum: 1, count: 5 } }), 10_000), undefined, 'a new engine');
  t.is(windowRate([{ at: 1, seconds: 1, tokens: 10 }], 0), undefined, 'too few tokens to say');
  t.true(isSlow(0.04, 0.03, 0.25), '25 tok/s against 33.3: 25% slower');
  t.false(isSlow(0.039, 0.03, 0.25));
});

test('slower than itself: a baseline from the first serving, persisted; 25% slower says so, alerts once', (t) => {
  const slow = { baseline: 2 * MIN, window: 1 * MIN, slower: 0.25 };
  const d = new Driver({ ...S, slow });
  d.looked();
  loading(d, 'c1');
  d.serving();
  let sum = 0;
  let count = 0;
  const look = (spt: number) => {
    d.at(d.now + 10 * SEC);
    sum += spt * 100;
    count += 100;
    return d.send({
      type: 'probed',
      kind: 'engine',
      epoch: d.state.epoch,
      ok: true,
      sample: { source: 'metrics', running: 1, waiting: 0, generated: count, tpot: { sum, count } },
    });
  };
  const all: ReturnType<typeof look> = [];
  for (let i = 0; i < 14; i++) all.push(...look(0.05));
  const base = d.state.history.decode;
  t.is(base?.secondsPerToken, 0.05, 'the median of the first two minutes');
  t.truthy(
    all.find((a) => a.type === 'persist' && a.record.decode?.secondsPerToken === 0.05),
    'kept in the state file',
  );
  t.truthy(
    all.find((a) => a.type === 'log' && /^decode-speed baseline for this spec: 20 tok\/s a request/.test(a.msg)),
  );
  const steady = d.state;
  for (let i = 0; i < 12; i++) look(0.055);
  t.is(isRunning(d.state) ? d.state.run.decode?.slowSince : 1, undefined, '10% slower is not slow');
  t.deepEqual(
    alertsOf({ type: 'tick' }, steady, d.state, 'm').filter((a) => a.event === 'slow'),
    [],
  );
  const acts: ReturnType<typeof look> = [];
  const slowAlerts: string[] = [];
  // The GPU slows down: the slowness names the throttle.
  d.send({ type: 'gpuSampled', epoch: d.state.epoch, gpus: parseTelemetry(fixture('gb10/telemetry-thermal.txt')) });
  for (let i = 0; i < 8; i++) {
    const before = d.state;
    acts.push(...look(0.08));
    for (const a of alertsOf({ type: 'tick' }, before, d.state, 'm'))
      if (a.event === 'slow') slowAlerts.push(a.message);
  }
  t.regex(
    d.status(),
    /; GPU throttled \(thermal\): SM 850 of 2418 MHz; decoding 38% slower than usual: 13 tok\/s a request, usually 20$/,
  );
  const warned = acts.filter((a) => a.type === 'log' && a.level === 'warn' && a.event === 'decode-speed');
  t.is(warned.length, 1, 'said once');
  t.regex(
    warned[0]?.type === 'log' ? warned[0].msg : '',
    new RegExp(
      '^decoding \\d\\d% slower than usual: \\d+ tok/s a request, usually 20 \\(the last 1m, requests running\\); ' +
        'the GPU is throttled \\(thermal\\)$',
    ),
  );
  t.is(slowAlerts.length, 1, 'one `slow` alert for the stretch');
  t.regex(
    slowAlerts[0] ?? '',
    /\(with requests running\)\. The GPU is throttled \(thermal\): GPU throttled \(thermal\): SM 850 of 2418 MHz\.$/,
  );
});

test('the sampler reads /proc: MemAvailable and MemTotal in bytes, PSI full avg10, a cgroup figure', async (t) => {
  t.deepEqual(parseMemHead('MemTotal:       24683452 kB\nMemFree:        22953452 kB\nMemAvailable:   24045232 kB\n'), {
    total: 24683452 * 1024,
    available: 24045232 * 1024,
  });
  t.is(
    parseFullAvg10('some avg10=3.10 avg60=0.00 avg300=0.00 total=1\nfull avg10=1.25 avg60=0.00 avg300=0.00 total=1\n'),
    1.25,
  );
  const dir = await tempDir(t, 'gptoss-hd-sampler-');
  await writeFile(join(dir, 'meminfo'), 'MemTotal: 1000 kB\nMemFree: 10 kB\nMemAvailable: 500 kB\n');
  await writeFile(
    join(dir, 'psi'),
    'some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=42.50 avg60=0 avg300=0 total=9\n',
  );
  await writeFile(join(dir, 'current'), '123456789\n');
  const s = new MemorySampler({ meminfo: join(dir, 'meminfo'), psi: join(dir, 'psi') });
  s.watchCgroup(join(dir, 'current'));
  t.deepEqual(s.read(), { total: 1024000, available: 512000, pressure: 42.5, cgroup: 123456789 });
  await writeFile(join(dir, 'meminfo'), 'MemTotal: 1000 kB\nMemFree: 10 kB\nMemAvailable: 400 kB\n');
  t.is(s.read()?.available, 409600, 'read again from the start of the same file');
  s.close();
  const real = new MemorySampler();
  const r = real.read();
  real.close();
  t.truthy(r && r.available > 0 && r.total >= r.available, 'this host');
});
