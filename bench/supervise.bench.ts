// Benchmarks of supervision on the real engine with the stand-in image: figures, not pass/fail.
//   npm run bench            (BENCH_KILLS=20, BENCH_IDLE_SECONDS=60 by default)
import { spawn } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClientRequest } from 'node:http';
import { openChat, postJson, startDaemon, writeConfig, type Daemon } from '../test/helpers/daemon.js';
import {
  brief,
  docker,
  freePort,
  makeDirs,
  removeContainer,
  STANDIN,
  TEST_MEMLOCK,
  testConfigRaw,
  uniqueName,
} from '../test/helpers/docker.js';
import { PHASE_STALL_MS } from '../src/core/machine/load.js';
import { httpGet } from '../src/health/probe.js';
import { printTable, writeResult, type Row } from './report.js';

const KILLS = Number(process.env['BENCH_KILLS'] ?? 20);
const HANGS = Number(process.env['BENCH_HANGS'] ?? 10);
const IDLE_S = Number(process.env['BENCH_IDLE_SECONDS'] ?? 60);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Docker's own view of a container's life: die and start events with nanosecond times. */
class Events {
  private seen: Array<{ action: string; t: number }> = [];
  private proc;
  constructor(name: string) {
    this.proc = spawn('docker', [
      'events',
      '--filter',
      `container=${name}`,
      '--filter',
      'event=die',
      '--filter',
      'event=start',
      '--format',
      '{{.Action}} {{.TimeNano}}',
    ]);
    let buf = '';
    this.proc.stdout.on('data', (c: Buffer) => {
      buf += c.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const [action = '', t = '0'] = buf.slice(0, nl).split(' ');
        buf = buf.slice(nl + 1);
        this.seen.push({ action, t: Number(BigInt(t) / 1000n) / 1e6 }); // seconds, µs precision
      }
    });
  }
  count(action: string): number {
    return this.seen.filter((e) => e.action === action).length;
  }
  async next(action: string, after: number, ms = 120_000): Promise<number> {
    const end = Date.now() + ms;
    for (;;) {
      const e = this.seen.find((x) => x.action === action && x.t > after);
      if (e) return e.t;
      if (Date.now() > end) throw new Error(`no ${action} event`);
      await sleep(5);
    }
  }
  stop(): void {
    this.proc.kill();
  }
}

/**
 * The model server dies on its own: SIGKILL to its process from outside Docker. (`docker kill`
 * marks the container as stopped by hand, and Docker's restart policy then leaves it down.)
 */
async function crash(name: string): Promise<void> {
  const pid = Number(await docker(['inspect', '-f', '{{.State.Pid}}', name]));
  process.kill(pid, 'SIGKILL');
}

async function waitHealthy(port: number, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await httpGet('127.0.0.1', port, '/health', 1000).then(
      (a) => a.status === 200,
      () => false,
    );
    if (ok) return;
    await sleep(50);
  }
  throw new Error('not healthy');
}

function stats(xs: number[]): { n: number; median: number; p99: number; min: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] ?? NaN;
  return { n: s.length, median: q(0.5), p99: q(0.99), min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN };
}

async function daemonFor(
  tag: string,
  over: Record<string, unknown>,
  level: 'debug' | 'info' = 'debug',
): Promise<{ name: string; port: number; d: Daemon; cfg: string; state: string }> {
  const name = uniqueName(tag);
  const port = await freePort();
  const raw = testConfigRaw(name, port, await makeDirs(), over);
  const cfg = await writeConfig(raw);
  const state = await mkdtemp(join(tmpdir(), 'gptoss-bench-'));
  return { name, port, d: startDaemon(cfg, state, {}, level), cfg, state };
}

// The shortest restart delay the config allows: Docker's own first delay.
const NO_BACKOFF = { restart: { initialDelay: '100ms', maxDelay: '100ms', jitter: 0 } };
const LIVENESS = { periodMs: 1000, timeoutMs: 1000, failureThreshold: 3 };
const FAST_PROBES = {
  startup: { period: '200ms', timeout: '1m' },
  liveness: {
    period: `${LIVENESS.periodMs}ms`,
    timeout: `${LIVENESS.timeoutMs}ms`,
    failureThreshold: LIVENESS.failureThreshold,
  },
  readiness: { period: '1s', timeout: '1s' },
};

async function exitDetectionOurs(): Promise<number[]> {
  const b = await daemonFor('bench-exit', {
    ...NO_BACKOFF,
    health: FAST_PROBES,
    container: { env: { STANDIN_LOAD_SECONDS: '0.3' } },
  });
  const ev = new Events(b.name);
  const out: number[] = [];
  try {
    await b.d.waitState('serving', 60_000);
    for (let i = 0; i < KILLS; i++) {
      await waitHealthy(b.port);
      const t0 = Date.now() / 1000;
      await crash(b.name);
      const die = await ev.next('die', t0 - 1);
      const start = await ev.next('start', die);
      out.push((start - die) * 1000);
    }
  } finally {
    ev.stop();
    await b.d.stop('SIGKILL');
    await removeContainer(b.name);
  }
  return out;
}

async function exitDetectionDocker(): Promise<number[]> {
  const name = uniqueName('bench-always');
  const port = await freePort();
  const dirs = await makeDirs();
  await docker([
    'run',
    '-d',
    '--name',
    name,
    '--restart=always',
    '--ulimit',
    `memlock=${TEST_MEMLOCK}`,
    '-p',
    `127.0.0.1:${port}:8000`,
    '-v',
    `${dirs.encodings}:/etc/encodings:ro`,
    '-e',
    'TIKTOKEN_ENCODINGS_BASE=/etc/encodings',
    '-e',
    'STANDIN_LOAD_SECONDS=0.3',
    STANDIN,
    'vllm',
    'serve',
    'openai/gpt-oss-120b',
    '--served-model-name',
    'gpt-oss-120b',
  ]);
  const ev = new Events(name);
  const out: number[] = [];
  try {
    for (let i = 0; i < KILLS; i++) {
      await waitHealthy(port);
      // Docker doubles its restart delay (from 100ms) for a container that ran under 10s; let it
      // run 10s so every kill meets Docker's best case, not its growing backoff.
      const started = Date.parse((await brief(name)).StartedAt);
      await sleep(Math.max(0, started + 10_500 - Date.now()));
      const t0 = Date.now() / 1000;
      await crash(name);
      const die = await ev.next('die', t0 - 1);
      const start = await ev.next('start', die);
      out.push((start - die) * 1000);
    }
  } finally {
    ev.stop();
    await removeContainer(name);
  }
  return out;
}

async function hangDetection(): Promise<{ ms: number[]; boundMs: number }> {
  const b = await daemonFor('bench-hang', {
    ...NO_BACKOFF,
    health: FAST_PROBES,
    container: { env: { STANDIN_LOAD_SECONDS: '0.3' } },
  });
  const out: number[] = [];
  try {
    for (let i = 0; i < HANGS; i++) {
      await b.d.waitState('serving', 60_000, b.d.mark);
      // Anywhere in the probe cycle.
      await sleep(Math.random() * LIVENESS.periodMs);
      const mark = b.d.mark;
      const t0 = Date.now();
      await postJson(b.port, '/standin/mode', { health: 'hang' });
      await b.d.waitFor((r) => r.event === 'container-restarting', 30_000, mark);
      out.push(Date.now() - t0);
      await b.d.waitFor((r) => r.event === 'container-started', 30_000, mark);
    }
  } finally {
    await b.d.stop('SIGKILL');
    await removeContainer(b.name);
  }
  // Worst case: the hang begins just after a good probe; `failureThreshold` probes follow, a period
  // apart, and the last one times out; the restart is then issued at once (no backoff here).
  return { ms: out, boundMs: LIVENESS.failureThreshold * LIVENESS.periodMs + LIVENESS.timeoutMs };
}

async function supervisorRestart(): Promise<{ trials: number; containerRestarts: number }> {
  const b = await daemonFor('bench-sup', { health: FAST_PROBES, container: { env: { STANDIN_LOAD_SECONDS: '0.3' } } });
  const ev = new Events(b.name);
  let d = b.d;
  const trials = 5;
  try {
    await d.waitState('serving', 60_000);
    const before = ev.count('start');
    for (let i = 0; i < trials; i++) {
      await d.stop('SIGKILL');
      d = startDaemon(b.cfg, b.state);
      await d.waitState('serving', 60_000);
    }
    await sleep(500);
    return { trials, containerRestarts: ev.count('start') - before };
  } finally {
    ev.stop();
    await d.stop('SIGKILL');
    await removeContainer(b.name);
  }
}

/** Where a process's resident memory is, from /proc/PID/smaps: the node binary's pages, anonymous memory, the rest. */
async function residentBy(pid: number): Promise<{ nodeBinary: number; anonymous: number; other: number }> {
  let where = '';
  const out = { nodeBinary: 0, anonymous: 0, other: 0 };
  for (const line of (await readFile(`/proc/${pid}/smaps`, 'utf8')).split('\n')) {
    const m = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (m) {
      where = m[1] ?? '';
      continue;
    }
    if (!line.startsWith('Rss:')) continue;
    const kib = Number(line.split(/\s+/)[1]);
    if (where.endsWith('/node')) out.nodeBinary += kib;
    else if (where === '' || where === '[heap]' || where.startsWith('[anon')) out.anonymous += kib;
    else out.other += kib;
  }
  return { nodeBinary: r1(out.nodeBinary / 1024), anonymous: r1(out.anonymous / 1024), other: r1(out.other / 1024) };
}

/** `node -e` waiting a second: what any Node process costs here, for comparison. */
async function baselineNodeMiB(): Promise<number> {
  const p = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 3000)'], { stdio: 'ignore' });
  await sleep(1000);
  const rss = Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${p.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  p.kill();
  return r1(rss);
}

async function idleCost(over: Record<string, unknown> = {}, scrapeEveryMs = 0) {
  // Default probes (10s periods), the default log level, the file watchers and the deep-probe
  // timer, the daemon's V8 flags: what a GB10 box pays while the model serves. JSON logs (pino
  // loaded), a little more than the journal format under systemd.
  const b = await daemonFor(
    'bench-idle',
    { container: { env: { STANDIN_LOAD_SECONDS: '0.3' } }, health: { startup: { period: '200ms' } }, ...over },
    'info',
  );
  const listen = (over['metrics'] as { listen?: string } | undefined)?.listen;
  const scrape = () =>
    void fetch(`http://${listen}/metrics`).then(
      (r) => r.text(),
      () => '',
    );
  const scraper = scrapeEveryMs && listen ? setInterval(scrape, scrapeEveryMs) : undefined;
  const pid = b.d.child.pid ?? 0;
  const cpu = async () => {
    const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, clock ticks (USER_HZ 100)
  };
  const mem = async (key: string) =>
    Number(
      /(\d+) kB/.exec(
        (await readFile(`/proc/${pid}/status`, 'utf8')).split('\n').find((l) => l.startsWith(key)) ?? '',
      )?.[1] ?? 0,
    ) / 1024;
  try {
    await b.d.waitFor((r) => r.event === 'container-ready', 60_000);
    await sleep(2000);
    const c0 = await cpu();
    // RSS sampled every second over the whole window, not once at its end.
    const rss: number[] = [];
    for (let i = 0; i < IDLE_S; i++) {
      await sleep(1000);
      rss.push(await mem('VmRSS:'));
    }
    const c1 = await cpu();
    const r = stats(rss);
    return {
      seconds: IDLE_S,
      cpuSeconds: Math.round((c1 - c0) * 100) / 100,
      rssMiB: { median: r1(r.median), max: r1(r.max) },
      peakRssMiB: Math.round(await mem('VmHWM:')),
      residentMiB: await residentBy(pid),
      baselineNodeMiB: await baselineNodeMiB(),
    };
  } finally {
    clearInterval(scraper);
    await b.d.stop('SIGKILL');
    await removeContainer(b.name);
  }
}

/**
 * A stalled engine at the shipped defaults (health.stall: 3m, 2 looks; readiness every 10s): from the
 * last token (a request left hanging, /health still 200) to the restart decision. One trial: it
 * takes minutes. Also the time from an EngineDeadError line to the restart decision.
 */
async function stallDetection(): Promise<{ stallMs: number; deadMs: number[] }> {
  const b = await daemonFor('bench-stall', {
    ...NO_BACKOFF,
    health: { startup: { period: '200ms', timeout: '1m' } },
    container: { env: { STANDIN_LOAD_SECONDS: '0.3' } },
  });
  const hung: ClientRequest[] = [];
  const dead: number[] = [];
  try {
    await b.d.waitState('serving', 60_000);
    await postJson(b.port, '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }] });
    await postJson(b.port, '/standin/mode', { engine: 'stall' });
    const mark = b.d.mark;
    const t0 = Date.now();
    hung.push(openChat(b.port));
    await b.d.waitFor((r) => r.event === 'restart-scheduled' && r['diagnosis'] === 'engine-stalled', 600_000, mark);
    const stallMs = Date.now() - t0;
    for (const h of hung.splice(0)) h.destroy();
    for (let i = 0; i < 5; i++) {
      await b.d.waitState('serving', 60_000, b.d.mark);
      const m = b.d.mark;
      const t1 = Date.now();
      await postJson(b.port, '/standin/mode', { engine: 'dead' });
      await b.d.waitFor((r) => r.event === 'restart-scheduled', 30_000, m);
      dead.push(Date.now() - t1);
      await b.d.waitFor((r) => r.event === 'container-started', 30_000, m);
    }
    return { stallMs, deadMs: dead };
  } finally {
    for (const h of hung) h.destroy();
    await b.d.stop('SIGKILL');
    await removeContainer(b.name);
  }
}

/**
 * GB10's start-up (the GB10 log in test/fixtures/vllm-logs/healthy) at a tenth of the time: weights 57 s,
 * torch.compile 49 s, FlashInfer JIT ~41 s.
 */
const GB10_TENTH = 'weights=5.7,compile=4.9,kv=4.1,graphs=1,api=1';

/** Restart to serving, cold (no cache mounts: every new container compiles again) and warm (paths.cache). */
async function warmRestarts(n: number): Promise<{ coldMs: number[]; warmMs: number[] }> {
  const out = { coldMs: [] as number[], warmMs: [] as number[] };
  for (const warm of [false, true]) {
    const dirs = await makeDirs();
    const b = await daemonFor('bench-warm', {
      ...NO_BACKOFF,
      health: { startup: { period: '200ms', timeout: '5m' } },
      container: { env: { STANDIN_PHASES: GB10_TENTH } },
      paths: {
        encodings: dirs.encodings,
        huggingface: dirs.huggingface,
        cache: warm ? join(dirs.root, 'cache') : null,
      },
    });
    try {
      await b.d.waitFor((r) => r.event === 'container-ready', 120_000);
      for (let i = 0; i < n; i++) {
        const m = b.d.mark;
        // A recreate: the container is gone, its filesystem with it; only mounted caches survive.
        await docker(['rm', '-f', b.name]);
        const t0 = Date.now();
        await b.d.waitFor((r) => r.event === 'container-ready', 120_000, m);
        (warm ? out.warmMs : out.coldMs).push(Date.now() - t0);
      }
    } finally {
      await b.d.stop('SIGKILL');
      await removeContainer(b.name);
    }
  }
  return out;
}

const HANG_PHASES = ['weights', 'compile', 'kv', 'graphs', 'api'] as const;

/**
 * A hang in each phase, with health.startup.stallTimeout 2s: from the phase's first (and last) line to
 * the restart decided. What is beyond the 2 s is the detection's own cost; at the shipped defaults a
 * hang is decided that cost after the phase's stall timeout (src/core/machine/load.ts).
 */
async function hangByPhase(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const phase of HANG_PHASES) {
    const b = await daemonFor('bench-hang', {
      ...NO_BACKOFF,
      health: { startup: { period: '200ms', timeout: '5m', stallTimeout: '2s' } },
      container: { env: { STANDIN_PHASES: 'weights=0.5,compile=0.5,kv=0.5,graphs=0.5,api=0.5', STANDIN_HANG: phase } },
    });
    try {
      const want = phase === 'kv' ? 'kv-cache' : phase;
      const entered = await b.d.waitFor((r) => r.event === 'load-phase' && r['phase'] === want, 60_000);
      const t0 = Date.now();
      await b.d.waitFor((r) => r.event === 'restart-scheduled', 60_000, b.d.after(entered));
      out[want] = Date.now() - t0;
    } finally {
      await b.d.stop('SIGKILL');
      await removeContainer(b.name);
    }
  }
  return out;
}

const r1 = (x: number) => Math.round(x * 10) / 10;

interface Section {
  name: string;
  run(): Promise<{ result: unknown; rows: Row[] }>;
}

const SECTIONS: Section[] = [
  {
    name: 'exit',
    async run() {
      const ours = stats(await exitDetectionOurs());
      const always = stats(await exitDetectionDocker());
      const note = `n=${ours.n}${ours.n < 100 ? ' (p99 is the max)' : ''}`;
      return {
        result: { supervisorMs: ours, restartAlwaysMs: always, measure: 'docker die event -> start event, backoff 0' },
        rows: [
          ['exit -> start, supervisor (median / p99)', `${r1(ours.median)} / ${r1(ours.p99)} ms`, note],
          [
            'exit -> start, --restart=always (median / p99)',
            `${r1(always.median)} / ${r1(always.p99)} ms`,
            `n=${always.n}, each after 10s up`,
          ],
        ],
      };
    },
  },
  {
    name: 'hang',
    async run() {
      const hang = await hangDetection();
      const h = stats(hang.ms);
      const config =
        `liveness period ${LIVENESS.periodMs}ms, timeout ${LIVENESS.timeoutMs}ms, failureThreshold ` +
        `${LIVENESS.failureThreshold}, backoff 0`;
      return {
        result: { ...h, boundMs: hang.boundMs, config },
        rows: [
          [
            'hang -> restart issued (median / max)',
            `${r1(h.median)} / ${r1(h.max)} ms`,
            `n=${h.n}, bound ${hang.boundMs} ms`,
          ],
        ],
      };
    },
  },
  {
    name: 'stall',
    async run() {
      const st = await stallDetection();
      const d = stats(st.deadMs);
      return {
        result: { stallMs: st.stallMs, deadMs: d, config: 'health.stall window 3m, failureThreshold 2, readiness 10s' },
        rows: [
          [
            'engine stall (tokens stop, /health 200) -> restart decided',
            `${r1(st.stallMs / 1000)} s`,
            'defaults; the deep probe: 15m x 2 failures; liveness: never',
          ],
          ['EngineDeadError line -> restart decided (median / max)', `${d.median} / ${d.max} ms`, `n=${d.n}`],
        ],
      };
    },
  },
  {
    name: 'monitor',
    async run() {
      const listen = `127.0.0.1:${await freePort()}`;
      const hook = { alerts: { webhooks: [{ name: 'ops', url: 'http://127.0.0.1:9/never' }] } };
      const off = await idleCost({ metrics: { listen: null } });
      const on = await idleCost({ metrics: { listen } });
      const scraped = await idleCost({ metrics: { listen }, ...hook }, 15_000);
      const row = (what: string, x: typeof off): Row => [
        `idle over ${IDLE_S}s serving: ${what}`,
        `${x.cpuSeconds} s CPU, ${x.rssMiB.median} MiB`,
        `RSS median (max ${x.rssMiB.max} MiB)`,
      ];
      return {
        result: { off, on, scraped },
        rows: [
          row('metrics off, no webhooks', off),
          row('metrics on (the default), not scraped', on),
          row('metrics on, scraped every 15 s, a webhook set', scraped),
        ],
      };
    },
  },
  {
    name: 'warm',
    async run() {
      const w = await warmRestarts(3);
      const cold = stats(w.coldMs);
      const warm = stats(w.warmMs);
      return {
        result: { coldMs: cold, warmMs: warm, phases: GB10_TENTH },
        rows: [
          [
            'recreate -> serving, cold caches (paths.cache null), median',
            `${r1(cold.median / 1000)} s`,
            `n=${cold.n}; stand-in at a tenth of GB10's phases (${GB10_TENTH})`,
          ],
          [
            'recreate -> serving, warm caches (paths.cache), median',
            `${r1(warm.median / 1000)} s`,
            `n=${warm.n}; a mechanism check: the stand-in's warm compile/kv take 0.25 of cold`,
          ],
        ],
      };
    },
  },
  {
    name: 'loadhang',
    async run() {
      const h = await hangByPhase();
      const rows: Row[] = Object.entries(h).map(([phase, ms]) => {
        const dflt = PHASE_STALL_MS[phase as keyof typeof PHASE_STALL_MS];
        return [
          `hang in ${phase} -> restart decided (stallTimeout 2s)`,
          `${ms} ms`,
          `shipped default: ${dflt / 60_000}m after its last line (+${ms - 2000} ms), was 15m after the start`,
        ];
      });
      return { result: h, rows };
    },
  },
  {
    name: 'handover',
    async run() {
      const sup = await supervisorRestart();
      return {
        result: sup,
        rows: [
          ['supervisor SIGKILL + start -> container restarts', String(sup.containerRestarts), `${sup.trials} trials`],
        ],
      };
    },
  },
  {
    name: 'idle',
    async run() {
      const idle = await idleCost();
      return {
        result: idle,
        rows: [
          [
            `idle CPU over ${IDLE_S}s serving (default probes)`,
            `${idle.cpuSeconds} s`,
            `${r1((idle.cpuSeconds / IDLE_S) * 100)}% of a core`,
          ],
          [
            `idle RSS over ${IDLE_S}s (median / max of 1s samples)`,
            `${idle.rssMiB.median} / ${idle.rssMiB.max} MiB`,
            `peak since start ${idle.peakRssMiB} MiB; \`node -e\` alone ${idle.baselineNodeMiB} MiB`,
          ],
          [
            'idle RSS: node binary pages / anonymous (V8 heap, malloc) / libraries',
            `${idle.residentMiB.nodeBinary} / ${idle.residentMiB.anonymous} / ${idle.residentMiB.other} MiB`,
            'from /proc/PID/smaps at the end',
          ],
        ],
      };
    },
  },
];

async function main(): Promise<void> {
  const engine = await docker(['version', '--format', '{{.Server.Version}}']);
  const only = process.env['BENCH_ONLY']?.split(',');
  const chosen = SECTIONS.filter((x) => !only || only.includes(x.name));
  process.stderr.write(
    `bench: engine ${engine}, ${KILLS} kills, idle ${IDLE_S}s; ${chosen.map((x) => x.name).join(', ')}\n`,
  );
  const result: Record<string, unknown> = { date: new Date().toISOString(), engine, node: process.version };
  const rows: Row[] = [];
  for (const section of chosen) {
    const r = await section.run();
    process.stderr.write(`bench: ${section.name} done\n`);
    result[section.name] = r.result;
    rows.push(...r.rows);
  }
  printTable(rows, true);
  const file = await writeResult(only ? `supervise-${only.join('-')}` : 'supervise', result);
  process.stdout.write(`written: ${file}\n`);
}

await main();
