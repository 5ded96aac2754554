// The diagnosis table: vLLM's, Hugging Face's and Docker's own words, most explaining first.
//
// The lines are the container's (the outside's), cut to MAX_LINE: each pattern is literals with
// bounded parts between them (`\S{1,256}`, never `.*`), so that its time grows with the line's length
// and no faster; test/unit/hostile.test.ts times every one of them on input built to backtrack.
import type { Diagnosis, DiagnosisCode, FailureInput } from '../model/diagnosis.js';
import { fittingUtilization } from './fit.js';

export interface Rule {
  code: DiagnosisCode;
  test: RegExp;
  make(m: RegExpMatchArray, f: FailureInput): Omit<Diagnosis, 'code'>;
}

/** One pattern that matches where any of `res` does (flags of the first). */
export const anyOf = (...res: RegExp[]): RegExp => new RegExp(res.map((r) => r.source).join('|'), res[0]?.flags);

const NUM = /(\d{1,9}(?:\.\d{1,9})?)/.source;

/**
 * vLLM's start-up memory check (vllm/worker/gpu_worker.py; vllm/v1/worker/utils.py), e.g.
 * "Free memory on device (39.6/119.7 GiB) on startup is less than desired GPU memory utilization (0.85, 101.74 GiB)"
 * and, newer, "Free memory on device cuda:0 (22.35/23.56 GiB) on startup ...".
 */
const FREE_MEMORY = new RegExp(
  `Free memory on device (?:\\S{1,64} )?\\(${NUM}/${NUM} GiB\\) on startup ` +
    `is less than desired GPU memory utilization \\(${NUM}, ${NUM} GiB\\)`,
);

/** The longest context vLLM says fits: the new wording's estimate, or the old one's KV cache size in tokens. */
const KV_TOO_SMALL = anyOf(
  /estimated maximum model length is (\d{1,12})/,
  // eslint-disable-next-line max-len -- vLLM's sentence, whole
  /max seq len \((\d{1,12})\) is larger than the maximum number of tokens that can be stored in KV cache \((\d{1,12})\)/,
  /To serve at least one request with the models?'s max seq len \((\d{1,12})\), \(([\d.]{1,16}) GiB KV cache is needed/,
);
/** What the kv-cache rule's summary quotes from its line. */
const KV_ESTIMATE = /estimated maximum model length is (\d{1,12})/;
const KV_STORED = /stored in KV cache \((\d{1,12})\)/;
const KV_MAX_LEN = /max seq len \((\d{1,12})\)/;

/** A context length that fits, floored to a multiple of 1024 (vLLM's estimate is exact; a little room helps). */
const fittingLen = (n: number) => Math.max(1024, Math.floor(n / 1024) * 1024);

const CUDA_OOM = anyOf(
  /torch\.OutOfMemoryError: CUDA out of memory/,
  /CUDA out of memory\. Tried to allocate/,
  /CUDA (?:driver )?error: out of memory/,
  /CUDA out of memory occurred when warming up/,
  /cudaErrorMemoryAllocation|CUDA_ERROR_OUT_OF_MEMORY/,
);

export const RULES: readonly Rule[] = [
  {
    code: 'encodings',
    // openai_harmony: "error downloading or loading vocab file", and for a file that is there but wrong,
    // "invalid tiktoken vocab file: hash mismatch: computed=..., expected=..." (openai/harmony src/tiktoken_ext).
    test: /error downloading or loading vocab file|invalid tiktoken vocab file/,
    make: (m, f) => ({
      summary: /invalid tiktoken/.test(m[0])
        ? 'the tokenizer refused a tiktoken file that is there but wrong (HarmonyError: invalid tiktoken vocab file)'
        : 'the tokenizer could not load its vocabulary (HarmonyError): the tiktoken files are missing, damaged or ' +
          'not mounted',
      remedy:
        `put o200k_base.tiktoken and cl100k_base.tiktoken in ${f.encodingsDir} (\`gptoss-supervisor ` +
        `fetch-encodings\` replaces damaged ones); the model starts as soon as they are there`,
      waitFor: 'encodings',
    }),
  },
  {
    code: 'hf-auth',
    // A RepositoryNotFoundError with 401 and "Invalid username or password" is the token, not the id.
    test: anyOf(
      /\b40[13] Client Error/,
      /GatedRepoError/,
      /Invalid credentials in Authorization header/,
      /Invalid user token/,
      /Invalid username or password/,
      /You are trying to access a gated repo/,
      // HF's words: `Access to model meta-llama/Llama-3.1-8B is restricted and you are not in the authorized list`.
      /Access to model \S{1,256} is restricted/,
    ),
    make: (_m, f) => ({
      summary:
        `Hugging Face refused the HF token for ${f.modelId} (401/403: wrong, expired, or without access to ` +
        `the model)`,
      remedy:
        "put a valid token in /etc/gptoss/hf_token (or where hfToken points) and accept the model's terms on " +
        'huggingface.co; the model starts again as soon as the token changes',
      waitFor: 'hf-token',
    }),
  },
  {
    code: 'model-not-found',
    test: anyOf(
      /RepositoryNotFoundError/,
      /404 Client Error/,
      /is not a local folder and is not a valid model identifier/,
      /Repo id must be in the form|Repo id must use alphanumeric/,
      /Invalid repository ID or local directory specified/,
    ),
    make: (_m, f) => ({
      summary: `Hugging Face has no model ${f.modelId} (404), or the token cannot see it`,
      remedy:
        'check model.id in the config, and that the HF token may read it; the model starts again as soon as either ' +
        'changes',
      waitFor: 'model',
    }),
  },
  {
    code: 'unsupported-gpu',
    test: anyOf(
      /No supported CUDA architectures found/,
      /MXFP4 grouped gemm is not supported on this device/,
      /no kernel image is available for execution on the device/,
      /is not supported for the current GPU\. Minimum capability/,
      /does not support \.target sm_\d{1,4}/,
    ),
    make: (m, f) => ({
      summary: `the image ${f.image} has no kernels for this GPU (${m[0]})`,
      remedy:
        'set container.image to an image built for this GPU (the GB10 is sm_121: NGC vllm 25.09 or newer); the ' +
        'model starts again as soon as the config changes',
      waitFor: 'config',
    }),
  },
  {
    code: 'kv-cache',
    test: KV_TOO_SMALL,
    make: (m, f) => {
      const line = m.input ?? m[0];
      const est = (KV_ESTIMATE.exec(line) ?? KV_STORED.exec(line))?.[1];
      const maxLen = KV_MAX_LEN.exec(line)?.[1];
      const fit = est !== undefined ? fittingLen(Number(est)) : undefined;
      return {
        summary:
          `the KV cache cannot hold one request of model.maxModelLen (${maxLen ?? f.maxModelLen} tokens)` +
          `${est !== undefined ? `; vLLM estimates ${est} tokens fit` : ''}`,
        remedy:
          `set model.maxModelLen to ${fit ?? Math.max(1024, f.maxModelLen / 2)} or less, or raise ` +
          `model.gpuMemoryUtilization (now ${f.utilization}); the model starts again as soon as the config changes`,
        waitFor: 'config',
      };
    },
  },
  {
    code: 'gpu-memory',
    test: FREE_MEMORY,
    make: (m, f) => {
      const free = Number(m[1]);
      const total = Number(m[2]);
      const fit = fittingUtilization(free, total);
      return {
        summary:
          `vLLM found ${free} of ${total} GiB free at start-up, less than gpuMemoryUtilization ` +
          `${m[3] ?? f.utilization} needs (${m[4]} GiB)`,
        remedy:
          'free GPU memory (stop what holds it: nvidia-smi lists it; on the GB10 the page cache counts as used)' +
          `${fit === undefined ? '' : `, or set model.gpuMemoryUtilization to ${fit} (fits ${free} GiB free)`}`,
      };
    },
  },
  {
    code: 'gpu-memory',
    // V1 logs the negative figure just before its engine fails to start (vllm/v1/worker/gpu_worker.py).
    test: /No available memory for the cache blocks|Available KV cache memory: -\d/,
    make: (m, f) => ({
      summary: `the model weights left no memory for the KV cache (${m[0]})`,
      remedy:
        `raise model.gpuMemoryUtilization (now ${f.utilization}) if memory allows, or stop what else uses GPU ` +
        'memory',
    }),
  },
  {
    code: 'cuda-oom',
    test: CUDA_OOM,
    make: (_m, f) => ({
      summary: 'CUDA ran out of memory while loading or serving',
      remedy:
        `lower model.maxModelLen (now ${f.maxModelLen}, e.g. ${Math.max(1024, f.maxModelLen / 2)}) or ` +
        `model.gpuMemoryUtilization (now ${f.utilization}), or stop other GPU work`,
    }),
  },
  {
    code: 'port-in-use',
    test: /port is already allocated|[Aa]ddress already in use|failed to bind host port/,
    make: (_m, f) => ({
      summary: `host port ${f.port} is already in use by another process or container`,
      remedy:
        `free port ${f.port} (\`ss -ltnp 'sport = :${f.port}'\`, \`docker ps --filter publish=${f.port}\`) or ` +
        `set container.port; the model starts as soon as it is free`,
      waitFor: 'port',
    }),
  },
  {
    code: 'image-missing',
    test: /No such image|pull access denied|manifest unknown|repository does not exist/,
    make: (_m, f) => ({
      summary: `the image ${f.image} is not on this host`,
      remedy: `check container.image; \`docker pull ${f.image}\` (after \`docker login\` for a private registry)`,
      waitFor: 'image',
    }),
  },
  {
    code: 'gpu-runtime',
    test: anyOf(
      // Docker quotes the driver: `could not select device driver "" with capabilities: [[gpu]]`.
      /could not select device driver \S{0,64} with capabilities: \[\[gpu\]\]/,
      /nvidia-container-cli/,
      /nvidia-container-runtime-hook\\?"?: executable file not found/,
      /unknown or invalid runtime name: nvidia/,
    ),
    make: () => ({
      summary: 'Docker cannot give the container a GPU: the NVIDIA container runtime is missing or not configured',
      remedy:
        'install nvidia-container-toolkit, run `nvidia-ctk runtime configure --runtime=docker` and `systemctl ' +
        'restart docker`',
      waitFor: 'gpu-runtime',
    }),
  },
  {
    code: 'bad-args',
    test: /error: unrecognized arguments:|error: argument --[\w-]{1,128}:|error: the following arguments are required/,
    make: (m) => ({
      summary: `vllm serve refused its command line (${m[0].replace(/^error: /, '')}...)`,
      remedy:
        'fix model.extraArgs in the config (`gptoss-supervisor render` shows the command); the model starts again as ' +
        'soon as the config changes',
      waitFor: 'config',
    }),
  },
  {
    code: 'engine-dead',
    test: /\b(?:Async)?EngineDeadError\b|EngineCore encountered an issue|EngineCore died unexpectedly/,
    make: (m) => ({
      summary: `vLLM's engine died (${m[0]}) while the API server ran on`,
      remedy:
        'restarted automatically; if it repeats, the lines above it in `docker logs` name the cause (often memory)',
    }),
  },
];
