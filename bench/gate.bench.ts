// What the gate costs the clients, side by side with direct access to the same stand-in, in one run:
// the latency it adds to a non-streaming request (p50, p99), streaming throughput at 64 concurrent
// streams, the gate's RSS idle and with 64 streams open; each with and without the daemon's V8 flags.
//   npm run bench   (BENCH_GATE_REQUESTS=400, BENCH_GATE_STREAM_SECONDS=8 by default)
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DAEMON_NODE_FLAGS } from '../src/cli/node-flags.js';
import type { DoorView } from '../src/core/model/door.js';
import { CLI } from '../test/helpers/daemon.js';
import {
  docker,
  freePort,
  makeDirs,
  removeContainer,
  STANDIN,
  TEST_MEMLOCK,
  uniqueName,
} from '../test/helpers/docker.js';
import { writeResult } from './report.js';

const REQUESTS = Number(process.env['BENCH_GATE_REQUESTS'] ?? 400);
const STREAM_S = Number(process.env['BENCH_GATE_STREAM_SECONDS'] ?? 8);
const STREAMS = 64;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A stand-in on a loopback port of its own, serving at once. */
async function standIn(env: Record<string, string>): Promise<{ name: string; port: number; root: string }> {
  const name = uniqueName('bench-gate');
  const port = await freePort();
  const dirs = await makeDirs();
  const e = Object.entries({ STANDIN_LOAD_SECONDS: '0.2', STANDIN_STATS_SECONDS: '3600', ...env }).flatMap(([k, v]) => [
    '-e',
    `${k}=${v}`,
  ]);
  await docker([
    'run',
    '-d',
    '--name',
    name,
    '--ulimit',
    `memlock=${TEST_MEMLOCK}`,
    '-p',
    `127.0.0.1:${port}:8000`,
    '-e',
    'TIKTOKEN_ENCODINGS_BASE=/etc/encodings',
    '-v',
    `${dirs.encodings}:/etc/encodings:ro`,
    '-v',
    `${dirs.huggingface}:/root/.cache/huggingface`,
    ...e,
    STANDIN,
    'vllm',
    'serve',
    'openai/gpt-oss-120b',
    '--served-model-name',
    'gpt-oss-120b',
  ]);
  for (let i = 0; i < 200; i++) {
    if ((await get(port, '/health').catch(() => 0)) === 200) return { name, port, root: dirs.root };
    await sleep(100);
  }
  throw new Error(`the stand-in ${name} did not come up: ${await docker(['logs', '--tail', '20', name])}`);
}

function get(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

interface Gate {
  port: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** The gate process, as `run` starts it, told the door is open onto `upstream`. */
async function gate(upstream: number, flags: readonly string[]): Promise<Gate> {
  const dir = await mkdtemp(join(tmpdir(), 'gptoss-bench-gate-'));
  const control = join(dir, 'control.sock');
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [...flags, CLI, 'gate', '--listen', `127.0.0.1:${port}`, '--control', control, '--log-format', 'json'],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  for (let i = 0; i < 100 && (await get(port, '/health').catch(() => 0)) === 0; i++) await sleep(100);
  const view: DoorView = {
    open: true,
    run: 'bench',
    upstream: { host: '127.0.0.1', port: upstream },
    holdable: true,
    message: '',
    code: 'model_loading',
    holdTimeout: 30_000,
    maxHeld: 512,
    drainTimeout: 60_000,
    maxBodySize: 8 * 1024 * 1024,
    keys: [],
  };
  const sock = connect(control);
  await new Promise((r) => sock.once('connect', r));
  sock.write(`${JSON.stringify({ t: 'view', view })}\n`);
  sock.on('data', () => undefined);
  for (let i = 0; i < 100 && (await get(port, '/v1/models').catch(() => 0)) !== 200; i++) await sleep(50);
  return {
    port,
    child,
    async stop() {
      sock.destroy();
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const CHAT = JSON.stringify({ model: 'gpt-oss-120b', messages: [{ role: 'user', content: 'Say hello.' }] });

function chatOnce(port: number, agent: Agent, stream = false): Promise<{ ms: number; chunks: number }> {
  const body = stream ? JSON.stringify({ ...JSON.parse(CHAT), stream: true }) : CHAT;
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v1/chat/completions',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let chunks = 0;
        let tail = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          tail = (tail + c).slice(-16_000);
          chunks += (c.match(/\n\n/g) ?? []).length;
        });
        res.on('end', () => resolve({ ms: performance.now() - t0, chunks }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] ?? NaN;
};

/** Non-streaming latency, direct and through the gate, alternating request by request. */
interface Latency {
  directP50: number;
  directP99: number;
  gateP50: number;
  gateP99: number;
  addedP50: number;
  addedP99: number;
}

async function latency(direct: number, gated: number): Promise<Latency> {
  const a = new Agent({ keepAlive: true, maxSockets: 1 });
  const b = new Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = 0; i < 20; i++) await Promise.all([chatOnce(direct, a), chatOnce(gated, b)]);
  const d: number[] = [];
  const g: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    d.push((await chatOnce(direct, a)).ms);
    g.push((await chatOnce(gated, b)).ms);
  }
  a.destroy();
  b.destroy();
  return {
    directP50: pct(d, 0.5),
    directP99: pct(d, 0.99),
    gateP50: pct(g, 0.5),
    gateP99: pct(g, 0.99),
    addedP50: pct(g, 0.5) - pct(d, 0.5),
    addedP99: pct(g, 0.99) - pct(d, 0.99),
  };
}

/** Stream chunks per second with STREAMS streams open at once, for STREAM_S seconds; `during` samples. */
async function streaming(port: number, during?: () => Promise<void>): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: STREAMS });
  const end = performance.now() + STREAM_S * 1000;
  let chunks = 0;
  const worker = async () => {
    while (performance.now() < end) chunks += (await chatOnce(port, agent, true)).chunks;
  };
  const t0 = performance.now();
  const sampled = (async () => {
    await sleep((STREAM_S * 1000) / 2);
    await during?.();
  })();
  await Promise.all([...Array.from({ length: STREAMS }, worker), sampled]);
  agent.destroy();
  return chunks / ((performance.now() - t0) / 1000);
}

async function rssMiB(pid: number): Promise<number> {
  const s = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(s)?.[1] ?? 0) / 1024;
}

async function measure(flags: readonly string[], fast: { port: number }, streamy: { port: number }) {
  const g1 = await gate(fast.port, flags);
  const g2 = await gate(streamy.port, flags);
  try {
    await sleep(2000);
    const idle = await rssMiB(g2.child.pid ?? 0);
    const lat = await latency(fast.port, g1.port);
    const direct = await streaming(streamy.port);
    let open = 0;
    const through = await streaming(g2.port, async () => void (open = await rssMiB(g2.child.pid ?? 0)));
    return {
      ...lat,
      streamChunksPerSecDirect: direct,
      streamChunksPerSecGate: through,
      ratio: through / direct,
      rssIdleMiB: idle,
      rss64StreamsMiB: open,
    };
  } finally {
    await g1.stop();
    await g2.stop();
  }
}

const words = Array.from({ length: 200 }, (_, i) => `w${i}`).join(' ');
const fast = await standIn({});
const streamy = await standIn({ STANDIN_TOKEN_MS: '5', STANDIN_REPLY: words });
try {
  const plain = await measure([], fast, streamy);
  const daemonFlags = await measure(DAEMON_NODE_FLAGS, fast, streamy);
  const result = { requests: REQUESTS, streams: STREAMS, streamSeconds: STREAM_S, plain, daemonFlags };
  const f = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : String(n));
  for (const [k, r] of [
    ['node defaults', plain],
    ['daemon V8 flags', daemonFlags],
  ] as const) {
    process.stdout.write(
      `gate (${k}): added latency p50 ${f(r.addedP50)} ms, p99 ${f(r.addedP99)} ms ` +
        `(direct p50 ${f(r.directP50)} ms); ` +
        `64 streams ${f(r.streamChunksPerSecGate)} chunks/s vs ${f(r.streamChunksPerSecDirect)} direct ` +
        `(${(100 * r.ratio).toFixed(1)}%); RSS idle ${f(r.rssIdleMiB)} MiB, 64 streams ${f(r.rss64StreamsMiB)} MiB\n`,
    );
  }
  await writeResult('gate', result);
} finally {
  for (const s of [fast, streamy]) {
    await removeContainer(s.name);
    await rm(s.root, { recursive: true, force: true });
  }
}
