// The engine behind /health, against the real Docker engine and the stand-in: stalls, a dead engine,
// parser faults, and the failures the stand-in prints in vLLM's own words.
import { mkdir, writeFile } from 'node:fs/promises';
import type { ClientRequest } from 'node:http';
import { join } from 'node:path';
import test from 'ava';
import { openChat, postJson, startDaemon, writeConfig } from '../helpers/daemon.js';
import { brief, countNamed, docker } from '../helpers/docker.js';
import { cleanup, setup, stopAll, track, type Setup } from '../helpers/scenario.js';
import { fakeSmi } from '../helpers/smi.js';
import { HF_CACHE_MOUNT } from '../../src/container/spec.js';

test.afterEach.always(stopAll);

/** One answered chat: tokens generated, so the stats line has something to show. */
function chat(port: number): Promise<void> {
  return postJson(port, '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }] });
}

const STALL = { health: { stall: { window: '2s', failureThreshold: 2 } } };

/** Serving; one answered chat (tokens counted); then the engine stalls under `requests` open ones. */
async function stallUnder(s: Setup, requests: number, pending: ClientRequest[]): Promise<number> {
  await s.daemon.waitState('serving', 30_000);
  await chat(s.port);
  await postJson(s.port, '/standin/mode', { engine: 'stall' });
  const mark = s.daemon.mark;
  for (let i = 0; i < requests; i++) pending.push(openChat(s.port));
  return mark;
}

test('tokens stop, a request waits, /health 200 -> restart with engine-stalled: figures quoted', async (t) => {
  const s = await setup('stall', STALL);
  const pending: ClientRequest[] = [];
  try {
    const mark = await stallUnder(s, 2, pending);
    const said = await s.daemon.waitFor((r) => r.event === 'diagnosis', 20_000, mark, 'a diagnosis');
    t.is(said['diagnosis'], 'engine-stalled');
    t.regex(said.msg, /1 requests running and 1 waiting.*no token generated for \d+s \(generated tokens stuck at \d+/);
    const sched = await s.daemon.waitFor((r) => r.event === 'restart-scheduled', 5_000, mark);
    t.is(sched['diagnosis'], 'engine-stalled');
    t.true(
      s.daemon.records.slice(mark).some((r) => r.event === 'health-failed' && /engine stalled \(1 of 2\)/.test(r.msg)),
    );
  } finally {
    for (const p of pending) p.destroy();
    await cleanup(s);
  }
});

test('idle with no requests: never a stall, however long the tokens hold still', async (t) => {
  const s = await setup('idle', STALL);
  try {
    await s.daemon.waitState('serving', 30_000);
    // The engine goes quiet once it serves (a stalled engine from the start never answers its warm-up).
    await postJson(s.port, '/standin/mode', { engine: 'stall' });
    // The status shows the engine's sample (so it was looked at) after 3 stall windows of serving.
    const looked = await s.daemon.waitFor(
      (r) =>
        /^status: serving .* for (\d+)s; engine: 0 running, 0 waiting/.test(r.msg) && /for ([6-9]|\d\d)s/.test(r.msg),
      20_000,
      0,
      'six seconds of serving with engine samples',
    );
    t.truthy(looked);
    t.deepEqual(s.daemon.events('restart-scheduled'), []);
  } finally {
    await cleanup(s);
  }
});

test("no /metrics (an older image): vLLM's stats line shows the stall instead", async (t) => {
  const s = await setup('stall-log', {
    ...STALL,
    container: { env: { STANDIN_METRICS: 'off', STANDIN_STATS_SECONDS: '0.5' } },
  });
  const pending: ClientRequest[] = [];
  try {
    const mark = await stallUnder(s, 1, pending);
    const said = await s.daemon.waitFor((r) => r.event === 'diagnosis', 20_000, mark, 'a diagnosis');
    t.is(said['diagnosis'], 'engine-stalled');
    t.regex(said.msg, /1 requests running and 0 waiting, KV cache [\d.]+%, but no token generated/);
    t.notRegex(said.msg, /stuck at/, 'the log line has no counter to quote');
  } finally {
    for (const p of pending) p.destroy();
    await cleanup(s);
  }
});

test('EngineDeadError in the log while /health says 200: the restart is decided within a second', async (t) => {
  const s = await setup('dead');
  try {
    await s.daemon.waitState('serving', 30_000);
    const mark = s.daemon.mark;
    const t0 = Date.now();
    await postJson(s.port, '/standin/mode', { engine: 'dead' });
    const sched = await s.daemon.waitFor((r) => r.event === 'restart-scheduled', 10_000, mark, 'a restart');
    const took = Date.parse(sched.time as string) - t0;
    t.true(took < 1000, `restart decided ${took} ms after the line`);
    t.log(`EngineDeadError -> restart decided in ${took} ms`);
    t.is(sched['diagnosis'], 'engine-dead');
    t.regex(sched.msg, /engine died while its container runs on \((EngineCore died unexpectedly|.*EngineDeadError)/);
    await s.daemon.waitState('serving', 30_000, s.daemon.after(sched));
  } finally {
    await cleanup(s);
  }
});

test('a HarmonyError 500 on the deep probe is a harmony-parse finding: said, never a restart', async (t) => {
  const s = await setup('harmony', { schedule: { deepProbe: { cron: '* * * * * *', failureThreshold: 2 } } });
  try {
    await s.daemon.waitState('serving', 30_000);
    await postJson(s.port, '/standin/mode', { chat: 'harmony' });
    const mark = s.daemon.mark;
    const isFinding = (r: { event?: unknown; finding?: unknown }) =>
      r.event === 'deep-probe' && r.finding === 'harmony-parse';
    const first = await s.daemon.waitFor(isFinding, 10_000, mark, 'a harmony-parse finding');
    t.regex(first.msg, /harmony-parse: chat completion HTTP 500: Unexpected token \d+ while expecting start token/);
    // Three findings: more than failureThreshold (2), and no restart.
    await s.daemon.waitFor(isFinding, 10_000, s.daemon.after(first), 'a second finding');
    const later = s.daemon.records.slice(mark).filter(isFinding);
    await s.daemon.waitFor(isFinding, 10_000, s.daemon.after(later[later.length - 1]!), 'a third finding');
    t.deepEqual(s.daemon.events('restart-scheduled', mark), []);
  } finally {
    await cleanup(s);
  }
});

const FAILS: Array<[string, string, RegExp, string | undefined]> = [
  ['tiktoken-mismatch', 'encodings', /tiktoken file that is there but wrong/, 'encodings'],
  ['unsupported-gpu', 'unsupported-gpu', /has no kernels for this GPU \(MXFP4 grouped gemm/, 'config'],
  ['kv-cache', 'kv-cache', /vLLM estimates \d+ tokens fit/, 'config'],
  ['sampler-oom', 'cuda-oom', /CUDA ran out of memory/, undefined],
];

for (const [mode, code, summary, waitFor] of FAILS) {
  test(`vLLM fails with ${mode} -> ${code}${waitFor ? `, waiting for ${waitFor}` : ', restarted'}`, async (t) => {
    const s = await setup(`f-${mode}`, {
      container: { env: { STANDIN_FAIL: mode, STANDIN_FAST_FAIL: '1', STANDIN_LOAD_SECONDS: '0.5' } },
    });
    try {
      const said = await s.daemon.waitFor((r) => r.event === 'diagnosis', 20_000, 0, 'a diagnosis');
      t.is(said['diagnosis'], code);
      t.regex(said.msg, summary);
      if (waitFor) {
        const w = await s.daemon.waitFor((r) => r.event === 'waiting', 5_000, s.daemon.after(said), 'waiting');
        t.is(w['diagnosis'], code);
        if (mode === 'unsupported-gpu') t.regex(said.msg, /container\.image/);
      } else {
        await s.daemon.waitFor((r) => r.event === 'restart-scheduled', 5_000, 0, 'a restart');
      }
    } finally {
      await cleanup(s);
    }
  });
}

test('vLLM does not know a VLLM_* variable it was given: one warning naming it', async (t) => {
  const s = await setup('env', { container: { env: { VLLM_USE_TYPO: '1' } } });
  try {
    const w = await s.daemon.waitFor((r) => r.event === 'engine-warning', 30_000, 0, 'an engine warning');
    t.regex(w.msg, /does not know the environment variable VLLM_USE_TYPO/);
    await s.daemon.waitState('serving', 30_000);
    t.is(s.daemon.events('engine-warning').length, 1);
  } finally {
    await cleanup(s);
  }
});

test('a container prints a 2 MiB line made to make a rule backtrack, then exits: handled in seconds', async (t) => {
  // The hostile container: `vllm` is a script of the cache's (PATH), printing "Access to model " over and
  // over on one line, with nothing that ends the rule's match. Before, the diagnosis of the exit took the
  // daemon (its V8 flags) 169 s of CPU, past the unit's WatchdogSec.
  const bin = join(HF_CACHE_MOUNT, 'bin');
  const s = await setup(
    'hostile-line',
    { container: { env: { PATH: `${bin}:/usr/local/bin:/usr/bin:/bin` } } },
    {
      start: false,
    },
  );
  await mkdir(join(s.dirs.huggingface, 'bin'));
  await writeFile(join(s.dirs.huggingface, 'bin', 'line.txt'), 'Access to model '.repeat((2 << 20) / 16));
  await writeFile(join(s.dirs.huggingface, 'bin', 'vllm'), `#!/bin/sh\ncat ${bin}/line.txt\necho\nexit 1\n`, {
    mode: 0o755,
  });
  const daemon = track(startDaemon(s.configFile, s.stateDir));
  try {
    const started = await daemon.waitFor((r) => r.event === 'container-started', 30_000, 0, 'the start');
    const sched = await daemon.waitFor(
      (r) => r.event === 'restart-scheduled',
      20_000,
      daemon.after(started),
      'the exit handled',
    );
    t.is(sched['exitCode'], 1);
    // And again: the daemon is not stuck in the first one.
    await daemon.waitFor((r) => r.event === 'restart-scheduled' && r['restartCount'] === 2, 20_000, 0, 'a second');
  } finally {
    await daemon.stop('SIGKILL');
    await cleanup(s);
  }
});

test("after a kill, the restart waits until the old run's process leaves nvidia-smi, then starts", async (t) => {
  const s = await setup('release', {}, { start: false });
  const smi = await fakeSmi(s.dirs.root);
  await smi.answer('h100/idle-gpu.txt', 'h100/idle-apps.txt');
  const file = await writeConfig({ ...s.raw, gpu: { nvidiaSmi: smi.bin, releaseTimeout: '60s' } });
  const daemon = track(startDaemon(file, s.stateDir));
  try {
    await daemon.waitState('serving', 30_000);
    const before = await brief(s.name);
    // The driver still lists the killed run's engine (its pid gone from the host) with its memory.
    await smi.apps(
      'gpu_uuid, pid, process_name, used_gpu_memory [MiB]\n' +
        'GPU-8650bab8-0c43-2b05-3362-e15b1e40d499, 4000000, VLLM::EngineCore, 61440 MiB\n',
    );
    const mark = daemon.mark;
    await docker(['kill', s.name]);
    const w = await daemon.waitFor(
      (r) => r.msg.startsWith('status: waiting for memory to be released'),
      15_000,
      mark,
      'the wait for memory',
    );
    t.regex(w.msg, /the last run's processes still hold GPU memory: pid 4000000 \(VLLM::EngineCore, 60\.0 GiB\)/);
    t.regex(w.msg, /\(waiting up to \d+s more\)$/);
    // It looked again (a second reconcile refused) and still did not start the container.
    await daemon.waitFor(
      (r) => r.event === 'handled' && r['handled'] === 'prereqMissing',
      10_000,
      daemon.after(w),
      'a second look',
    );
    t.false((await brief(s.name)).Running, 'not started while the memory is held');
    await smi.answer('h100/idle-gpu.txt', 'h100/idle-apps.txt');
    await daemon.waitState('serving', 30_000, daemon.after(w));
    t.not((await brief(s.name)).StartedAt, before.StartedAt);
    t.is(await countNamed(s.name), 1);
  } finally {
    await daemon.stop('SIGKILL');
    await cleanup(s);
  }
});
