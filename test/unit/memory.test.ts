// Memory before a start: the page cache evicted for real, the last run's processes found, the wait for them bounded.
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { checkRelease } from '../../src/core/rules/checks.js';
import type { Action } from '../../src/core/model/events.js';
import type { SmiAnswer } from '../../src/core/rules/gpu-memory.js';
import { dropWholeCache, evictFiles } from '../../src/gpu/page-cache.js';
import { releaseApps } from '../../src/preflight/facts.js';
import { Driver, S, SEC } from '../helpers/driver.js';

const run = promisify(execFile);

/** Bytes of a file resident in the page cache, as util-linux's fincore (mincore(2)) counts them. */
async function resident(file: string): Promise<number> {
  const { stdout } = await run('fincore', ['--bytes', '--noheadings', '--output', 'RES', file]);
  return Number(stdout.trim());
}

test("the model files' pages leave the page cache (posix_fadvise DONTNEED), measured by fincore", async (t) => {
  // On disk, not tmpfs: tmpfs pages are the file itself and cannot be dropped.
  const dir = await mkdtemp(join(tmpdir(), 'gptoss-evict-'));
  try {
    const sub = join(dir, 'hub', 'models--openai--gpt-oss-120b', 'blobs');
    await run('mkdir', ['-p', sub]);
    const MB = 1 << 20;
    const files = [join(sub, 'shard-1'), join(sub, 'shard-2')];
    for (const f of files) {
      const fh = await open(f, 'w');
      const chunk = Buffer.alloc(8 * MB, 7);
      for (let i = 0; i < 20; i++) await fh.write(chunk);
      await fh.sync();
      await fh.close();
      await readFile(f); // read back: its pages are in the cache now
    }
    const before = (await Promise.all(files.map(resident))).reduce((a, b) => a + b, 0);
    t.true(before >= 300 * MB, `resident before: ${before}`);
    const ev = await evictFiles(join(dir, 'hub', 'models--openai--gpt-oss-120b'));
    t.deepEqual(ev.failed, []);
    t.is(ev.files, 2);
    t.is(ev.bytes, 320 * MB);
    const after = (await Promise.all(files.map(resident))).reduce((a, b) => a + b, 0);
    t.true(after < 16 * MB, `resident after: ${after}`);
    t.log(`page cache of 320 MiB of files: ${(before / MB).toFixed(0)} MiB -> ${(after / MB).toFixed(1)} MiB resident`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the whole cache: refused where /proc/sys is read-only, said why', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gptoss-drop-'));
  try {
    t.regex(await dropWholeCache(join(dir, 'no', 'such', 'file')), /^not allowed here \(ENOENT/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// A process in its container's cgroup is the container's: test/integration/prereqs.test.ts, with a real container.
test("the last run's processes: gone from the host; a live one outside the container's cgroup is not", async (t) => {
  const live = spawn('sleep', ['30']);
  t.teardown(() => live.kill());
  const smi: SmiAnswer = {
    kind: 'ok',
    gpus: [{ index: 0, name: 'NVIDIA GB10' }],
    apps: [
      { pid: 4_000_000, name: 'VLLM::EngineCore', usedMiB: 96581 },
      { pid: live.pid!, name: 'sleep', usedMiB: 10 },
    ],
  };
  t.deepEqual(
    (await releaseApps(smi, 'abc123-not-its-container')).map((a) => a.pid),
    [4_000_000],
    'a pid the host no longer has: the driver still holds its memory',
  );
  t.deepEqual(
    (await releaseApps(smi, '')).map((a) => a.pid),
    [4_000_000],
    'no container named: no cgroup claims the live process',
  );
});

test('the release check: processes or a short verdict wait (bounded, said so); nothing held passes', (t) => {
  const held = checkRelease({ apps: [{ pid: 42, name: 'python3', usedMiB: 61440 }], leftMs: 150_000 }, undefined);
  t.is(held.status, 'fail');
  t.is(held.waitFor, 'gpu-release');
  t.regex(held.detail, /pid 42 \(python3, 60\.0 GiB\) \(waiting up to 150s more\)/);
  const short = checkRelease(
    { apps: [], leftMs: 1000 },
    {
      status: 'short',
      detail: '41.5 of 119.7 GiB free',
      remedy: '',
      freeGiB: 41.5,
      totalGiB: 119.7,
      needGiB: 101.7,
      unified: true,
    },
  );
  t.regex(short.detail, /^41\.5 of 119\.7 GiB free/);
  t.is(checkRelease({ apps: [], leftMs: 1000 }, { status: 'ok', detail: 'fits' }).status, 'pass');
});

test('a restart after a run ends carries the wait for its memory, until gpu.releaseTimeout has passed', (t) => {
  const d = new Driver({ ...S, releaseTimeout: 60 * SEC }).booted('c1').serving();
  d.at(30 * SEC).send({
    type: 'observed',
    seen: { kind: 'exited', id: 'c1', exit: { code: 137, oom: false, tail: [] } },
  });
  const restart = d.at(40 * SEC).tick();
  const r = restart.find((a): a is Extract<Action, { type: 'reconcile' }> => a.type === 'reconcile');
  t.deepEqual(r?.release, { since: 30 * SEC, container: 'c1', timeout: 60 * SEC });
  d.send({ type: 'prereqMissing', waitFor: 'gpu-release', message: "the last run's processes still hold GPU memory" });
  t.regex(d.status(), /^waiting for memory to be released: the last run's processes/);
  t.is(d.state.phase === 'waiting' ? d.state.wait.recheckAt : undefined, 42 * SEC, 'looked at again in 2 s');
  const again = d.at(42 * SEC).tick();
  t.truthy(again.find((a) => a.type === 'reconcile' && a.release));
  d.send({ type: 'prereqMissing', waitFor: 'gpu-release', message: 'still held' });
  const late = d.at(95 * SEC).tick();
  t.deepEqual(late, [{ type: 'reconcile' }], 'past the bound: the usual checks only');
});
