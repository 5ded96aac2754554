// The config contract: every key optional, defaults exactly the deployment guide's values.
import { isIP } from 'node:net';
import { validateDetailed } from 'node-cron';
import { z } from 'zod';
import { DEFAULT_BASE_URL } from '../encodings/known.js';
import { formatDuration, parseDuration } from './duration.js';

/** `vllm serve` flags the config owns: a second copy in extraArgs would fight it. */
export const OWNED_FLAGS: Readonly<Record<string, string>> = {
  '--model': 'model.id',
  '--quantization': 'model.quantization',
  '-q': 'model.quantization',
  '--gpu-memory-utilization': 'model.gpuMemoryUtilization',
  '--max-model-len': 'model.maxModelLen',
  '--served-model-name': 'model.servedName',
  '--port': 'container.port',
  '--host': 'container.bindAddress',
};

/** Flags the guide forbids for gpt-oss. */
export const FORBIDDEN_FLAGS: Readonly<Record<string, string>> = {
  '--trust-remote-code': 'gpt-oss needs no remote code; running it would execute code from the model repository',
  '--enable-auto-tool-choice': 'gpt-oss enables tool use by itself; this flag breaks it',
};

/** Variables the supervisor sets in the container; `container.env` may not override them. */
export const MANAGED_ENV: Readonly<Record<string, string>> = {
  HF_TOKEN: 'the token comes from hfToken (a systemd credential, a file or the environment)',
  TIKTOKEN_ENCODINGS_BASE: 'it must point at the read-only mount of paths.encodings',
};

export const ULIMIT_NAMES = [
  'core',
  'cpu',
  'data',
  'fsize',
  'locks',
  'memlock',
  'msgqueue',
  'nice',
  'nofile',
  'nproc',
  'rss',
  'rtprio',
  'rttime',
  'sigpending',
  'stack',
] as const;

/** A duration in ms; `min` (ms) keeps periods and timeouts from turning into busy loops. */
const duration = (fallback: string, min = 0) =>
  z
    .string({ error: 'expected a duration such as 30s, 10m or 1h' })
    .transform((text, ctx) => {
      const ms = parseDuration(text);
      if (ms === undefined) {
        ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration; write it like 30s, 10m, 1h or 1m30s` });
        return z.NEVER;
      }
      if (ms < min) {
        ctx.addIssue({ code: 'custom', message: `must be at least ${formatDuration(min)}` });
        return z.NEVER;
      }
      return ms;
    })
    .prefault(fallback);

const positiveInt = (fallback: number) =>
  z.int('expected a whole number').min(1, 'must be at least 1').default(fallback);

const absolutePath = (fallback: string) =>
  z
    .string('expected an absolute path')
    .refine((p) => p.startsWith('/'), 'must be an absolute path (starting with /)')
    .refine((p) => !p.includes(':'), 'must not contain ":" (Docker uses it to separate bind-mount fields)')
    .default(fallback);

const flagName = (arg: string) => arg.split('=')[0] ?? arg;

const model = z
  .strictObject({
    id: z.string().min(1, 'must not be empty').default('openai/gpt-oss-120b'),
    servedName: z.string().min(1, 'must not be empty').default('gpt-oss-120b'),
    quantization: z.string().min(1, 'must not be empty').default('mxfp4'),
    gpuMemoryUtilization: z
      .number('expected a number between 0 and 1, e.g. 0.85')
      .gt(0, 'must be above 0 (it is a fraction of GPU memory, e.g. 0.85)')
      .lte(1, 'must be at most 1 (it is a fraction of GPU memory, e.g. 0.85)')
      .default(0.85),
    maxModelLen: positiveInt(32768),
    extraArgs: z
      .array(z.string('expected a flag as a string, e.g. "--max-num-seqs=64"'))
      .default([])
      .superRefine((args, ctx) => {
        args.forEach((arg, i) => {
          const name = flagName(arg);
          const forbidden = FORBIDDEN_FLAGS[name];
          if (forbidden)
            ctx.addIssue({ code: 'custom', path: [i], message: `${name} is refused: ${forbidden}; remove it` });
          const owner = OWNED_FLAGS[name];
          if (owner)
            ctx.addIssue({
              code: 'custom',
              path: [i],
              message: `${name} is set by ${owner}; set that key instead of repeating the flag`,
            });
        });
      }),
  })
  .prefault({});

const gpus = z
  .union([z.enum(['all', 'none']), z.int().min(1), z.array(z.union([z.string().min(1), z.int().min(0)])).min(1)], {
    error: 'expected "all", "none", a GPU count such as 1, or a list of device ids such as [0, 1]',
  })
  .default('all');

const ulimitValue = z.union([z.int().min(-1), z.strictObject({ soft: z.int().min(-1), hard: z.int().min(-1) })], {
  error: 'expected a whole number (-1 for unlimited) or { soft: N, hard: N }',
});

const ulimits = z
  .record(z.string(), ulimitValue)
  .default({})
  .superRefine((map, ctx) => {
    for (const name of Object.keys(map)) {
      if (!(ULIMIT_NAMES as readonly string[]).includes(name)) {
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message: `unknown ulimit "${name}"; known: ${ULIMIT_NAMES.join(', ')}`,
        });
      }
    }
  })
  .transform((map) => ({ memlock: -1, stack: 67108864, ...map }));

const env = z
  .record(z.string(), z.union([z.string(), z.number(), z.boolean()], 'expected a string value'))
  .default({})
  .superRefine((map, ctx) => {
    for (const name of Object.keys(map)) {
      const why = MANAGED_ENV[name];
      if (why)
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message: `${name} is managed by the supervisor: ${why}; remove it`,
        });
      else if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
        ctx.addIssue({ code: 'custom', path: [name], message: `"${name}" is not a valid environment variable name` });
    }
  })
  .transform((map) => Object.fromEntries(Object.entries(map).map(([k, v]) => [k, String(v)])));

const container = z
  .strictObject({
    name: z
      .string()
      .regex(
        /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/,
        'is not a valid container name: use letters, digits, "_", "." and "-", starting with a letter or digit, at ' +
          'least 2 characters',
      )
      .default('vllm-gpt-oss'),
    image: z
      .string()
      .regex(/^[a-z0-9][a-z0-9._\-/:@]*$/i, 'is not an image reference such as nvcr.io/nvidia/vllm:25.09-py3')
      .default('nvcr.io/nvidia/vllm:25.09-py3'),
    port: z.int('expected a port number').min(1, 'must be 1-65535').max(65535, 'must be 1-65535').default(8000),
    bindAddress: z
      .string()
      .refine((a) => a === '' || isIP(a) !== 0, 'expected an IP address such as 127.0.0.1, or "" for all interfaces')
      .default(''),
    gpus,
    ipc: z
      .literal(
        'host',
        'must be "host": vLLM shares memory between its processes through the host IPC namespace (the guide forbids ' +
          'dropping --ipc=host)',
      )
      .default('host'),
    ulimits,
    env,
    stopTimeout: duration('30s'),
    stopOnExit: z.boolean().default(true),
    // `docker login` writes here; the supervisor sends its credentials for the image's registry when pulling.
    registryAuth: z
      .string()
      .refine((p) => p.startsWith('/'), 'must be an absolute path')
      .default('/root/.docker/config.json'),
  })
  .prefault({});

const paths = z
  .strictObject({
    encodings: absolutePath('/vllm/encodings'),
    huggingface: absolutePath('/vllm/huggingface'),
  })
  .prefault({});

const encodings = z
  .strictObject({
    verify: z.boolean().default(true),
    restartOnChange: z.boolean().default(true),
    baseUrl: z
      .string()
      .refine(
        (u) => /^https?:\/\/[^\s/]+/.test(u),
        'expected an http(s) URL such as https://openaipublic.blob.core.windows.net/encodings/',
      )
      .default(DEFAULT_BASE_URL),
  })
  .prefault({});

const gpu = z
  .strictObject({
    checkMemory: z.boolean().default(true),
    nvidiaSmi: z.string().min(1, 'must not be empty').default('nvidia-smi'),
  })
  .prefault({});

const hfToken = z
  .strictObject({
    credential: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/, 'is not a credential name')
      .default('hf_token'),
    // Read directly too: where systemd credentials do not work (some containers), the file still does.
    file: z
      .string()
      .refine((p) => p.startsWith('/'), 'must be an absolute path')
      .default('/etc/gptoss/hf_token'),
    env: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'is not an environment variable name')
      .default('HF_TOKEN'),
  })
  .prefault({});

const health = z
  .strictObject({
    startup: z.strictObject({ period: duration('10s', 100), timeout: duration('15m', 100) }).prefault({}),
    liveness: z
      .strictObject({ period: duration('10s', 100), timeout: duration('5s', 100), failureThreshold: positiveInt(3) })
      .prefault({}),
    readiness: z.strictObject({ period: duration('10s', 100), timeout: duration('5s', 100) }).prefault({}),
  })
  .prefault({});

const restart = z
  .strictObject({
    initialDelay: duration('10s'),
    multiplier: z.number().min(1, 'must be at least 1 (1 keeps the delay constant)').default(2),
    maxDelay: duration('5m'),
    jitter: z.number().min(0, 'must be between 0 and 1').max(1, 'must be between 0 and 1').default(0.1),
    resetAfter: duration('10m'),
    crashLoopAfter: positiveInt(3),
  })
  .prefault({});

/** A cron expression (5 fields, or 6 with seconds first), checked as node-cron will read it. */
const cronExpr = z
  .string('expected a cron expression such as "*/15 * * * *", or nothing to turn it off')
  .nullable()
  .superRefine((e, ctx) => {
    if (!e) return;
    const v = validateDetailed(e);
    if (v.valid) return;
    const why = v.errors.map((x) => x.message.replace(/ a invalid /, ' an invalid ')).join('; ');
    ctx.addIssue({
      code: 'custom',
      message:
        `"${e}" is not a cron expression (${why}); write 5 fields (minute hour day month weekday), or 6 with ` +
        `seconds first, e.g. "*/15 * * * *"`,
    });
  })
  .transform((e) => e || null);

const schedule = z
  .strictObject({
    // What the guide's verification does (/health, /v1/models, one small chat completion), on a timer.
    deepProbe: z
      .strictObject({
        cron: cronExpr.default('*/15 * * * *'),
        timeout: duration('60s', 100),
        failureThreshold: positiveInt(2),
      })
      .prefault({}),
    // A planned graceful restart (off unless a cron is given); at most one a day, only while serving.
    maintenanceRestart: z.strictObject({ cron: cronExpr.default(null) }).prefault({}),
  })
  .prefault({});

const notify = z
  .strictObject({
    ready: z
      .enum(
        ['serving', 'started'],
        'must be "serving" (READY=1 once the model serves) or "started" (as soon as supervision begins)',
      )
      .default('serving'),
  })
  .prefault({});

export const configSchema = z
  .strictObject({ model, container, paths, encodings, gpu, hfToken, health, restart, schedule, notify })
  .superRefine((c, ctx) => {
    if (c.restart.maxDelay < c.restart.initialDelay) {
      ctx.addIssue({
        code: 'custom',
        path: ['restart', 'maxDelay'],
        message: 'must not be shorter than restart.initialDelay',
      });
    }
  });

export type Config = z.output<typeof configSchema>;
/** A ulimit as the config writes it: one value for soft and hard, or both (-1: unlimited). */
export type Ulimit = number | { soft: number; hard: number };
export type Gpus = Config['container']['gpus'];

/** The config with every default applied, as an empty file gives. */
export function defaultConfig(): Config {
  return configSchema.parse({});
}
