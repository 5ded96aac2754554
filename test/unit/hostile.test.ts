// The hostile-input suite: the daemon read by a hostile container (its log, its /metrics, the files it
// can write), the kernel's log and a registry, as the second security review played them. Each
// test failed before its fix. (Hostile configs and state files: hardening.test.ts.)
import { execFile } from 'node:child_process';
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import test from 'ava';
import type Docker from 'dockerode';
import { DAEMON_NODE_FLAGS } from '../../src/cli/node-flags.js';
import type { Action, Persisted } from '../../src/core/model/events.js';
import { exitTail, TAIL_CHARS, TAIL_READ } from '../../src/core/rules/exit-tail.js';
import { MAX_LINE } from '../../src/core/rules/log-lines.js';
import { Engine } from '../../src/docker/engine.js';
import { LogLines } from '../../src/docker/log-stream.js';
import { StateStore } from '../../src/state/store.js';
import { Driver } from '../helpers/driver.js';
import { attacksFor, timeSubjects, type Timing } from '../helpers/redos.js';

const run = promisify(execFile);
const MiB = 1 << 20;
/** A line as long as the one that stopped the daemon, its words at its start and at its end. */
const HUGE = `ValueError: start of the line ${'Access to model '.repeat((2 * MiB) / 16)} the end of the line`;

/** Docker's multiplexed stream: a frame of stdout. */
function frame(s: string): Buffer {
  const b = Buffer.from(s);
  const h = Buffer.alloc(8);
  h[0] = 1;
  h.writeUInt32BE(b.length, 4);
  return Buffer.concat([h, b]);
}

const show = (ts: Timing[]) =>
  ts.map((x) => `${x.ms.toFixed(1)} ms on ${x.size / 1024} KiB: ${x.name}\n    input ${x.attack}`).join('\n');

test(
  'every pattern that reads container output, the kernel log, a registry error or /metrics: under 50 ms of CPU ' +
    "on 1 MiB built to make it backtrack, with the daemon's V8 flags",
  async (t) => {
    // Its own process with the daemon's flags (no optimizing compilers, a 1 MiB young generation).
    const timing = new URL('../helpers/hostile-timing.js', import.meta.url).pathname;
    const { stdout } = await run(process.execPath, [...DAEMON_NODE_FLAGS, timing, String(MiB), '50'], {
      maxBuffer: 64 * MiB,
      timeout: 170_000,
    }).catch((err: Error & { stderr?: string }) => {
      throw new Error(`${err.message}\nover 50 ms before it was stopped:\n${err.stderr ?? ''}`);
    });
    const r = JSON.parse(stdout) as { slowest: Timing[]; over: Timing[] };
    t.true(r.slowest.length > 90, `${r.slowest.length} patterns and functions timed`);
    t.deepEqual(r.over, [], show(r.over));
    t.log(`slowest of ${r.slowest.length}:\n${show([...r.slowest].sort((a, b) => b.ms - a.ms).slice(0, 3))}`);
  },
);

test('the clock sees a quadratic pattern: `.*` between literals fails it at once', (t) => {
  const run = (re: RegExp) => (s: string) => re.exec(s);
  const bad = /Access to model .* is restricted/;
  const good = /Access to model \S{1,256} is restricted/;
  const o = { size: 64 << 10, screen: 4 << 10, limitMs: 50 };
  t.true(timeSubjects([{ name: 'bad', run: run(bad), attacks: attacksFor(bad) }], o).over.length > 0);
  t.deepEqual(timeSubjects([{ name: 'good', run: run(good), attacks: attacksFor(good) }], o).over, []);
});

test('a 2 MiB line from the container reaches no pattern whole: the live follow cuts it, start and end kept', (t) => {
  const lines: string[] = [];
  const partial: string[] = [];
  const ll = new LogLines(
    (l) => lines.push(l),
    (p) => partial.push(p),
  );
  // As Docker sends it: frames of 16 KiB, then the line's end.
  for (let i = 0; i < HUGE.length; i += 16384) ll.push(frame(HUGE.slice(i, i + 16384)));
  t.true(partial.every((p) => p.length <= MAX_LINE));
  ll.push(frame('\nnext\n'));
  t.is(lines.length, 2);
  const [line] = lines;
  t.true(line!.length <= MAX_LINE, `${line!.length}`);
  t.true(line!.startsWith('ValueError: start of the line'));
  t.true(line!.endsWith('the end of the line'));
  t.is(lines[1], 'next');
});

test('an exit tail of long lines stays within its caps: each line, and all of them', (t) => {
  const tail = exitTail(
    Array.from({ length: TAIL_READ }, (_, i) => `${i} ${HUGE.slice(0, 64 << 10)}`),
    TAIL_READ,
  );
  t.true(tail.every((l) => l.length <= MAX_LINE));
  t.true(tail.join('').length <= TAIL_CHARS);
  t.regex(tail.at(-1) ?? '', /^599 ValueError/, 'the last lines are the ones kept');
  t.true(exitTail([HUGE])[0]!.length <= MAX_LINE);
});

/** A Docker whose log answer is `lines` (frames), whichever way the engine asks for it. */
function dockerAnswering(lines: string[]): Docker {
  const body = () => Buffer.concat(lines.map((l) => frame(`${l}\n`)));
  const stream = () => {
    const s = new PassThrough();
    const b = body();
    for (let i = 0; i < b.length; i += 65536) s.write(b.subarray(i, i + 65536));
    s.end();
    return s;
  };
  return {
    modem: { dial: (_o: unknown, cb: (e: Error | null, d: unknown) => void) => cb(null, stream()) },
    getContainer: () => ({ logs: () => Promise.resolve(body()) }),
  } as unknown as Docker;
}

test('the exit tail read from Docker is cut as it arrives: no line over MAX_LINE, not over TAIL_CHARS', async (t) => {
  const lines = [...Array.from({ length: 40 }, () => HUGE.slice(0, 256 << 10)), HUGE, 'the last words'];
  const text = await new Engine(dockerAnswering(lines)).logTail('c1', TAIL_READ);
  const got = text.split('\n');
  t.true(text.length <= TAIL_CHARS + got.length, `${text.length} characters`);
  t.true(
    got.every((l) => l.length <= MAX_LINE),
    `longest ${Math.max(...got.map((l) => l.length))}`,
  );
  t.true(got.includes('the last words'));
});

const T0 = Date.parse('2026-12-01T12:00:00Z');

/** The record the machine asked to save last. */
const lastRecord = (actions: Action[]): Persisted =>
  (actions.filter((a): a is Extract<Action, { type: 'persist' }> => a.type === 'persist').at(-1) ?? { record: {} })
    .record as Persisted;

/** What the machine does with a long line of the container's: an exit's tail, a line that says the engine is dead. */
const failWith: Array<[string, (d: Driver, line: string) => Action[]]> = [
  [
    'an exit whose tail has it',
    (d, line) =>
      d.send({ type: 'observed', seen: { kind: 'exited', id: 'c1', exit: { code: 1, oom: false, tail: [line] } } }),
  ],
  [
    'it saying the engine is dead',
    (d, line) =>
      d.send({
        type: 'engineLog',
        epoch: d.state.epoch,
        kind: 'fatal',
        line: `EngineDeadError: ${line}`,
        context: [line],
      }),
  ],
];

for (const [size, chars] of [
  ['20 KiB', 20 << 10],
  ['2 MiB', 2 * MiB],
] as const) {
  for (const [what, fail] of failWith) {
    test(`a line of ${size}, ${what}: the state record is read back whole by the next start`, async (t) => {
      const d = new Driver().at(T0).booted('c1').serving();
      d.at(T0 + 60_000);
      const record = lastRecord(fail(d, `RuntimeError: ${'x'.repeat(chars)}`));
      t.is(record.restarts, 1);
      const dir = await mkdtemp(join(tmpdir(), 'gptoss-record-'));
      const store = new StateStore(dir);
      await store.save(record);
      const back = await store.load();
      t.is(back.problem, undefined);
      // JSON and back: what the file holds.
      t.deepEqual(back.record, JSON.parse(JSON.stringify(record)) as Persisted);
      t.is(back.record?.restarts, 1);
      t.deepEqual(await readdir(dir), ['state.json'], 'nothing set aside');
    });
  }
}
