// A load as vLLM prints it, against the real Docker engine and the stand-in: phases, a hang, a download,
// warm caches across a recreate, adoption of the guide's container, make before break.
import { execFile } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import { join } from 'node:path';
import test from 'ava';
import { makeBus } from '../helpers/bus.js';
import { CLI } from '../helpers/daemon.js';
import { writeGenuineEncodings } from '../helpers/tiktoken.js';
import { brief, docker, removeContainer, STANDIN } from '../helpers/docker.js';
import { makeRegistry, pushFreshImage } from '../helpers/registry.js';
import { cleanup, setup, stopAll, type Setup } from '../helpers/scenario.js';

test.afterEach.always(stopAll);

const PHASES = { STANDIN_PHASES: 'weights=1,compile=2,kv=0.5,graphs=0.5,api=0.3' };

function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } }, (e, out) =>
      resolve({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, out }),
    ),
  );
}

async function health(port: number): Promise<number> {
  return fetch(`http://127.0.0.1:${port}/health`).then(
    (r) => r.status,
    () => 0,
  );
}

/** The config of a running scenario, edited: the daemon watches the file. */
async function edit(s: Setup, over: (raw: Record<string, unknown>) => void): Promise<void> {
  over(s.raw);
  await writeFile(s.configFile, stringify(s.raw));
}

test('a load, phase by phase: journal lines, status, D-Bus and status --json; an ETA next time', async (t) => {
  const bus = await makeBus();
  await bus.start();
  const env = { DBUS_SYSTEM_BUS_ADDRESS: bus.address };
  const s = await setup('phases', { container: { env: PHASES } }, { env });
  try {
    const compiling = await s.daemon.waitFor(
      (r) =>
        /^status: loading gpt-oss-120b: compiling \(torch\.compile\) for \d+s; weights in \d+s; \d+s of 20s$/.test(
          r.msg,
        ),
      30_000,
      0,
      'a status line in compile',
    );
    t.log(compiling.msg);
    const json = JSON.parse((await cli(['status', '--json'], env)).out) as Record<string, { phase?: string } | null>;
    t.is(json['load']?.phase, 'compile', 'status --json: the phase');
    await s.daemon.waitState('serving', 30_000);
    const phases = s.daemon.events('load-phase').map((r) => r['phase']);
    t.deepEqual(phases, ['weights', 'compile', 'kv-cache', 'graphs', 'api']);
    const ready = s.daemon.events('container-ready')[0]!;
    t.regex(ready.msg, /after \d+s \(.*weights \d+m?s, compile [23]s, kv-cache \d+m?s, graphs \d+m?s, api \d+m?s\)$/);
    const human = (await cli(['status'], env)).out;
    t.regex(human, /last load: +\d+s in all\n {4}starting/);
    // The next load of this spec says how long it usually takes.
    const mark = s.daemon.mark;
    await docker(['kill', s.name]);
    const eta = await s.daemon.waitFor(
      (r) => /^status: loading .*; \d+s in, usually ready in \d+s$/.test(r.msg),
      30_000,
      mark,
      'a status line with the ETA',
    );
    t.log(eta.msg);
    const props = JSON.parse((await cli(['status', '--json'], env)).out) as Record<string, unknown>;
    t.truthy((props['lastLoad'] as { seconds: number }).seconds > 0);
  } finally {
    await cleanup(s);
    await bus.stop();
  }
});

test('a load that hangs in compile fails at the stall timeout: load-stalled, the phase and the line', async (t) => {
  const s = await setup('hang', {
    container: { env: { ...PHASES, STANDIN_HANG: 'compile' } },
    health: { startup: { period: '300ms', timeout: '5m', stallTimeout: '3s' } },
  });
  try {
    const phase = await s.daemon.waitFor((r) => r.event === 'load-phase' && r['phase'] === 'compile', 30_000);
    const said = await s.daemon.waitFor((r) => r.event === 'diagnosis', 15_000, s.daemon.after(phase), 'a diagnosis');
    t.is(said['diagnosis'], 'load-stalled');
    t.regex(said.msg, /while compiling \(torch\.compile\): no progress for 3s; last line: .*torch_compile_cache/);
    const when = (r: typeof said) => (typeof r['time'] === 'string' ? Date.parse(r['time']) : NaN);
    const gap = when(said) - when(phase);
    t.true(gap < 10_000, `caught ${gap} ms after compile began, not at the 5m budget`);
    const sched = await s.daemon.waitFor((r) => r.event === 'restart-scheduled', 5_000, s.daemon.after(said));
    t.is(sched['diagnosis'], 'load-stalled');
  } finally {
    await cleanup(s);
  }
});

test('a download slower than the whole start-up budget is never killed while bytes come; status says', async (t) => {
  const s = await setup('download', {
    // 12 MB at 1.5 MB/s: 8 s of download, against a 4 s budget (the rest of the load takes 1.6 s).
    container: {
      env: {
        STANDIN_PHASES: 'weights=0.5,compile=0.5,kv=0.2,graphs=0.2,api=0.2',
        STANDIN_DOWNLOAD_BYTES: '12000000',
        STANDIN_DOWNLOAD_RATE: '1500000',
      },
    },
    health: { startup: { period: '300ms', timeout: '4s' } },
  });
  try {
    // The test's cache holds an empty snapshot folder: this model is not complete.
    const hub = join(s.dirs.huggingface, 'hub/models--openai--gpt-oss-120b');
    const progress = await s.daemon.waitFor(
      (r) => /^status: loading gpt-oss-120b: downloading weights: [\d.]+ MB, \d+ MB\/s$/.test(r.msg),
      30_000,
      0,
      'download progress in the status',
    );
    t.log(progress.msg);
    await s.daemon.waitState('serving', 60_000);
    t.deepEqual(s.daemon.events('restart-scheduled'), [], 'never killed');
    t.true(s.daemon.events('load-phase').some((r) => r['phase'] === 'download'));
    t.true((await readdir(join(hub, 'blobs'))).every((f) => !f.endsWith('.incomplete')));
  } finally {
    await cleanup(s);
  }
});

test('a recreate keeps the compile cache: the second load compiles from it, faster', async (t) => {
  const s = await setup('warm', { container: { env: { ...PHASES, STANDIN_PHASES: 'compile=3' } } });
  try {
    await s.daemon.waitState('serving', 30_000);
    const first = s.daemon.events('container-ready')[0]!;
    const mark = s.daemon.mark;
    // A spec change: the container is recreated (a new container: its own filesystem is gone).
    await edit(s, (raw) => {
      (raw['container'] as { env: Record<string, string> }).env['EXTRA'] = '1';
    });
    const ready = await s.daemon.waitFor((r) => r.event === 'container-ready', 60_000, mark, 'the second load');
    t.true(s.daemon.events('container-started', mark).some((r) => r['outcome'] === 'recreated'));
    const compile = (r: typeof ready) => (r['phasesMs'] as Record<string, number>)['compile'] ?? 0;
    t.log(`compile: cold ${compile(first)} ms, warm ${compile(ready)} ms`);
    t.true(compile(ready) < compile(first) / 2, 'warm: from the cache');
    const logs = await docker(['logs', s.name]).catch(() => '');
    t.regex(logs, /Directly load the compiled graph/);
    t.truthy((await readdir(join(s.dirs.root, 'cache', 'vllm'))).length);
  } finally {
    await cleanup(s);
  }
});

test('make before break: an image change is pulled while the old container serves on, then swapped', async (t) => {
  const reg = await makeRegistry();
  await reg.start();
  const image = `${reg.host}/gptoss/vllm-standin:mbb${Date.now()}`;
  await pushFreshImage(STANDIN, image, 200);
  const s = await setup('mbb', { container: { registryAuth: '/nonexistent/config.json' } });
  try {
    await s.daemon.waitState('serving', 30_000);
    const old = await brief(s.name);
    const mark = s.daemon.mark;
    await edit(s, (raw) => {
      (raw['container'] as Record<string, unknown>)['image'] = image;
    });
    const preparing = await s.daemon.waitFor(
      (r) => /^status: preparing: pulling .*; still serving the old container$/.test(r.msg),
      30_000,
      mark,
      'the pull, announced',
    );
    // While the pull goes on: the same container, answering.
    t.is((await brief(s.name)).StartedAt, old.StartedAt);
    t.is(await health(s.port), 200);
    t.log(preparing.msg);
    const pulled = await s.daemon.waitFor((r) => r.event === 'image-pulled', 120_000, mark);
    const beforePull = s.daemon.records.slice(mark, s.daemon.after(pulled));
    t.false(
      beforePull.some((r) => r.event === 'container-started' || /recreating/.test(r.msg)),
      'nothing stopped before',
    );
    await s.daemon.waitFor((r) => r.event === 'container-ready', 60_000, s.daemon.after(pulled));
    t.not((await brief(s.name)).Id, old.Id, 'then swapped');
  } finally {
    await cleanup(s);
    await reg.stop();
    await docker(['rmi', '-f', image]).catch(() => undefined);
  }
});

test('make before break: a change whose encodings are missing never stops the old container', async (t) => {
  const s = await setup('mbb-enc', {});
  try {
    await s.daemon.waitState('serving', 30_000);
    const old = await brief(s.name);
    const mark = s.daemon.mark;
    const empty = join(s.dirs.root, 'empty-encodings');
    await mkdir(empty);
    await edit(s, (raw) => {
      (raw['paths'] as Record<string, unknown>)['encodings'] = empty;
    });
    const refused = await s.daemon.waitFor((r) => r.event === 'config-rejected', 30_000, mark, 'the refusal');
    t.regex(refused.msg, /the new container spec cannot start: .*tiktoken.*; the old container keeps serving/);
    await s.daemon.waitFor((r) => /^status: serving .*; new spec refused: /.test(r.msg), 10_000, mark);
    t.is((await brief(s.name)).StartedAt, old.StartedAt, 'the old container was never stopped');
    t.is(await health(s.port), 200);
    // Fixed (the files appear): applied.
    await writeGenuineEncodings(empty);
    await s.daemon.waitFor(
      (r) => r.event === 'container-ready',
      60_000,
      s.daemon.after(refused),
      'the new spec serving',
    );
    t.not((await brief(s.name)).Id, old.Id);
  } finally {
    await cleanup(s);
    await removeContainer(s.name);
  }
});
