// The config contract: every key optional, defaults exactly the deployment guide's values.
import { isIP } from 'node:net';
import { validateDetailed } from 'node-cron';
import { z } from 'zod';
import { DEFAULT_BASE_URL } from '../encodings/known.js';
import { MANAGED_ENV, riskyEnv } from './guards.js';
import {
  absolutePath,
  argValue,
  controlIn,
  controlMessage,
  duration,
  extraArgs,
  gpus,
  httpUrl,
  imageRef,
  mountPath,
  optionalDuration,
  optionalMountPath,
  positiveInt,
  size,
  sizeOrAuto,
} from './schema-parts.js';

import { gateSchema } from './schema-gate.js';
import { monitoringSchemas } from './schema-monitoring.js';

export { MANAGED_ENV } from './guards.js';
export { FORBIDDEN_FLAGS, OWNED_FLAGS } from './vllm-flags.js';

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

const model = z
  .strictObject({
    id: argValue('openai/gpt-oss-120b', 'a Hugging Face model id such as openai/gpt-oss-120b'),
    servedName: argValue('gpt-oss-120b', 'the name clients send, such as gpt-oss-120b'),
    quantization: argValue('mxfp4', 'a quantization method such as mxfp4'),
    gpuMemoryUtilization: z
      .number('expected a number between 0 and 1, e.g. 0.85')
      .gt(0, 'must be above 0 (it is a fraction of GPU memory, e.g. 0.85)')
      .lte(1, 'must be at most 1 (it is a fraction of GPU memory, e.g. 0.85)')
      .default(0.85),
    maxModelLen: positiveInt(32768),
    extraArgs,
  })
  .prefault({});

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
      const why = Object.hasOwn(MANAGED_ENV, name) ? MANAGED_ENV[name] : undefined;
      if (why)
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message: `${name} is managed by the supervisor: ${why}; remove it`,
        });
      else if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
        ctx.addIssue({ code: 'custom', path: [name], message: `"${name}" is not a valid environment variable name` });
      const value = map[name];
      const found = typeof value === 'string' ? controlIn(value) : undefined;
      if (found) ctx.addIssue({ code: 'custom', path: [name], message: controlMessage(found) });
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
    image: imageRef('nvcr.io/nvidia/vllm:25.09-py3'),
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
    /** Variables of RISKY_ENV (or its families) the operator means to set anyway (container.env may carry them). */
    allowEnv: z.array(z.string()).default([]),
    stopTimeout: duration('30s', '1s', '1h'),
    stopOnExit: z.boolean().default(true),
    // `docker login` writes here; the supervisor sends its credentials for the image's registry when pulling.
    registryAuth: absolutePath('/root/.docker/config.json'),
  })
  .prefault({});

const paths = z
  .strictObject({
    encodings: mountPath('/vllm/encodings'),
    huggingface: mountPath('/vllm/huggingface'),
    // vLLM's compile and JIT caches (torch.compile, FlashInfer, Triton, CUDA), kept across recreates.
    cache: optionalMountPath('/vllm/cache'),
  })
  .prefault({});

const encodings = z
  .strictObject({
    verify: z.boolean().default(true),
    restartOnChange: z.boolean().default(true),
    baseUrl: httpUrl(DEFAULT_BASE_URL),
  })
  .prefault({});

const gpu = z
  .strictObject({
    checkMemory: z.boolean().default(true),
    nvidiaSmi: z.string().min(1, 'must not be empty').default('nvidia-smi'),
    // Unified memory (the GB10): before a start that would not fit, evict the page cache that holds it.
    reclaimPageCache: z
      .enum(['auto', 'never'], 'must be "auto" (evict page cache before a start that needs it) or "never"')
      .default('auto'),
    // After a run ends, how long a start waits for its GPU memory to come back.
    releaseTimeout: duration('3m', '0s', '1h'),
    // While the model serves: SM clock, temperature, power and throttle reasons, one nvidia-smi call; null: off.
    telemetryPeriod: duration('30s', '1s', '1h').nullable(),
    // A throttle that lasts this long raises the `throttled` alert.
    throttleAlertAfter: duration('5m', '1s', '24h'),
  })
  .prefault({});

// The host under a load: on unified memory (the GB10) the GPU's memory is the host's, and a load that
// takes more than is there wedges the machine instead of failing.
const memoryGuard = z
  .strictObject({
    enabled: z.boolean().default(true),
    // MemAvailable under this while the container runs kills it (SIGKILL). auto: 4GiB on hosts over
    // 64GiB, else a sixteenth of MemTotal.
    floor: sizeOrAuto('64MiB', '1TiB'),
    // PSI's `full avg10` (percent) over this for two samples in a row kills it too. auto: 40 where the
    // kernel has /proc/pressure; off: not looked at.
    pressure: z
      .union([z.literal('auto'), z.literal('off'), z.number().min(1).max(100)], {
        error: 'expected auto, off, or a percentage between 1 and 100 (PSI full avg10), e.g. 40',
      })
      .default('auto'),
    // After a run ended and gpu.releaseTimeout passed, MemAvailable still this much under what it was
    // before the run, with no process holding it: memory the driver kept (a reboot frees it).
    stuckThreshold: size('8GiB', '256MiB', '1TiB'),
  })
  .prefault({});

const hfToken = z
  .strictObject({
    credential: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/, 'is not a credential name')
      .default('hf_token'),
    // Read directly too: where systemd credentials do not work (some containers), the file still does.
    file: absolutePath('/etc/gptoss/hf_token'),
    env: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'is not an environment variable name')
      .default('HF_TOKEN'),
  })
  .prefault({});

const health = z
  .strictObject({
    startup: z
      .strictObject({
        period: duration('10s', '100ms', '10m'),
        // The overall cap; time spent downloading the weights does not count against it.
        timeout: duration('15m', '1s', '24h'),
        // No progress (a recognised log line, a progress step, download bytes) for this long fails the
        // load; null: each phase's own default (src/core/machine/load.ts).
        stallTimeout: optionalDuration('1s', '24h'),
      })
      .prefault({}),
    liveness: z
      .strictObject({
        period: duration('10s', '100ms', '1h'),
        timeout: duration('5s', '100ms', '10m'),
        failureThreshold: positiveInt(3),
      })
      .prefault({}),
    readiness: z
      .strictObject({ period: duration('10s', '100ms', '1h'), timeout: duration('5s', '100ms', '10m') })
      .prefault({}),
    // vLLM's /metrics (or its stats log line) on the readiness period: requests in the engine and no
    // token generated for `window` is a stall; `failureThreshold` such looks in a row restart it.
    stall: z
      .strictObject({
        enabled: z.boolean().default(true),
        window: duration('3m', '1s', '1h'),
        failureThreshold: positiveInt(2),
      })
      .prefault({}),
    // Slower than itself: the decode speed of the spec's first `baseline` of serving (the median, kept in
    // the state file) against the last `window` with requests running; `slower` (0.25: a quarter fewer
    // tokens per second) says so in the status and raises the `slow` alert.
    slow: z
      .strictObject({
        enabled: z.boolean().default(true),
        baseline: duration('1h', '1s', '7d'),
        window: duration('5m', '1s', '1d'),
        slower: z
          .number('expected a fraction such as 0.25')
          .min(0.05, 'must be between 0.05 and 0.95 (a fraction of the usual speed)')
          .max(0.95, 'must be between 0.05 and 0.95 (a fraction of the usual speed)')
          .default(0.25),
      })
      .prefault({}),
  })
  .prefault({});

const restart = z
  .strictObject({
    // Not 0: a start that fails at once would be retried in a tight loop (Docker's own first delay is 100ms).
    initialDelay: duration('10s', '100ms', '1h'),
    multiplier: z.number().min(1, 'must be at least 1 (1 keeps the delay constant)').default(2),
    maxDelay: duration('5m', '100ms', '24h'),
    jitter: z.number().min(0, 'must be between 0 and 1').max(1, 'must be between 0 and 1').default(0.1),
    resetAfter: duration('10m', '1s', '7d'),
    crashLoopAfter: positiveInt(3),
    // At most `count` restarts within `window`; then the state `failed` (no more restarts) until the
    // config changes, `gptoss-supervisor restart`, or the window passes. null: no budget.
    budget: z
      .strictObject({ count: positiveInt(10), window: duration('1h', '1m', '7d') })
      .nullable()
      .default(null),
  })
  .prefault({});

// What blocks a start is looked at again on its own clock, one key per kind of wait.
const waits = z
  .strictObject({
    // A missing prerequisite: Docker, the image's pull under way, files, the token's access, the port, memory.
    recheck: duration('10s', '100ms', '1h'),
    // Docker without a GPU runtime: only a new runtime and a Docker restart fix it.
    gpuRuntimeRecheck: duration('5m', '1s', '24h'),
    // A pull refused for what a person must fix (a wrong image name, refused credentials).
    pullRetry: duration('5m', '1s', '24h'),
  })
  .prefault({});

// Back to the last spec that served when a new one cannot (config is never rewritten).
const rollback = z
  .strictObject({
    enabled: z.boolean().default(true),
    // Failed starts of a new spec (of kinds a restart might fix) before going back; what no restart
    // fixes (bad flags, the KV cache, kernels for the GPU, the model's name) goes back at once.
    after: positiveInt(2),
    // A new spec proves itself by serving this long; a failure before (its canary) goes back.
    canaryWindow: duration('10m', '1s', '24h'),
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
        timeout: duration('60s', '1s', '10m'),
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
  .strictObject({
    model,
    container,
    paths,
    encodings,
    gpu,
    memoryGuard,
    hfToken,
    health,
    restart,
    waits,
    rollback,
    schedule,
    notify,
    gate: gateSchema,
    metrics: monitoringSchemas.metrics,
    alerts: monitoringSchemas.alerts,
  })
  .superRefine((c, ctx) => {
    for (const name of Object.keys(c.container.env)) {
      const why = riskyEnv(name);
      if (why && !c.container.allowEnv.includes(name)) {
        const message = `${name} is refused: ${why}; if that is what you mean, list it in container.allowEnv`;
        ctx.addIssue({ code: 'custom', path: ['container', 'env', name], message });
      }
    }
    if (c.gate.enabled && c.gate.upstreamPort !== 0 && c.gate.upstreamPort === c.container.port) {
      ctx.addIssue({
        code: 'custom',
        path: ['gate', 'upstreamPort'],
        message: `must differ from container.port (${c.container.port}): the gate listens there`,
      });
    }
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
