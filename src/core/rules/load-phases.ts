// vLLM's start-up, phase by phase, as its own log lines tell it: a table of data, read by `recogniseLoadLine`.
//
// Every pattern was written from a real line; `source` names where (files under test/fixtures/vllm-logs
// carry the issue they were copied from on their first line; `vllm:` names vLLM's source file that
// prints it). test/unit/load.test.ts checks each row against its real lines. A line that
// matches nothing is not an error: it says nothing about the load. The lines are the container's,
// cut to MAX_LINE; a pattern has bounded parts between its literals only (test/unit/hostile.test.ts
// times each row on input built to backtrack).
import { LOAD_PHASES, type LoadPhase } from '../model/events.js';
import { capLine } from './log-lines.js';

/** What the status line calls each phase. */
export const PHASE_LABEL: Record<LoadPhase, string> = {
  starting: 'starting vLLM',
  download: 'downloading weights',
  weights: 'loading weights',
  compile: 'compiling (torch.compile)',
  'kv-cache': 'profiling memory and the KV cache',
  graphs: 'capturing CUDA graphs',
  api: 'starting the API server',
};

export interface PhaseRow {
  phase: LoadPhase;
  re: RegExp;
  /** Capture groups that carry progress (`done` of `total` steps). */
  progress?: { done: number; total: number };
  /** A capture group with the seconds vLLM says the phase (or its part) took. */
  took?: number;
  /** The line that ends the phase (what comes next starts another, or the serving). */
  ends?: boolean;
  source: string;
}

const HEALTHY = 'test/fixtures/vllm-logs/healthy';
const GB10 = `${HEALTHY}/spark-mxfp4-docker-gptoss120b-gb10-server-clean.log`;
const SPARK = `${HEALTHY}/99sono-qwen36-35b-a3b-nvfp4-dgxspark-v0200.log`;

export const PHASE_TABLE: readonly PhaseRow[] = [
  // weights: DefaultModelLoader; the download happens inside, between "Using model weights format" and
  // "Time spent downloading weights" (printed only when it took over 0.5 s).
  { phase: 'weights', re: /Starting to load model (\S{1,512}?)\.\.\./, source: SPARK },
  {
    phase: 'weights',
    re: /Using model weights format \[/,
    source: 'vllm: model_executor/model_loader/weight_utils.py',
  },
  {
    phase: 'download',
    re: /Time spent downloading weights for \S{1,512}: ([\d.]{1,16}) seconds/,
    took: 1,
    ends: true,
    source: 'vllm: model_executor/model_loader/weight_utils.py download_weights_from_hf',
  },
  {
    phase: 'weights',
    re: /Loading safetensors checkpoint shards:\s{1,16}\d{1,3}% Completed \| (\d{1,9})\/(\d{1,9})/,
    progress: { done: 1, total: 2 },
    source: SPARK,
  },
  { phase: 'weights', re: /Loading weights took ([\d.]{1,16}) seconds/, took: 1, source: SPARK },
  {
    phase: 'weights',
    re: /Model loading took [\d.]{1,16} GiB(?: memory)? and ([\d.]{1,16}) seconds/,
    took: 1,
    ends: true,
    source: SPARK,
  },
  // compile: vLLM's torch.compile backend (cold: "Compiling a graph", warm: "Directly load").
  // The folder (`/root/.cache/vllm/torch_compile_cache/<hash>/rank_0_0/backbone`) is not looked into:
  // `\S+torch_compile_cache\S*` would try every place in a long word for it.
  { phase: 'compile', re: /Using cache directory: \S{1,1024} for vLLM's torch\.compile/, source: GB10 },
  { phase: 'compile', re: /Dynamo bytecode transform time: ([\d.]{1,16}) s/, source: GB10 },
  {
    phase: 'compile',
    re: /Compiling a graph for (?:dynamic shape|compile range \S{1,32} \S{1,32}) takes ([\d.]{1,16}) s/,
    source: GB10,
  },
  {
    phase: 'compile',
    re: /Directly load the compiled graph\(s\) for \S{1,64} shape from the cache, took ([\d.]{1,16}) s/,
    source: 'test/fixtures/vllm-logs/gpu-memory/vllm-23278-gptoss120b-h100-negative-kv.log',
  },
  { phase: 'compile', re: /torch\.compile (?:takes|took) ([\d.]{1,16}) s in total/, took: 1, ends: true, source: GB10 },
  // kv-cache: memory profiling, then the KV cache is sized (FlashInfer's JIT runs silently around here).
  { phase: 'kv-cache', re: /Available KV cache memory: -?[\d.]{1,16} GiB/, source: SPARK },
  { phase: 'kv-cache', re: /GPU KV cache size: [\d,]{1,16} tokens/, source: SPARK },
  { phase: 'kv-cache', re: /Maximum concurrency for [\d,]{1,16} tokens per request/, ends: true, source: SPARK },
  // graphs: one tqdm bar per capture mode; each step is a batch size.
  {
    phase: 'graphs',
    re: /Capturing CUDA graphs? \([^)]{0,64}\):\s{1,16}\d{1,3}%\|[^|]{0,256}\| (\d{1,9})\/(\d{1,9})/,
    progress: { done: 1, total: 2 },
    source: SPARK,
  },
  { phase: 'graphs', re: /Graph capturing finished in (\d{1,9}) secs/, took: 1, ends: true, source: SPARK },
  // api: the engine is up; the OpenAI server starts (then /v1/models lists the model).
  { phase: 'api', re: /init engine \(profile, create kv cache, warmup model\) took ([\d.]{1,16}) s/, source: SPARK },
  { phase: 'api', re: /Starting vLLM API server (?:\d{1,6} )?on /, source: GB10 },
  { phase: 'api', re: /Started server process \[\d{1,10}\]/, source: SPARK },
  { phase: 'api', re: /Waiting for application startup\./, source: SPARK },
  { phase: 'api', re: /Application startup complete\./, ends: true, source: SPARK },
];

export interface LoadLine {
  phase: LoadPhase;
  progress?: { done: number; total: number };
  took?: number;
  ends?: boolean;
}

/** What a log line says about the load, or undefined when it says nothing. */
export function recogniseLoadLine(text: string): LoadLine | undefined {
  const line = capLine(text);
  for (const row of PHASE_TABLE) {
    const m = row.re.exec(line);
    if (!m) continue;
    const out: LoadLine = { phase: row.phase };
    if (row.progress) {
      const done = Number(m[row.progress.done]);
      const total = Number(m[row.progress.total]);
      if (Number.isFinite(done) && Number.isFinite(total) && total > 0) out.progress = { done, total };
    }
    if (row.took !== undefined) {
      const took = Number(m[row.took]);
      if (Number.isFinite(took)) out.took = took;
    }
    if (row.ends) out.ends = true;
    return out;
  }
  return undefined;
}

export const phaseIndex = (p: LoadPhase): number => LOAD_PHASES.indexOf(p);
