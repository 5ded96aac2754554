import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Action } from '../../src/core/model/events.js';
import { PHASE_TABLE, recogniseLoadLine } from '../../src/core/rules/load-phases.js';
import { PHASE_STALL_MS } from '../../src/core/machine/load.js';
import { extendFor } from '../../src/core/machine/ready.js';
import { unixSince } from '../../src/docker/engine.js';
import { Driver, MIN, S, SEC } from '../helpers/driver.js';

const CORPUS = 'test/fixtures/vllm-logs';
const logs = (a: Action[]) => a.filter((x): x is Extract<Action, { type: 'log' }> => x.type === 'log');

/** Every line of the real logs, the quote marker of GitHub taken off. */
function corpusLines(): { file: string; line: string }[] {
  const out: { file: string; line: string }[] = [];
  for (const dir of readdirSync(CORPUS, { withFileTypes: true })) {
    if (!dir.isDirectory()) continue;
    for (const f of readdirSync(join(CORPUS, dir.name))) {
      const file = join(CORPUS, dir.name, f);
      for (const line of readFileSync(file, 'utf8').split('\n')) out.push({ file, line: line.replace(/^> ?/, '') });
    }
  }
  return out;
}

test('each row of the phase table matches a real line in the file it cites', (t) => {
  const lines = corpusLines();
  for (const row of PHASE_TABLE) {
    if (row.source.startsWith('vllm:')) continue; // from vLLM's source; checked below with a copied line
    const file = row.source;
    const hit = lines.find((l) => l.file === file && row.re.test(l.line));
    t.truthy(hit, `${row.re} in ${file}`);
    t.is(recogniseLoadLine(hit?.line ?? '')?.phase, row.phase, `${row.re}: the first row that matches is this one`);
  }
});

test('real lines, read: phases, progress steps, durations; unknown lines say nothing', (t) => {
  const rows: [string, object | undefined][] = [
    [
      '(EngineCore pid=125) INFO 05-03 17:14:33 [gpu_model_runner.py:3] Starting to load model openai/gpt-oss-120b...',
      { phase: 'weights' },
    ],
    ["INFO 08-12 22:32:06 [weight_utils.py:296] Using model weights format ['*.safetensors']", { phase: 'weights' }],
    [
      'INFO 03-22 12:23:49 [weight_utils.py:273] Time spent downloading weights for deepseek-ai/x: 508.576789 seconds',
      { phase: 'download', took: 508.576789, ends: true },
    ],
    [
      'Loading safetensors checkpoint shards:  54% Completed | 7/13 [05:03<04:31, 45.22s/it]',
      { phase: 'weights', progress: { done: 7, total: 13 } },
    ],
    ['Model loading took 65.9651 GiB and 12.799889 seconds', { phase: 'weights', took: 12.799889, ends: true }],
    ['torch.compile takes 48.77 s in total', { phase: 'compile', took: 48.77, ends: true }],
    ['torch.compile took 33.09 s in total', { phase: 'compile', took: 33.09, ends: true }],
    [
      'Capturing CUDA graphs (mixed prefill-decode, PIECEWISE):   0%|          | 0/1 [00:00<?, ?it/s]',
      { phase: 'graphs', progress: { done: 0, total: 1 } },
    ],
    ['Graph capturing finished in 6 secs, took 0.87 GiB', { phase: 'graphs', took: 6, ends: true }],
    ['init engine (profile, create kv cache, warmup model) took 115.58 seconds', { phase: 'api' }],
    ['(APIServer pid=1) INFO:     Application startup complete.', { phase: 'api', ends: true }],
    ['Engine 000: Avg prompt throughput: 0.0 tokens/s, Running: 0 reqs', undefined],
    ['some line nobody has seen before', undefined],
    ['', undefined],
  ];
  for (const [line, want] of rows) t.deepEqual(recogniseLoadLine(line), want, line);
});

test('a load, phase by phase: one journal line per phase change, the status says where it is', (t) => {
  const d = new Driver().booted();
  const said: string[] = [];
  const line = (ms: number, l: string) => said.push(...logs(d.at(ms).line(l)).map((x) => x.msg));
  line(10 * SEC, 'Starting to load model openai/gpt-oss-120b...');
  line(20 * SEC, 'Loading safetensors checkpoint shards:   0% Completed | 0/15 [00:00<?, ?it/s]');
  line(77 * SEC, 'Loading safetensors checkpoint shards: 100% Completed | 15/15 [00:57<00:00,  3.8s/it]');
  line(
    78 * SEC,
    "Using cache directory: /root/.cache/vllm/torch_compile_cache/2b/rank_0_0/backbone for vLLM's torch.compile",
  );
  d.at(78 * SEC + 4 * MIN + 10 * SEC);
  t.is(d.status(), 'loading gpt-oss-120b: compiling (torch.compile) for 4m10s; weights in 1m8s; 5m28s of 15m');
  line(6 * MIN, 'torch.compile takes 48.77 s in total');
  line(6 * MIN + 1 * SEC, 'Available KV cache memory: 30.1 GiB');
  line(7 * MIN, 'Capturing CUDA graphs (mixed prefill-decode, PIECEWISE):  50%|█| 33/67 [00:03<00:03]');
  t.regex(d.status(), /^loading gpt-oss-120b: capturing CUDA graphs 33\/67 for 0s; kv-cache in 59s; 7m of 15m$/);
  line(7 * MIN + 20 * SEC, 'init engine (profile, create kv cache, warmup model) took 115.58 seconds');
  t.deepEqual(said, [
    'load: loading weights (starting vLLM took 10s)',
    'load: compiling (torch.compile) (loading weights took 1m8s)',
    'load: profiling memory and the KV cache (compiling (torch.compile) took 4m43s)',
    'load: capturing CUDA graphs (profiling memory and the KV cache took 59s)',
    'load: starting the API server (capturing CUDA graphs took 20s)',
  ]);
  // Served: the load's phases are kept, and the next load of this spec shows an ETA from them.
  d.at(7 * MIN + 40 * SEC).tick();
  d.probe('startup', true);
  d.tick();
  d.probe('readiness', true);
  // Listed: it serves once its first completion (the warm-up) answers.
  t.regex(d.status(), /listed; waiting for its first completion \(warm-up\)/);
  d.tick();
  const ready = logs(d.probe('warmup', true));
  t.is(
    ready[0]?.msg,
    'serving gpt-oss-120b on port 8000 after 7m40s (weights 1m8s, compile 4m43s, kv-cache 59s, graphs 20s, api 20s)',
  );
  t.is(d.state.history.lastLoad?.took, 7 * MIN + 40 * SEC);
  d.send({ type: 'observed', seen: { kind: 'exited', id: 'c1', exit: { code: 1, oom: false, tail: [] } } });
  d.at(20 * MIN).tick();
  d.send({ type: 'reconciled', id: 'c2', outcome: 'created', reason: 'x', startedAt: 20 * MIN });
  d.at(20 * MIN + 3 * MIN).line('Starting to load model openai/gpt-oss-120b...');
  t.is(d.status(), 'loading gpt-oss-120b: loading weights for 0s; 3m in, usually ready in 7m40s');
});

test('a load that hangs in compile fails at the compile stall timeout: load-stalled, phase and last line', (t) => {
  const d = new Driver().booted('c1');
  d.at(30 * SEC).line('Model loading took 65.97 GiB and 28.3 seconds');
  const last =
    "Using cache directory: /root/.cache/vllm/torch_compile_cache/ab/rank_0_0/backbone for vLLM's torch.compile";
  d.at(60 * SEC).line(last);
  t.is(d.state.phase, 'loading');
  t.is(
    extendFor(d.state, 60 * SEC, S),
    PHASE_STALL_MS.compile + MIN,
    "systemd's start timeout: past the stall deadline",
  );
  d.at(60 * SEC + PHASE_STALL_MS.compile - 1).tick();
  t.is(d.state.phase, 'loading', 'not a moment early');
  const a = d.at(60 * SEC + PHASE_STALL_MS.compile).tick();
  t.is(d.state.phase, 'backoff');
  t.is(d.state.history.diagnosis?.code, 'load-stalled');
  t.regex(
    d.state.history.diagnosis?.summary ?? '',
    /while compiling \(torch\.compile\): no progress for 5m; last line: Using cache directory/,
  );
  t.is(d.state.history.cause, 'load stalled (compile)');
  t.true(logs(a).some((l) => l.level === 'error' && l.event === 'diagnosis'));
  t.is(d.status(), 'backoff: restart 1 in 10s (load stalled (compile))');
  t.is(extendFor(d.state, d.now, S), undefined, 'no more extensions: READY goes out with the backoff');
});

test('health.startup.stallTimeout replaces every phase default', (t) => {
  const d = new Driver({ ...S, loadStallTimeout: 20 * SEC }).booted();
  d.at(19 * SEC).tick();
  t.is(d.state.phase, 'loading');
  d.at(20 * SEC).tick();
  t.is(d.state.phase, 'backoff');
  t.regex(
    d.state.history.diagnosis?.summary ?? '',
    /while starting vLLM: no progress for 20s; no start-up line recognised yet/,
  );
});

test('a download that keeps moving is never killed, and its time is left out of the start-up budget', (t) => {
  const d = new Driver().booted();
  d.at(5 * SEC).line('Starting to load model openai/gpt-oss-120b...');
  // 65 GB at 25 MB/s: 43 minutes, three times the 15-minute budget.
  let bytes = 0;
  for (let ms = 10 * SEC; ms <= 45 * MIN; ms += 10 * SEC) {
    d.at(ms).tick();
    bytes = Math.min(65e9, bytes + 250e6);
    d.send({
      type: 'probed',
      kind: 'startup',
      epoch: d.state.epoch,
      ok: false,
      error: 'connection refused',
      disk: { bytes, incomplete: 1, complete: false },
    });
    t.is(d.state.phase, 'loading', `at ${ms / 1000}s`);
  }
  t.regex(d.status(), /^loading gpt-oss-120b: downloading weights: 65\.0 GB, 25 MB\/s$/);
  d.at(45 * MIN + 1 * SEC).line('Time spent downloading weights for openai/gpt-oss-120b: 2695.000000 seconds');
  d.at(45 * MIN + 10 * SEC).tick();
  d.send({
    type: 'probed',
    kind: 'startup',
    epoch: d.state.epoch,
    ok: false,
    disk: { bytes: 65e9, incomplete: 0, complete: true },
  });
  t.is(d.state.history.modelBytes?.bytes, 65e9, 'the size, for the next download');
  t.regex(d.status(), /^loading gpt-oss-120b: loading weights for 9s; download in 4[45]m\d*s?; \d+s of 15m$/);
});

test('a second download knows the total: percent of it and an ETA; a download that stops stalls', (t) => {
  const d = new Driver().booted();
  d.state = { ...d.state, history: { ...d.state.history, modelBytes: { model: S.modelId, bytes: 65.3e9 } } };
  const disk = (ms: number, bytes: number) => {
    d.at(ms).tick();
    d.send({
      type: 'probed',
      kind: 'startup',
      epoch: d.state.epoch,
      ok: false,
      disk: { bytes, incomplete: 1, complete: false },
    });
  };
  disk(10 * SEC, 23e9);
  disk(20 * SEC, 23.41e9);
  t.is(d.status(), 'loading gpt-oss-120b: downloading weights: 23.4 of 65.3 GB, 41 MB/s, ETA 17m2s');
  disk(20 * SEC + PHASE_STALL_MS.download, 23.41e9);
  t.is(d.state.phase, 'backoff');
  t.regex(d.state.history.diagnosis?.summary ?? '', /while downloading weights: no progress for 5m/);
});

test("Docker's start time, to the nanosecond, as the log API's since", (t) => {
  t.is(unixSince('2026-11-28T10:01:56.301234567Z'), '1795860116.301234567');
  t.is(unixSince('2026-11-28T10:01:56Z'), '1795860116.000000000');
  t.is(unixSince('0001-01-01T00:00:00Z'), undefined, "Docker's zero time");
  t.is(unixSince('garbage'), undefined);
});
