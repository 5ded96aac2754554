// The hostile-input suite: the daemon read by a hostile container (its log, its /metrics, the files it
// can write), the kernel's log and a registry, as the second security review played them. Each
// test failed before its fix. (Hostile configs and state files: hardening.test.ts.)
import { execFile } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import type Docker from 'dockerode';
import { DAEMON_NODE_FLAGS } from '../../src/cli/node-flags.js';
import type { Action, DiskSample, Persisted } from '../../src/core/model/events.js';
import { exitTail, TAIL_CHARS, TAIL_READ } from '../../src/core/rules/exit-tail.js';
import { MAX_LINE } from '../../src/core/rules/log-lines.js';
import { Engine } from '../../src/docker/engine.js';
import { LogLines } from '../../src/docker/log-stream.js';
import { sha256File } from '../../src/encodings/fetch.js';
import { encodingFacts, evictModelFiles, huggingfaceFact } from '../../src/preflight/facts.js';
import { modelDisk } from '../../src/preflight/model-disk.js';
import { StateStore } from '../../src/state/store.js';
import { READ_TIMEOUT_MS } from '../../src/reader/isolated.js';
import { CPU_SCALE } from '../helpers/poll.js';
import { Driver } from '../helpers/driver.js';
import { tempDir } from '../helpers/temp.js';
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

/** 50 ms; scaled where the CPU is emulated (scripts/arm64.sh runs these under qemu-user, ~10x slower). */
const LIMIT_MS = 50 * CPU_SCALE;

test(
  'every pattern that reads container output, the kernel log, a registry error or /metrics: under 50 ms of CPU ' +
    "on 1 MiB built to make it backtrack, with the daemon's V8 flags",
  async (t) => {
    // Its own process with the daemon's flags (no optimizing compilers, a 1 MiB young generation).
    const timing = new URL('../helpers/hostile-timing.js', import.meta.url).pathname;
    const { stdout } = await run(process.execPath, [...DAEMON_NODE_FLAGS, timing, String(MiB), String(LIMIT_MS)], {
      maxBuffer: 64 * MiB,
      timeout: 170_000,
    }).catch((err: Error & { stderr?: string }) => {
      throw new Error(`${err.message}\nover ${LIMIT_MS} ms before it was stopped:\n${err.stderr ?? ''}`);
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
      const dir = await tempDir(t, 'gptoss-record-');
      // The reader's time to start, scaled: a node under qemu-user on a busy box took over 20 s once.
      const store = new StateStore(dir, READ_TIMEOUT_MS * CPU_SCALE);
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

// Files the model container can write: the Hugging Face cache (mounted read-write, and the container's
// root is root here too). The tiktoken files are mounted read-only, and checked the same way anyway.

const MODEL = 'openai/gpt-oss-120b';
const REV = 'a'.repeat(40);

/** A whole model's folder in huggingface_hub's layout: a blob, refs/main, a snapshot with a file. */
async function modelFolder(dir: string, blobBytes = 4096): Promise<void> {
  await mkdir(join(dir, 'blobs'), { recursive: true });
  await mkdir(join(dir, 'refs'), { recursive: true });
  await mkdir(join(dir, 'snapshots', REV), { recursive: true });
  await writeFile(join(dir, 'blobs', 'b1'), Buffer.alloc(blobBytes, 1));
  await writeFile(join(dir, 'refs', 'main'), REV);
  await symlink('../../blobs/b1', join(dir, 'snapshots', REV, 'model.safetensors'));
}

/** A cache (`hf`) whose model folder is to be planted in, and a folder outside it with a whole model. */
async function planted(t: ExecutionContext): Promise<{ root: string; hf: string; model: string; outside: string }> {
  const root = await tempDir(t, 'gptoss-planted-');
  const hf = join(root, 'hf');
  const model = join(hf, 'hub', 'models--openai--gpt-oss-120b');
  const outside = join(root, 'outside');
  await modelFolder(outside, 1 << 20);
  await mkfifo(join(outside, 'fifo'));
  return { root, hf, model, outside };
}

const mkfifo = (path: string) => run('mkfifo', [path]);

/**
 * Lets every reader blocked on opening a FIFO go (a writer comes and goes), so that a failed test
 * ends. On this thread: libuv's are the ones blocked.
 */
function release(fifos: string[]): void {
  for (const f of fifos) closeSync(openSync(f, constants.O_RDWR | constants.O_NONBLOCK));
}

/** `p`, or 'hung' when it takes over `ms`. */
const within = <T>(p: Promise<T>, ms = 3000): Promise<T | 'hung'> =>
  Promise.race([p, new Promise<'hung'>((r) => setTimeout(() => r('hung'), ms).unref())]);

test('a FIFO planted as refs/main: the model folder is read at once, and the daemon reads on', async (t) => {
  const p = await planted(t);
  await modelFolder(p.model);
  await rm(join(p.model, 'refs', 'main'));
  await mkfifo(join(p.model, 'refs', 'main'));
  t.teardown(() => release([join(p.model, 'refs', 'main')]));
  // More reads than libuv has threads (4): each one that blocks holds one.
  const reads = Promise.all(Array.from({ length: 6 }, () => modelDisk(p.hf, MODEL)));
  const other = within(readFile(join(p.outside, 'refs', 'main'), 'utf8'));
  t.is(await other, REV, 'another file of the daemon is read meanwhile');
  const got = await within(reads);
  t.not(got, 'hung');
  if (got !== 'hung') for (const d of got) t.deepEqual(d, { bytes: 4096, incomplete: 0, complete: false });
});

test('links planted in the model folder to files and folders outside the cache are not followed', async (t) => {
  type Planted = Awaited<ReturnType<typeof planted>>;
  const own = { bytes: 4096, incomplete: 0, complete: true };
  const nothing = { bytes: 0, incomplete: 0, complete: false };
  const rows: Array<[string, (p: Planted) => Promise<void>, DiskSample]> = [
    [
      // The folder's own snapshot is there: only the link's revision would make it complete.
      'refs/main -> a file outside',
      async (p) => {
        await modelFolder(p.model);
        await rm(join(p.model, 'refs', 'main'));
        await symlink(join(p.outside, 'refs', 'main'), join(p.model, 'refs', 'main'));
      },
      { ...own, complete: false },
    ],
    [
      'refs/main -> a FIFO outside',
      async (p) => {
        await modelFolder(p.model);
        await rm(join(p.model, 'refs', 'main'));
        await symlink(join(p.outside, 'fifo'), join(p.model, 'refs', 'main'));
      },
      { ...own, complete: false },
    ],
    [
      'blobs -> a folder outside',
      async (p) => {
        await modelFolder(p.model);
        await rm(join(p.model, 'blobs'), { recursive: true });
        await symlink(join(p.outside, 'blobs'), join(p.model, 'blobs'));
      },
      nothing,
    ],
    [
      'blobs/b2 -> a file outside, blobs/b3 a FIFO',
      async (p) => {
        await modelFolder(p.model);
        await symlink(join(p.outside, 'blobs', 'b1'), join(p.model, 'blobs', 'b2'));
        await mkfifo(join(p.model, 'blobs', 'b3'));
      },
      own,
    ],
    [
      'the model folder -> a whole model outside',
      async (p) => {
        await mkdir(join(p.hf, 'hub'), { recursive: true });
        await symlink(p.outside, p.model);
      },
      nothing,
    ],
    [
      'hub -> a folder outside with a whole model',
      async (p) => {
        await modelFolder(join(p.root, 'elsewhere', 'models--openai--gpt-oss-120b'), 1 << 20);
        await mkdir(p.hf);
        await symlink(join(p.root, 'elsewhere'), join(p.hf, 'hub'));
      },
      nothing,
    ],
  ];
  for (const [what, plant, want] of rows) {
    const p = await planted(t);
    await plant(p);
    t.teardown(() => release([join(p.outside, 'fifo')]));
    t.deepEqual(await within(modelDisk(p.hf, MODEL)), want, what);
    // The cache has no snapshot of its own there: one seen would be the outside's.
    if (/^(the model folder|hub)/.test(what))
      t.false((await huggingfaceFact(p.hf, MODEL, false)).modelCached, `${what}: cached`);
  }
});

test('the tiktoken files: a FIFO, a link to a FIFO, a link to a file outside; none followed or blocking', async (t) => {
  const root = await tempDir(t, 'gptoss-planted-enc-');
  const dir = join(root, 'encodings');
  const outside = join(root, 'outside');
  await mkdir(dir);
  await mkdir(outside);
  await writeFile(join(outside, 'genuine.tiktoken'), 'whatever the file says\n');
  await mkfifo(join(outside, 'fifo'));
  await mkfifo(join(dir, 'o200k_base.tiktoken'));
  await symlink(join(outside, 'genuine.tiktoken'), join(dir, 'cl100k_base.tiktoken'));
  t.teardown(() => release([join(outside, 'fifo'), join(dir, 'o200k_base.tiktoken')]));
  const facts = await within(encodingFacts(dir, false));
  if (facts === 'hung') return t.fail('encodingFacts hung');
  t.deepEqual(
    facts.map((f) => [f.file, f.state, f.error]),
    [
      ['o200k_base.tiktoken', 'unreadable', 'not a regular file'],
      ['cl100k_base.tiktoken', 'unreadable', 'is a symbolic link (not followed)'],
    ],
  );
  await rm(join(dir, 'cl100k_base.tiktoken'));
  await symlink(join(outside, 'fifo'), join(dir, 'cl100k_base.tiktoken'));
  // fetch-encodings' "already there?" and the daemon's hash: neither waits on a FIFO.
  for (const f of ['o200k_base.tiktoken', 'cl100k_base.tiktoken'])
    t.is(await within(sha256File(join(dir, f))), undefined, f);
});

/** Bytes of a file in the page cache, as util-linux's fincore (mincore(2)) counts them. */
async function resident(file: string): Promise<number> {
  const { stdout } = await run('fincore', ['--bytes', '--noheadings', '--output', 'RES', file]);
  return Number(stdout.trim());
}

test("page-cache eviction keeps to the model's folder: what a link points at outside keeps its pages", async (t) => {
  // On disk, not tmpfs (tmpfs pages are the file itself): the folder under the system's temporary one.
  const p = await planted(t);
  const victim = join(p.outside, 'blobs', 'b1');
  await readFile(victim);
  const before = await resident(victim);
  t.true(before > 0, 'the file outside is in the page cache');
  await mkdir(join(p.hf, 'hub'), { recursive: true });
  await symlink(p.outside, p.model);
  const linked = await within(evictModelFiles(p.hf, MODEL));
  t.like(linked, { files: 0, bytes: 0 }, 'the model folder is a link: nothing under it is the cache');
  t.is(await resident(victim), before, 'the file outside keeps its pages');
  // A folder of its own, with links out (a file, a folder) and a FIFO among its files: its own are evicted.
  await rm(p.model);
  await modelFolder(p.model);
  await symlink(victim, join(p.model, 'blobs', 'b2'));
  await symlink(join(p.outside, 'blobs'), join(p.model, 'blobs', 'more'));
  await mkfifo(join(p.model, 'blobs', 'b3'));
  t.teardown(() => release([join(p.model, 'blobs', 'b3')]));
  const own = await within(evictModelFiles(p.hf, MODEL));
  t.like(own, { files: 2, bytes: 4096 + REV.length }, 'blobs/b1 and refs/main');
  t.is(await resident(victim), before, 'the file outside still keeps its pages');
});
