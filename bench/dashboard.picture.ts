// The README's dashboard picture, from a real scrape: the stand-in supervised, Debian's Prometheus
// scraping /metrics every second, the dashboard's own queries over the range, plotted with gnuplot.
//   bash scripts/dashboard-picture.sh        (writes docs/dashboard.png)
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import type { ClientRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openChat, postJson, startDaemon, writeConfig } from '../test/helpers/daemon.js';
import { startPrometheus } from '../test/helpers/prometheus.js';
import { docker, freePort, makeDirs, removeContainer, testConfigRaw, uniqueName } from '../test/helpers/docker.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Series {
  metric: Record<string, string>;
  values: [number, string][];
}

async function range(prom: number, expr: string, start: number, end: number): Promise<Series[]> {
  const q = new URLSearchParams({ query: expr, start: String(start), end: String(end), step: '1' }).toString();
  const r = (await (await fetch(`http://127.0.0.1:${prom}/api/v1/query_range?${q}`)).json()) as {
    data: { result: Series[] };
  };
  return r.data.result;
}

async function main(): Promise<void> {
  const mport = await freePort();
  const prom = await startPrometheus(`127.0.0.1:${mport}`);
  const { port: pport, dir } = prom;
  const name = uniqueName('picture');
  const port = await freePort();
  const raw = testConfigRaw(name, port, await makeDirs(), {
    metrics: { listen: `127.0.0.1:${mport}` },
    container: { env: { STANDIN_PHASES: 'weights=4,compile=4,kv=2,graphs=1.5,api=1', STANDIN_STATS_SECONDS: '1' } },
    health: { startup: { period: '500ms', timeout: '2m' }, readiness: { period: '1s', timeout: '1s' } },
    restart: { initialDelay: '2s', maxDelay: '4s', jitter: 0 },
  });
  const d = startDaemon(await writeConfig(raw), await mkdtemp(join(tmpdir(), 'gptoss-picture-state-')), {}, 'info');
  const open: ClientRequest[] = [];
  const start = Date.now() / 1000;
  try {
    const served = () => d.waitFor((r) => r.event === 'container-ready', 120_000, d.mark);
    await served();
    // Busy for a while: chats answered; then the engine slows (requests pile up), then recovers.
    const chat = { messages: [{ role: 'user', content: 'hi' }] };
    for (let i = 0; i < 6; i++) {
      await postJson(port, '/v1/chat/completions', chat).catch(() => undefined);
      await sleep(1000);
    }
    await postJson(port, '/standin/mode', { engine: 'stall' });
    for (let i = 0; i < 10; i++) {
      open.push(openChat(port));
      await sleep(1000);
    }
    for (const o of open.splice(0)) o.destroy();
    await postJson(port, '/standin/mode', { engine: 'ok' });
    await sleep(3000);
    // A crash: backoff, a new load, serving again.
    await docker(['kill', name]);
    await served();
    await sleep(15_000);
    const end = Date.now() / 1000;
    const q = (e: string) => range(pport, e, start, end);
    const state = await q('gptoss_supervisor_state == 1');
    const restarts = await q('sum(gptoss_supervisor_restarts_total) or vector(0)');
    const phases = await q('gptoss_supervisor_load_phase == 1');
    const running = await q('gptoss_supervisor_engine_requests_running');
    const waiting = await q('gptoss_supervisor_engine_requests_waiting');
    const last = await q('gptoss_supervisor_last_load_phase_duration_seconds');
    await plot(dir, start, { state, restarts, phases, running, waiting, last });
  } finally {
    for (const o of open) o.destroy();
    prom.stop();
    await d.stop('SIGKILL');
    await removeContainer(name);
  }
}

const STATES = ['starting', 'loading', 'serving', 'unhealthy', 'backoff', 'crashloop', 'waiting', 'failed'];
const PHASES = ['starting', 'download', 'weights', 'compile', 'kv-cache', 'graphs', 'api'];

async function plot(dir: string, t0: number, s: Record<string, Series[]>): Promise<void> {
  const rows = (ss: Series[], value: (x: Series, v: string) => string) =>
    ss.flatMap((x) => x.values.map(([t, v]) => `${(t - t0).toFixed(0)} ${value(x, v)}`)).join('\n');
  await writeFile(
    join(dir, 'state.dat'),
    rows(s['state']!, (x) => String(STATES.indexOf(x.metric['state'] ?? ''))),
  );
  await writeFile(
    join(dir, 'phase.dat'),
    rows(s['phases']!, (x) => String(PHASES.indexOf(x.metric['phase'] ?? ''))),
  );
  await writeFile(
    join(dir, 'restarts.dat'),
    rows(s['restarts']!, (_x, v) => v),
  );
  await writeFile(
    join(dir, 'running.dat'),
    rows(s['running']!, (_x, v) => v),
  );
  await writeFile(
    join(dir, 'waiting.dat'),
    rows(s['waiting']!, (_x, v) => v),
  );
  const lastAt = (x: Series) => x.values[x.values.length - 1]?.[1] ?? '0';
  await writeFile(
    join(dir, 'last.dat'),
    PHASES.map(
      (p, i) => `${i} "${p}" ${lastAt(s['last']!.find((x) => x.metric['phase'] === p) ?? { metric: {}, values: [] })}`,
    ).join('\n'),
  );
  const out = join(ROOT, 'docs/dashboard.png');
  await mkdir(join(ROOT, 'docs'), { recursive: true });
  const ytics = (names: string[]) => names.map((n, i) => `"${n}" ${i}`).join(', ');
  const gp =
    `
set terminal pngcairo size 1400,900 font "DejaVu Sans,10" noenhanced
set output "${out}"
set multiplot layout 3,2 title "gpt-oss supervisor: the dashboard's queries over a real scrape (the stand-in: ` +
    `a load, work, a stall, a kill, a warm reload)"
set xlabel "seconds"
set grid
set title "State (gptoss_supervisor_state == 1)"
set ytics (${ytics(STATES)})
set yrange [-0.5:${STATES.length - 0.5}]
plot "${dir}/state.dat" using 1:2 with points pt 5 ps 0.6 lc rgb "#1f77b4" notitle
set title "Load in progress (gptoss_supervisor_load_phase == 1)"
set ytics (${ytics(PHASES)})
set yrange [-0.5:${PHASES.length - 0.5}]
plot "${dir}/phase.dat" using 1:2 with points pt 5 ps 0.6 lc rgb "#ff7f0e" notitle
set ytics autofreq
set autoscale y
set title "Restarts (sum(gptoss_supervisor_restarts_total))"
set yrange [0:2]
plot "${dir}/restarts.dat" using 1:2 with steps lw 2 lc rgb "#d62728" notitle
set title "Engine load (requests running / waiting)"
set autoscale y
plot "${dir}/running.dat" using 1:2 with steps lw 2 title "running", \\
  "${dir}/waiting.dat" using 1:2 with steps lw 2 title "waiting"
set title "Last load (warm caches), by phase (gptoss_supervisor_last_load_phase_duration_seconds)"
set style fill solid 0.6
set boxwidth 0.6
set xlabel ""
set ylabel "seconds"
set xtics rotate by -30
plot "${dir}/last.dat" using 1:3:xtic(2) with boxes lc rgb "#2ca02c" notitle
unset multiplot
`;
  await writeFile(join(dir, 'plot.gp'), gp);
  await new Promise<void>((resolve, reject) =>
    execFile('gnuplot', [join(dir, 'plot.gp')], (e, _o, err) => (e ? reject(new Error(err)) : resolve())),
  );
  process.stdout.write(`written: ${out}\n`);
}

await main();
