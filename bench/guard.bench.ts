// The memory guard's cost and speed on the real engine with the stand-in: figures, not pass/fail.
//   npm run bench            (BENCH_IDLE_SECONDS=60, BENCH_GUARD_KILLS=3 by default)
// - one sample (/proc/meminfo, PSI, a cgroup file), read in this process, many times;
// - the supervisor's CPU over a window of serving with the guard on (a sample a second) and off;
// - a load that takes 3 GiB against a floor 1.5 GiB under MemAvailable: from the moment this process
//   sees MemAvailable under the floor (it samples every 20 ms) to the guard's kill line, and how far
//   under the floor MemAvailable went.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, writeConfig, type Daemon } from '../test/helpers/daemon.js';
import { docker, freePort, makeDirs, removeContainer, testConfigRaw, uniqueName } from '../test/helpers/docker.js';
import { MemorySampler } from '../src/gpu/host-memory.js';
import { printTable, writeResult, type Row } from './report.js';

const IDLE_S = Number(process.env['BENCH_IDLE_SECONDS'] ?? 60);
const KILLS = Number(process.env['BENCH_GUARD_KILLS'] ?? 3);
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const r2 = (x: number) => Math.round(x * 100) / 100;

async function daemonFor(tag: string, over: Record<string, unknown>) {
  const name = uniqueName(tag);
  const port = await freePort();
  const dirs = await makeDirs();
  const raw = testConfigRaw(name, port, dirs, over);
  const cfg = await writeConfig(raw);
  const state = await mkdtemp(join(tmpdir(), 'gptoss-bench-'));
  const d = startDaemon(cfg, state, {}, 'info');
  const done = async () => {
    await d.stop('SIGKILL');
    await removeContainer(name);
    for (const dir of [dirs.root, state, join(cfg, '..')]) await rm(dir, { recursive: true, force: true });
  };
  return { name, d, done };
}

function sampleCost(n = 20_000): { microseconds: number; n: number } {
  const s = new MemorySampler();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) s.read();
  const us = Number(process.hrtime.bigint() - t0) / 1000 / n;
  s.close();
  return { microseconds: r2(us), n };
}

async function cpuOf(d: Daemon): Promise<number> {
  const f = (await readFile(`/proc/${d.child.pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** CPU seconds of the supervisor over IDLE_S of serving (default probes), the guard on or off. */
async function servingCpu(enabled: boolean): Promise<number> {
  const b = await daemonFor('bench-guard-cpu', {
    memoryGuard: { enabled },
    container: { env: { STANDIN_LOAD_SECONDS: '0.3' } },
    health: { startup: { period: '200ms' } },
  });
  try {
    await b.d.waitFor((r) => r.event === 'container-ready', 60_000);
    await sleep(2000);
    const c0 = await cpuOf(b.d);
    await sleep(IDLE_S * 1000);
    return r2((await cpuOf(b.d)) - c0);
  } finally {
    await b.done();
  }
}

function available(s: MemorySampler): number {
  return s.read()?.available ?? NaN;
}

/** One load of 3 GiB over 3 s against a floor 1.5 GiB under MemAvailable now. */
async function killTrial(): Promise<{ latencyMs: number; underFloorMiB: number }> {
  const s = new MemorySampler();
  const floor = Math.floor(available(s) - 1.5 * GiB);
  const seen: Array<{ at: number; available: number }> = [];
  const timer = setInterval(() => seen.push({ at: Date.now(), available: available(s) }), 20);
  const b = await daemonFor('bench-guard-kill', {
    memoryGuard: { floor },
    restart: { initialDelay: '1h', maxDelay: '1h' },
    container: {
      env: { STANDIN_LOAD_SECONDS: '10', STANDIN_LOAD_MEMORY_MIB: '3072', STANDIN_LOAD_MEMORY_SECONDS: '3' },
    },
  });
  try {
    const kill = await b.d.waitFor((r) => r.event === 'memory-guard' && r.level === 50, 60_000);
    const end = Date.now() + 10_000;
    while (available(s) < floor + GiB && Date.now() < end) await sleep(50);
    const crossed = seen.find((x) => x.available < floor);
    const lowest = Math.min(...seen.map((x) => x.available));
    return {
      latencyMs: crossed ? Date.parse(kill['time'] as string) - crossed.at : NaN,
      underFloorMiB: Math.round((floor - lowest) / MiB),
    };
  } finally {
    clearInterval(timer);
    s.close();
    await b.done();
  }
}

async function main(): Promise<void> {
  const engine = await docker(['version', '--format', '{{.Server.Version}}']);
  process.stderr.write(`bench guard: engine ${engine}, ${IDLE_S}s of serving on and off, ${KILLS} kills\n`);
  const sample = sampleCost();
  const off = await servingCpu(false);
  const on = await servingCpu(true);
  const kills: Array<{ latencyMs: number; underFloorMiB: number }> = [];
  for (let i = 0; i < KILLS; i++) kills.push(await killTrial());
  const pp = (cpu: number) => r2((cpu / IDLE_S) * 100);
  const rows: Row[] = [
    ['one memory sample (meminfo, PSI)', `${sample.microseconds} us`, `mean of ${sample.n}, in this process`],
    [`supervisor CPU over ${IDLE_S}s serving, guard off`, `${off} s`, `${pp(off)}% of a core`],
    [`supervisor CPU over ${IDLE_S}s serving, guard on`, `${on} s`, `${pp(on)}% of a core; a sample a second`],
    [
      'floor crossed -> kill line (each trial)',
      kills.map((k) => `${k.latencyMs} ms`).join(', '),
      '3 GiB over 3 s, floor 1.5 GiB under MemAvailable',
    ],
    ['MemAvailable under the floor at worst', kills.map((k) => `${k.underFloorMiB} MiB`).join(', '), 'the same trials'],
  ];
  printTable(rows, true);
  const result = {
    date: new Date().toISOString(),
    engine,
    node: process.version,
    sample,
    cpu: { off, on, seconds: IDLE_S },
    kills,
  };
  process.stdout.write(`written: ${await writeResult('guard', result)}\n`);
}

await main();
