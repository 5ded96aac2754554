// Why the model container died or would not start, from its exit and log tail: a code, a summary, a fix.
import type { WaitReason } from './wait.js';

export type DiagnosisCode =
  | 'encodings'
  | 'gpu-memory'
  | 'cuda-oom'
  | 'oom-killed'
  | 'hf-auth'
  | 'model-not-found'
  | 'port-in-use'
  | 'image-missing'
  | 'gpu-runtime'
  | 'bad-args'
  | 'unknown';

export interface Diagnosis {
  /** Stable: scripts, the journal's DIAGNOSIS field and D-Bus carry it. */
  code: DiagnosisCode;
  /** What happened, in one line. */
  summary: string;
  /** What to do about it. */
  remedy: string;
  /**
   * Set when restarting cannot help: the supervisor waits for this instead, and starts again at
   * once when it changes. Unset: restart with backoff.
   */
  waitFor?: WaitReason;
}

export interface FailureInput {
  exitCode: number | null;
  oom: boolean;
  /** The last lines of the container's log, or the message of a refused `docker start`. */
  lines: readonly string[];
  /** Settings the remedies quote. */
  utilization: number;
  maxModelLen: number;
  port: number;
  encodingsDir: string;
  modelId: string;
  image: string;
}

const GIB = /(\d+(?:\.\d+)?)/.source;
/**
 * vLLM's own words (vllm/worker/gpu_worker.py), e.g. "Free memory on device (39.6/119.7 GiB) on startup
 * is less than desired GPU memory utilization (0.85, 101.74 GiB)".
 */
const FREE_MEMORY = new RegExp(
  `Free memory on device \\(${GIB}/${GIB} GiB\\) on startup is less than desired GPU memory utilization \\(${GIB}, ` +
    `${GIB} GiB\\)`,
);

/** A utilization that fits `free` of `total` with a little room, floored to hundredths; undefined below 0.05. */
export function fittingUtilization(freeGiB: number, totalGiB: number): number | undefined {
  if (!(totalGiB > 0)) return undefined;
  const u = Math.floor(((freeGiB - 0.5) / totalGiB) * 100) / 100;
  return u >= 0.05 ? Math.min(u, 0.99) : undefined;
}

/** One pattern that matches where any of `res` does. */
export const anyOf = (...res: RegExp[]): RegExp => new RegExp(res.map((r) => r.source).join('|'));

interface Rule {
  code: DiagnosisCode;
  test: RegExp;
  make(m: RegExpMatchArray, f: FailureInput): Omit<Diagnosis, 'code'>;
}

const RULES: readonly Rule[] = [
  {
    code: 'encodings',
    test: /HarmonyError: error downloading or loading vocab file|error downloading or loading vocab file/,
    make: (_m, f) => ({
      summary:
        'the tokenizer could not load its vocabulary (HarmonyError): the tiktoken files are missing, damaged or not ' +
        'mounted',
      remedy:
        `put o200k_base.tiktoken and cl100k_base.tiktoken in ${f.encodingsDir} (\`gptoss-supervisor ` +
        `fetch-encodings\`); the model starts as soon as they are there`,
      waitFor: 'encodings',
    }),
  },
  {
    code: 'gpu-memory',
    test: FREE_MEMORY,
    make: (m, f) => {
      const free = Number(m[1]);
      const total = Number(m[2]);
      const fit = fittingUtilization(free, total);
      const lower =
        fit === undefined
          ? 'free GPU memory (stop what holds it: nvidia-smi lists it)'
          : `free GPU memory (stop what holds it: nvidia-smi lists it), or set model.gpuMemoryUtilization to ${fit} ` +
            `(fits ${free} GiB free)`;
      return {
        summary:
          `vLLM found ${free} of ${total} GiB free at start-up, less than gpuMemoryUtilization ` +
          `${m[3] ?? f.utilization} needs (${m[4]} GiB)`,
        remedy: lower,
      };
    },
  },
  {
    code: 'cuda-oom',
    test: anyOf(
      /torch\.OutOfMemoryError: CUDA out of memory/,
      /CUDA out of memory\. Tried to allocate/,
      /CUDA error: out of memory/,
    ),
    make: (_m, f) => ({
      summary: 'CUDA ran out of memory while loading or serving',
      remedy:
        `lower model.maxModelLen (now ${f.maxModelLen}, e.g. ${Math.max(1024, f.maxModelLen / 2)}) or ` +
        `model.gpuMemoryUtilization (now ${f.utilization}), or stop other GPU work`,
    }),
  },
  {
    code: 'model-not-found',
    test: /RepositoryNotFoundError|404 Client Error|is not a local folder and is not a valid model identifier/,
    make: (_m, f) => ({
      summary: `Hugging Face has no model ${f.modelId} (404), or the token cannot see it`,
      remedy:
        'check model.id in the config, and that the HF token may read it; the model starts again as soon as either ' +
        'changes',
      waitFor: 'model',
    }),
  },
  {
    code: 'hf-auth',
    test: anyOf(
      /\b40[13] Client Error/,
      /GatedRepoError/,
      /Invalid credentials in Authorization header/,
      /Invalid user token/,
      /You are trying to access a gated repo/,
      /Access to model .* is restricted/,
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
    code: 'port-in-use',
    test: /port is already allocated|address already in use|failed to bind host port/,
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
      /could not select device driver .* with capabilities: \[\[gpu\]\]/,
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
    test: /error: unrecognized arguments:|error: argument --[\w-]+:|error: the following arguments are required/,
    make: (m) => ({
      summary: `vllm serve refused its command line (${m[0].replace(/^error: /, '')}...)`,
      remedy:
        'fix model.extraArgs in the config (`gptoss-supervisor render` shows the command); the model starts again as ' +
        'soon as the config changes',
      waitFor: 'config',
    }),
  },
];

/** The log line a rule matched, kept short for the status line and the journal. */
function quote(line: string): string {
  const t = line.replace(/^\(\w+ pid=\d+\)\s*/, '').trim();
  return t.length > 240 ? `${t.slice(0, 237)}...` : t;
}

/**
 * Classifies a failure. Rules look at the log from its end: the last error printed is the one
 * that ended the process (a 401 printed while a HarmonyError traceback unwinds, say, is not).
 */
export function diagnose(f: FailureInput): Diagnosis & { evidence?: string } {
  for (let i = f.lines.length - 1; i >= 0; i--) {
    const line = f.lines[i] ?? '';
    for (const r of RULES) {
      const m = line.match(r.test);
      if (m) return { code: r.code, ...r.make(m, f), evidence: quote(line) };
    }
  }
  if (f.oom) {
    return {
      code: 'oom-killed',
      summary: 'the kernel killed the container for memory (OOMKilled)',
      remedy:
        `lower model.maxModelLen (now ${f.maxModelLen}) or model.gpuMemoryUtilization (now ${f.utilization}); ` +
        `on the GB10 CPU and GPU share memory, so also stop other large processes`,
    };
  }
  const code = f.exitCode === null ? 'removed' : `exit ${f.exitCode}`;
  return {
    code: 'unknown',
    summary: `the container failed (${code}) for a reason not recognised`,
    remedy: 'read its log: `docker logs --tail 100 <container>`',
  };
}
