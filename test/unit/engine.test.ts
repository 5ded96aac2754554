// The engine behind /health: its metrics parsed, a stall judged, its log lines read, a deep probe's answer judged.
import test from 'ava';
import { engineLoadText } from '../../src/core/machine/engine.js';
import type { Action, EngineSample } from '../../src/core/model/events.js';
import { kernelFinding } from '../../src/core/rules/kernel.js';
import { relevantKernelLines } from '../../src/systemd/kernel-log.js';
import { bareLine, isFatalLine, statsLine, unknownEnv } from '../../src/core/rules/log-lines.js';
import { isRunning } from '../../src/core/model/state.js';
import { badAnswer } from '../../src/health/probe.js';
import { parseExposition, sumOf } from '../../src/health/prom-text.js';
import { engineFromMetrics } from '../../src/health/vllm-metrics.js';
import { LogLines } from '../../src/docker/log-stream.js';
import { Driver, MIN, S, SEC } from '../helpers/driver.js';

test('the exposition format: labels with escapes, comments, several series per name, special values', (t) => {
  const e = parseExposition(
    [
      '# HELP vllm:num_requests_running Number of requests in model execution batches.',
      '# TYPE vllm:num_requests_running gauge',
      'vllm:num_requests_running{engine="0",model_name="gpt-oss-120b"} 2.0',
      'vllm:num_requests_running{engine="1",model_name="gpt-oss-120b"} 1.0',
      'odd{path="C:\\\\dir",q="say \\"hi\\"",nl="a\\nb",comma="x,y}z"} 7 1700000000000',
      'nan_metric NaN',
      'inf_metric +Inf',
      'broken{x="unterminated} 3',
      'no_value{a="b"}',
      '   ',
    ].join('\n'),
  );
  t.is(sumOf(e, 'vllm:num_requests_running'), 3);
  const odd = e.get('odd')?.[0];
  t.deepEqual(odd?.labels, { path: 'C:\\dir', q: 'say "hi"', nl: 'a\nb', comma: 'x,y}z' });
  t.is(odd?.value, 7);
  t.true(Number.isNaN(e.get('nan_metric')?.[0]?.value));
  t.is(e.get('inf_metric')?.[0]?.value, Infinity);
  t.false(e.has('broken'), 'a malformed line is skipped, not fatal');
  t.false(e.has('no_value'));
});

test("vLLM's metrics under either version's names (kv_cache_usage_perc replaced gpu_cache_usage_perc)", (t) => {
  const v1 = engineFromMetrics(
    [
      'vllm:num_requests_running{engine="0",model_name="m"} 3.0',
      'vllm:num_requests_waiting{engine="0",model_name="m"} 1.0',
      'vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25',
      'vllm:generation_tokens_total{engine="0",model_name="m"} 12345.0',
    ].join('\n'),
  );
  t.deepEqual(v1, { source: 'metrics', running: 3, waiting: 1, kvCache: 0.25, generated: 12345 });
  const v0 = engineFromMetrics(
    'vllm:num_requests_running{model_name="m"} 1.0\nvllm:num_requests_waiting{model_name="m"} 0.0\n' +
      'vllm:gpu_cache_usage_perc{model_name="m"} 0.5\n',
  );
  t.deepEqual(v0, { source: 'metrics', running: 1, waiting: 0, kvCache: 0.5 });
  t.is(engineFromMetrics('process_cpu_seconds_total 3\n'), undefined, 'not vLLM: no sample');
});

test('log lines: prefixes and colour codes come off; the stats line, fatal lines, unknown variables', (t) => {
  t.is(
    bareLine('vllm-1  | (EngineCore_DP0 pid=972) ERROR 01-28 15:59:42 [core.py:935] ValueError: x'),
    'ValueError: x',
  );
  t.is(
    bareLine(
      '^[[0;36m(EngineCore_DP0 pid=738)^[[0;0m ^[[31mERROR^[[0m ^[[90m01-26 09:25:37^[[0m ^[[90m[core.py:935]^[[0m Bo' +
        'om',
    ),
    'Boom',
  );
  t.is(bareLine('\x1b[1;36m(APIServer pid=1)\x1b[0;0m INFO 08-06 10:00:00 [api_server.py:1] Hello'), 'Hello');
  t.is(bareLine('ERROR 02-07 11:28:26 engine.py:389] ValueError: y'), 'ValueError: y');
  t.is(
    bareLine('2026-11-28T06:48:06.123456789Z INFO:     Started server process [1]'),
    'INFO:     Started server process [1]',
  );
  t.deepEqual(
    statsLine(
      'Engine 000: Avg prompt throughput: 0.0 tokens/s, Avg generation throughput: 41.3 tokens/s, Running: 2 reqs, ' +
        'Waiting: 1 reqs, GPU KV cache usage: 4.5%, Prefix cache hit rate: 0.0%',
    ),
    { generationRate: 41.3, running: 2, waiting: 1, kvCache: 0.045 },
  );
  t.deepEqual(
    statsLine(
      'Avg prompt throughput: 0.0 tokens/s, Avg generation throughput: 0.0 tokens/s, Running: 1 reqs, Swapped: 0 ' +
        'reqs, Pending: 3 reqs, GPU KV cache usage: 0.2%, CPU KV cache usage: 0.0%.',
    ),
    { generationRate: 0, running: 1, waiting: 3, kvCache: 0.002 },
  );
  t.true(isFatalLine('vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue. See stack trace'));
  t.true(isFatalLine('ERROR 08-06 [async_llm.py:1] AsyncEngineDeadError: Background loop has errored already.'));
  t.false(isFatalLine('INFO: Application startup complete.'));
  t.is(unknownEnv('WARNING 08-06 [envs.py:1] Unknown vLLM environment variable detected: VLLM_USE_V2'), 'VLLM_USE_V2');
});

test("Docker's log stream: frames cut anywhere, TTY bytes, tqdm's carriage returns", (t) => {
  const got: string[] = [];
  const ll = new LogLines((l) => got.push(l));
  const frame = (kind: number, s: string) => {
    const b = Buffer.from(s);
    const h = Buffer.alloc(8);
    h[0] = kind;
    h.writeUInt32BE(b.length, 4);
    return Buffer.concat([h, b]);
  };
  const all = Buffer.concat([frame(1, 'first line\nsec'), frame(2, 'ond\rsecond, redrawn\n'), frame(1, 'third\n')]);
  for (let i = 0; i < all.length; i += 5) ll.push(all.subarray(i, i + 5));
  // Each state of a tqdm bar is a line of its own: a progress step while weights load.
  t.deepEqual(got, ['first line', 'second', 'second, redrawn', 'third']);
  const tty: string[] = [];
  const raw = new LogLines((l) => tty.push(l));
  raw.push(Buffer.from('a tty line\nand '));
  raw.push(Buffer.from('another\n'));
  t.deepEqual(tty, ['a tty line', 'and another']);
});

const sample = (running: number, waiting: number, generated?: number): EngineSample => ({
  source: 'metrics',
  running,
  waiting,
  ...(generated === undefined ? {} : { generated }),
});

/** A serving driver and a way to send engine samples at a time. */
function servingDriver(t = S) {
  const d = new Driver(t).booted('c1').serving();
  const engine = (ms: number, s: EngineSample): Action[] =>
    d.at(ms).send({ type: 'probed', kind: 'engine', epoch: d.state.epoch, ok: true, sample: s });
  return { d, engine };
}

test('a stall: requests in, the token counter still for the window, twice -> restart with engine-stalled', (t) => {
  const { d, engine } = servingDriver();
  engine(20 * SEC, sample(1, 2, 100));
  engine(30 * SEC, sample(1, 2, 180));
  t.regex(d.status(), /engine: 1 running, 2 waiting, 8.0 tok\/s/);
  // From 30 s on nothing moves.
  for (let at = 40 * SEC; at < 30 * SEC + 3 * MIN; at += 10 * SEC) t.deepEqual(engine(at, sample(1, 2, 180)), []);
  const first = engine(30 * SEC + 3 * MIN, sample(1, 2, 180));
  t.is(d.state.phase, 'serving', 'one stalled look is not yet a restart');
  t.true(first.some((a) => a.type === 'log' && /engine stalled \(1 of 2\)/.test(a.msg)));
  const second = engine(40 * SEC + 3 * MIN, sample(1, 2, 180));
  t.is(d.state.phase, 'backoff');
  t.is(d.v.diagnosis?.code, 'engine-stalled');
  t.regex(d.v.diagnosis?.summary ?? '', /1 requests running and 2 waiting, but no token generated for 3m10s/);
  t.true(second.some((a) => a.type === 'log' && a.event === 'diagnosis'));
});

test('no stall when idle, when tokens move, or when stall detection is off', (t) => {
  const { d, engine } = servingDriver();
  for (let at = 20 * SEC; at < 20 * MIN; at += 10 * SEC) engine(at, sample(0, 0, 500));
  t.is(d.state.phase, 'serving', 'idle for 20 minutes: nothing to produce, no stall');
  let n = 500;
  for (let at = 20 * MIN; at < 40 * MIN; at += 10 * SEC) engine(at, sample(4, 0, (n += 10)));
  t.is(d.state.phase, 'serving', 'busy and producing');
  const off = servingDriver({ ...S, stallWindow: 0 });
  for (let at = 20 * SEC; at < 20 * MIN; at += 10 * SEC) off.engine(at, sample(1, 0, 7));
  t.is(off.d.state.phase, 'serving', 'health.stall.enabled: false');
});

test("the log's stats line stands in for /metrics: running with 0.0 tokens/s for the window is a stall", (t) => {
  const { d, engine } = servingDriver();
  const line = (rate: number): EngineSample => ({ source: 'log', running: 1, waiting: 0, rate });
  engine(20 * SEC, line(30));
  for (let at = 30 * SEC; at <= 30 * SEC + 4 * MIN; at += 10 * SEC) engine(at, line(0));
  t.is(d.v.diagnosis?.code, 'engine-stalled');
  t.is(engineLoadText(undefined), undefined);
});

test('EngineDeadError in the log: restart at once, the root cause above it diagnosed', (t) => {
  const { d } = servingDriver();
  const a = d.send({
    type: 'engineLog',
    epoch: d.state.epoch,
    kind: 'fatal',
    line: 'vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue.',
    context: ['torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.'],
  });
  t.is(d.state.phase, 'backoff');
  t.is(d.v.stopFirst, 'c1', 'the container, still running, is stopped before the restart');
  t.is(d.v.diagnosis?.code, 'cuda-oom');
  t.true(a.some((x) => x.type === 'log' && x.event === 'restart-scheduled'));
  const { d: d2 } = servingDriver();
  d2.send({ type: 'engineLog', epoch: d2.state.epoch, kind: 'fatal', line: 'EngineDeadError: x', context: [] });
  t.is(d2.v.diagnosis?.code, 'engine-dead');
  const { d: d3 } = servingDriver({ ...S, envNames: ['VLLM_USE_V2'] });
  const imageOwn = { type: 'engineLog', epoch: d3.state.epoch, kind: 'unknown-env', line: 'VLLM_IMAGE_TAG' } as const;
  t.deepEqual(d3.send(imageOwn), [], "a variable the image sets, not container.env: not the operator's to fix");
  const w = d3.send({ type: 'engineLog', epoch: d3.state.epoch, kind: 'unknown-env', line: 'VLLM_USE_V2' });
  t.true(isRunning(d3.state));
  t.regex((w[0] as { msg: string }).msg, /does not know the environment variable VLLM_USE_V2/);
  t.deepEqual(d3.send({ type: 'engineLog', epoch: 0, kind: 'fatal', line: 'EngineDeadError' }), [], 'stale run');
});

test('kernel evidence: an Xid with its meaning; the OOM killer with its victim', (t) => {
  const f = {
    exitCode: 137,
    oom: false,
    lines: [],
    utilization: 0.85,
    maxModelLen: 131072,
    port: 8000,
    encodingsDir: '/e',
    modelId: 'm',
    image: 'i',
  };
  const xid = kernelFinding(['NVRM: Xid (PCI:000f:01:00): 79, pid=1234, name=python3, GPU has fallen off the bus.'], f);
  t.is(xid?.code, 'gpu-xid');
  t.regex(xid?.summary ?? '', /Xid 79 on PCI:000f:01:00: GPU has fallen off the bus/);
  t.regex(xid?.remedy ?? '', /reset/);
  const oom = kernelFinding(
    [
      'python3 invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO), order=0',
      'Out of memory: Killed process 4242 (python3) total-vm:150000000kB, anon-rss:120000000kB, file-rss:0kB',
    ],
    f,
  );
  t.is(oom?.code, 'host-oom');
  t.regex(oom?.summary ?? '', /python3 \(pid 4242\)/);
  t.is(kernelFinding(['usb 1-1: new high-speed USB device'], f), undefined);
  // From the journal: a kernel record, and one written through /dev/kmsg whose "NVRM" journald took as identifier.
  const json = [
    JSON.stringify({ MESSAGE: 'usb 1-1: new device', SYSLOG_IDENTIFIER: 'kernel', _TRANSPORT: 'kernel' }),
    JSON.stringify({ MESSAGE: 'Xid (PCI:0000:01:00): 79, GPU has fallen off the bus.', SYSLOG_IDENTIFIER: 'NVRM' }),
    JSON.stringify({
      MESSAGE: [...Buffer.from('Out of memory: Killed process 7 (python3)')],
      SYSLOG_IDENTIFIER: 'kernel',
    }),
    '{"cut',
  ].join('\n');
  t.deepEqual(relevantKernelLines(json), [
    'NVRM: Xid (PCI:0000:01:00): 79, GPU has fallen off the bus.',
    'Out of memory: Killed process 7 (python3)',
  ]);
});

test("a deep probe's answer: empty and garbage are failures, a real word is not", (t) => {
  const reply = (content: unknown, reasoning?: unknown) =>
    JSON.stringify({ choices: [{ message: { content, reasoning_content: reasoning } }] });
  t.is(badAnswer(reply('ok')), undefined);
  t.is(badAnswer(reply(null, 'The user wants ok.')), undefined);
  t.is(badAnswer(reply('')), 'an empty answer');
  t.is(badAnswer(reply('   ', null)), 'an empty answer');
  t.regex(badAnswer(reply('\uFFFD\uFFFD\uFFFD!!')) ?? '', /garbage/);
  t.regex(badAnswer(reply('!!!!....')) ?? '', /garbage/);
  t.is(badAnswer('{"choices":[]}'), 'no answer in the reply');
  t.is(badAnswer('<html>'), 'not JSON');
});

test("a tqdm bar's first state, with no line end yet, is heard as a partial line", (t) => {
  const lines: string[] = [];
  const partial: string[] = [];
  const ll = new LogLines(
    (l) => lines.push(l),
    (p) => partial.push(p),
  );
  ll.push(Buffer.from('kv done\nCapturing CUDA graphs (mixed prefill-decode, PIECEWISE):   0%|  | 0/67'));
  t.deepEqual(lines, ['kv done']);
  t.deepEqual(partial, ['Capturing CUDA graphs (mixed prefill-decode, PIECEWISE):   0%|  | 0/67']);
  ll.push(Buffer.from('\r 50%| | 33/67'));
  t.deepEqual(lines, ['kv done', 'Capturing CUDA graphs (mixed prefill-decode, PIECEWISE):   0%|  | 0/67']);
  t.deepEqual(partial.at(-1), ' 50%| | 33/67');
});
