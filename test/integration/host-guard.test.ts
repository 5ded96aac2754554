// The host under the model (issue 25), on the real engine: a stand-in whose load really takes host
// memory (freed when it is killed), one that leaves memory in the host's /dev/shm (--ipc=host shares
// it) after it ends, recorded nvidia-smi answers of a throttled GPU, and a stand-in that decodes slower.
import { execFile } from 'node:child_process';
import { chmod, copyFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { Agent } from 'node:http';
import test, { type ExecutionContext } from 'ava';
import { MemorySampler } from '../../src/gpu/host-memory.js';
import { makeBus } from '../helpers/bus.js';
import { CLI, postJson, type Record as Rec } from '../helpers/daemon.js';
import { freePort } from '../helpers/docker.js';
import { cleanup, setup, stopAll, type Setup } from '../helpers/scenario.js';
import { SMI_FIXTURES } from '../helpers/smi.js';
import { tempDir } from '../helpers/temp.js';
import { chat } from '../helpers/traffic.js';

test.afterEach.always(stopAll);

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const ERROR = 50;

function availableNow(): number {
  const s = new MemorySampler();
  try {
    const r = s.read();
    if (!r) throw new Error('cannot read /proc/meminfo');
    return r.available;
  } finally {
    s.close();
  }
}

/** MemAvailable every 20 ms from this process: the test's own view of the host, beside the daemon's. */
function watchMemory(): { stop(): Array<{ at: number; available: number }> } {
  const s = new MemorySampler();
  const seen: Array<{ at: number; available: number }> = [];
  const timer = setInterval(() => {
    const r = s.read();
    if (r) seen.push({ at: Date.now(), available: r.available });
  }, 20);
  return {
    stop() {
      clearInterval(timer);
      s.close();
      return seen;
    },
  };
}

function cli(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve) =>
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } }, (_e, out) => resolve(out)),
  );
}

/** A webhook target on loopback that keeps the events it got. */
async function hook(t: ExecutionContext): Promise<{ url: string; events: string[]; messages: string[] }> {
  const events: string[] = [];
  const messages: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const b = JSON.parse(body) as { event: string; message: string };
      events.push(b.event);
      messages.push(b.message);
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`, events, messages };
}

/** The scenario's folders (its /vllm look-alike, state and config) removed when the test ends. */
function removeAfter(t: ExecutionContext, s: Setup): Setup {
  for (const dir of [s.dirs.root, s.stateDir, dirname(s.configFile)])
    t.teardown(() => rm(dir, { recursive: true, force: true }));
  return s;
}

const isGuardKill = (r: Rec) => r.event === 'memory-guard' && r.level === ERROR;

test('the guard: a 3 GiB load killed within 2 s of a floor 1.5 GiB under MemAvailable; twice: wait', async (t) => {
  const floor = Math.floor(availableNow() - 1.5 * GiB);
  const s = removeAfter(
    t,
    await setup('hd-guard', {
      memoryGuard: { floor },
      container: {
        env: { STANDIN_LOAD_SECONDS: '10', STANDIN_LOAD_MEMORY_MIB: '3072', STANDIN_LOAD_MEMORY_SECONDS: '3' },
      },
    }),
  );
  const mem = watchMemory();
  try {
    const kill = await s.daemon.waitFor(isGuardKill, 60_000, 0, 'the memory guard killing the load');
    // The container's memory back: the host above the floor again.
    const back = Date.now() + 10_000;
    while (availableNow() < floor + 1 * GiB && Date.now() < back) await new Promise((r) => setTimeout(r, 50));
    const seen = mem.stop();
    const crossed = seen.find((x) => x.available < floor);
    t.truthy(crossed, 'the test saw MemAvailable cross the floor');
    const lowest = Math.min(...seen.map((x) => x.available));
    const killAt = Date.parse(kill['time'] as string);
    const latency = killAt - (crossed?.at ?? 0);
    t.log(
      `floor ${(floor / GiB).toFixed(2)} GiB; crossed it, killed ${latency} ms later; lowest MemAvailable ` +
        `${((floor - lowest) / MiB).toFixed(0)} MiB under the floor; the kill said: ${kill.msg}`,
    );
    t.true(latency <= 2000, `killed ${latency} ms after the floor was crossed`);
    t.true(floor - lowest <= 768 * MiB, `MemAvailable fell ${((floor - lowest) / MiB).toFixed(0)} MiB under the floor`);
    t.like(kill, { trip: 'floor', floorBytes: floor });
    t.true((kill['cgroupBytes'] as number) > 1 * GiB, "the container's cgroup figure was read");
    t.regex(kill.msg, /while the model was loading .*MemAvailable \d+\.\d GiB, under the floor of \d+\.\d GiB/);
    const diag = await s.daemon.waitFor(
      (r) => r.event === 'diagnosis' && /host-memory-pressure|the host ran short/.test(r.msg),
      10_000,
      0,
      'the diagnosis',
    );
    t.regex(diag.msg, /gpuMemoryUtilization|free memory on the host|stop what else takes memory/);
    // The restart loads the same again: the second kill in a row waits for a config change.
    const second = await s.daemon.waitFor(isGuardKill, 60_000, s.daemon.after(kill), 'the second kill');
    t.regex(second.msg, /2 kills in a row with this spec: no restart until the config changes/);
    const waiting = await s.daemon.waitState('waiting', 10_000, s.daemon.after(second));
    t.regex(waiting.msg, /waiting for a config change/);
  } finally {
    mem.stop();
    await cleanup(s);
  }
});

test('a load that leaves room above the floor trips nothing: serving, and the headroom said', async (t) => {
  // 4 GiB of room: what other programs on a busy host take or give back meanwhile moves MemAvailable
  // by more than the load's 768 MiB, so the load itself is seen in its container's memory, not the host's.
  const floor = Math.floor(availableNow() - 4 * GiB);
  const s = removeAfter(
    t,
    await setup('hd-noguard', {
      memoryGuard: { floor },
      container: {
        env: { STANDIN_LOAD_SECONDS: '3', STANDIN_LOAD_MEMORY_MIB: '768', STANDIN_LOAD_MEMORY_SECONDS: '1' },
      },
    }),
  );
  try {
    const room = await s.daemon.waitFor(
      (r) => r.event === 'memory-guard' && r['lowestAvailableBytes'] !== undefined,
      60_000,
      0,
      'the headroom line at the end of the load',
    );
    t.log(room.msg);
    t.true((room['lowestAvailableBytes'] as number) > floor);
    // 768 MiB taken while the samples ran (in 64 MiB steps): the container's own memory says the
    // samples saw most of it (before, the host's MemAvailable had to fall by 256 MiB).
    t.true((room['peakContainerBytes'] as number) >= 512 * MiB, 'the samples saw the load');
    await s.daemon.waitState('serving', 30_000);
    t.deepEqual(s.daemon.records.filter(isGuardKill), [], 'no kill');
  } finally {
    await cleanup(s);
  }
});

test('memory left with no process holding it: the words, once at err, one alert; back: a start', async (t) => {
  const root = await tempDir(t, 'gptoss-hd-stuck-');
  const shm = `/dev/shm/hd-stuck-${randomBytes(4).toString('hex')}`;
  t.teardown(() => rm(shm, { force: true }));
  // nvidia-smi as a host with no GPU process answers (the H100's idle answers).
  const smi = join(root, 'nvidia-smi');
  await copyFile(join(SMI_FIXTURES, 'h100/idle-gpu.txt'), join(root, 'gpu.txt'));
  await copyFile(join(SMI_FIXTURES, 'h100/idle-apps.txt'), join(root, 'apps.txt'));
  await writeFile(
    smi,
    `#!/bin/sh\ncase "$1" in\n  --query-compute-apps=*) cat ${root}/apps.txt ;;\n  *) cat ${root}/gpu.txt ;;\nesac\n`,
  );
  await chmod(smi, 0o755);
  const target = await hook(t);
  const s = removeAfter(
    t,
    await setup('hd-stuck', {
      memoryGuard: { stuckThreshold: '1GiB' },
      gpu: { nvidiaSmi: smi, checkMemory: false, releaseTimeout: '2s', telemetryPeriod: null },
      container: { env: { STANDIN_LOAD_SECONDS: '1', STANDIN_SHM_MIB: '2048', STANDIN_SHM_FILE: shm } },
      alerts: { webhooks: [{ name: 'ops', url: target.url, events: ['stuck-memory'] }] },
    }),
  );
  try {
    await s.daemon.waitState('serving', 60_000);
    const mark = s.daemon.mark;
    await new Promise<void>((resolve, reject) =>
      execFile('docker', ['kill', s.name], (e) => (e ? reject(new Error(e.message)) : resolve())),
    );
    const WORDS =
      /^waiting for memory: [12]\.\d GiB held since the last run ended with no process holding it \(the driver\); a/;
    const said = await s.daemon.waitFor((r) => r.event === 'waiting' && WORDS.test(r.msg), 30_000, mark, 'the wait');
    t.is(said.level, ERROR, 'at err');
    const status = await s.daemon.waitFor((r) => r.msg.startsWith('status: waiting for memory: '), 5_000, mark);
    t.log(status.msg);
    // Looked at again (waits.recheck 300 ms) a few times: still the one line, the one alert.
    const again = await s.daemon.waitFor(
      (r) => r.event === 'handled' && r['handled'] === 'prereqMissing',
      10_000,
      s.daemon.after(said) + 1,
      'a second look',
    );
    await s.daemon.waitFor(
      (r) => r.event === 'handled' && r['handled'] === 'prereqMissing',
      10_000,
      s.daemon.after(again),
      'a third look',
    );
    t.is(s.daemon.records.filter((r) => r.event === 'waiting' && WORDS.test(r.msg)).length, 1, 'said once');
    t.true(s.daemon.events('container-started', mark).length === 0, 'no restart into it');
    await rm(shm, { force: true });
    await s.daemon.waitState('serving', 60_000, s.daemon.after(said));
    t.deepEqual(target.events, ['stuck-memory'], 'one alert');
    t.regex(target.messages[0] ?? '', /Not restarting into it/);
  } finally {
    await cleanup(s);
  }
});

test('a throttled GPU (recorded answers): status line, /metrics, status --json, one alert; then it ends', async (t) => {
  const root = await tempDir(t, 'gptoss-hd-throttle-');
  const smi = join(root, 'nvidia-smi');
  const answer = (f: string) => copyFile(join(SMI_FIXTURES, f), join(root, 'telemetry.txt'));
  await answer('gb10/telemetry-thermal.txt');
  await writeFile(smi, `#!/bin/sh\ncase "$*" in\n  *clocks*) cat ${root}/telemetry.txt ;;\n  *) exit 2 ;;\nesac\n`);
  await chmod(smi, 0o755);
  const target = await hook(t);
  const mport = await freePort();
  const bus = await makeBus();
  await bus.start();
  t.teardown(() => bus.stop());
  const env = { DBUS_SYSTEM_BUS_ADDRESS: bus.address };
  const s = removeAfter(
    t,
    await setup(
      'hd-throttle',
      {
        gpu: { nvidiaSmi: smi, checkMemory: false, telemetryPeriod: '1s', throttleAlertAfter: '2s' },
        metrics: { listen: `127.0.0.1:${mport}` },
        alerts: { webhooks: [{ name: 'ops', url: target.url, events: ['throttled'] }] },
      },
      { env },
    ),
  );
  try {
    const line = await s.daemon.waitFor(
      (r) => /^status: serving .*; GPU throttled \(thermal\): SM 850 of 2418 MHz$/.test(r.msg),
      60_000,
      0,
      'the status line',
    );
    t.log(line.msg);
    const metrics = await (await fetch(`http://127.0.0.1:${mport}/metrics`)).text();
    t.regex(metrics, /^gptoss_supervisor_gpu_sm_clock_mhz\{gpu="0"\} 850$/m);
    t.regex(metrics, /^gptoss_supervisor_gpu_temperature_celsius\{gpu="0"\} 92$/m);
    t.regex(metrics, /^gptoss_supervisor_gpu_power_watts\{gpu="0"\} 38\.2$/m);
    t.regex(metrics, /^gptoss_supervisor_gpu_throttled\{gpu="0",reason="sw_thermal_slowdown"\} 1$/m);
    t.regex(metrics, /^gptoss_supervisor_gpu_throttled\{gpu="0",reason="sw_power_cap"\} 0$/m);
    const json = JSON.parse(await cli(['status', '--json'], env)) as {
      gpu: { throttledSince: string | null; gpus: Array<{ smClockMhz: number; throttleReasons: string[] }> };
    };
    t.like(json.gpu.gpus[0], { smClockMhz: 850, throttleReasons: ['sw_thermal_slowdown'] });
    t.truthy(json.gpu.throttledSince);
    t.regex(await cli(['status'], env), /gpu 0: +SM 850 of 2418 MHz, 92 C, 38\.2 W; throttled \(sw_thermal_slowdown\)/);
    // Past throttleAlertAfter, and a few looks more: one alert.
    const start = Date.now();
    while (!target.events.length && Date.now() - start < 20_000) await new Promise((r) => setTimeout(r, 100));
    t.deepEqual(target.events, ['throttled']);
    const mark = s.daemon.mark;
    await new Promise((r) => setTimeout(r, 0));
    await s.daemon.waitFor((r) => /^status: /.test(r.msg), 5_000, mark).catch(() => undefined);
    await answer('gb10/telemetry-steady.txt');
    await s.daemon.waitFor((r) => /^GPU no longer throttled \(after \d+s\)$/.test(r.msg), 10_000, mark, 'the end');
    await s.daemon.waitFor(
      (r) => /^status: serving [^;]*; engine[^;]*$|^status: serving [^;]*$/.test(r.msg),
      5_000,
      mark,
    );
    t.deepEqual(target.events, ['throttled'], 'one alert for the stretch');
    const after = await (await fetch(`http://127.0.0.1:${mport}/metrics`)).text();
    t.regex(after, /^gptoss_supervisor_gpu_throttled\{gpu="0",reason="sw_thermal_slowdown"\} 0$/m);
  } finally {
    await cleanup(s);
  }
});

/** Streams chat completions, two at a time, until stopped: requests always running. */
function traffic(port: number): { stop(): Promise<void> } {
  let on = true;
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  const lane = async () => {
    while (on) await chat(port, { stream: true, agent, timeoutMs: 30_000 });
  };
  const lanes = [lane(), lane()];
  return {
    async stop() {
      on = false;
      await Promise.all(lanes);
      agent.destroy();
    },
  };
}

test('slower than itself: a steady stand-in never raises `slow`; one that decodes slower does, once', async (t) => {
  const target = await hook(t);
  const s = removeAfter(
    t,
    await setup('hd-slow', {
      health: { slow: { baseline: '6s', window: '4s', slower: 0.25 } },
      gpu: { telemetryPeriod: null },
      container: { env: { STANDIN_LOAD_SECONDS: '1', STANDIN_TOKEN_MS: '20' } },
      alerts: { webhooks: [{ name: 'ops', url: target.url, events: ['slow'] }] },
    }),
  );
  let load: { stop(): Promise<void> } | undefined;
  try {
    await s.daemon.waitState('serving', 60_000);
    load = traffic(s.port);
    const base = await s.daemon.waitFor(
      (r) => r.event === 'decode-speed' && r.msg.startsWith('decode-speed baseline for this spec: '),
      60_000,
      0,
      'the baseline',
    );
    t.log(base.msg);
    // Two windows at the same speed, judged against the baseline: nothing.
    const t0 = Date.now();
    let judged = s.daemon.after(base);
    while (Date.now() - t0 < 8_000)
      judged = s.daemon.after(
        await s.daemon.waitFor((r) => r.event === 'decode-speed' && r.level === 20, 10_000, judged, 'a judged window'),
      );
    const early = s.daemon.records.filter((r) => r.event === 'decode-speed' && r.level === 40);
    t.deepEqual(early, [], 'steady: never slow');
    t.deepEqual(target.events, []);
    // The stand-in slows down: twice the time per token.
    await postJson(s.port, '/standin/mode', { tokenMs: '40' });
    const slow = await s.daemon.waitFor(
      (r) => r.event === 'decode-speed' && r.level === 40,
      30_000,
      judged,
      'the slow warning',
    );
    t.log(slow.msg);
    t.regex(slow.msg, /^decoding \d+% slower than usual: /);
    const status = await s.daemon.waitFor(
      (r) => /^status: serving .*; decoding \d+% slower than usual/.test(r.msg),
      10_000,
      judged,
    );
    t.log(status.msg);
    const start = Date.now();
    while (!target.events.length && Date.now() - start < 10_000) await new Promise((r) => setTimeout(r, 100));
    t.deepEqual(target.events, ['slow']);
    t.regex(target.messages[0] ?? '', /The GPU reports no throttling\./);
  } finally {
    await load?.stop();
    await cleanup(s);
  }
});
