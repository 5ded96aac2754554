// Gathers the facts for the checks: before each start (the daemon) or all of them (doctor).
import { createHash } from 'node:crypto';
import type { Config } from '../config/schema.js';
import { CACHE_MOUNTS } from '../container/spec.js';
import type { ContainerEngine } from '../docker/engine-api.js';
import { blocker, evaluate, type CheckResult, type EncodingFact, type Facts } from '../core/rules/checks.js';
import type { Release } from '../core/model/events.js';
import { querySmi, type AppRow, type SmiAnswer } from '../gpu/nvidia-smi.js';
import { memAvailableNow } from '../gpu/host-memory.js';
import { missingBytes, type ReleaseFact } from '../core/rules/release.js';
import type { ExposureInput } from '../core/rules/exposure.js';
import {
  encodingFacts,
  gpuMemoryFact,
  huggingfaceFact,
  portFact,
  releaseApps,
  runtimeFact,
  symlinkFacts,
} from './facts.js';

export interface PreflightInput {
  config: Config;
  engine: ContainerEngine;
  /** Where the HF token came from, or undefined when there is none. */
  tokenSource: string | undefined;
  /** Reads the tiktoken files (a cache that knows unchanged files); default: hash them again. */
  encodings?: { facts(dir: string, verify: boolean): Promise<EncodingFact[]> };
  /** Look at Docker's GPU support (a warning only); the daemon does it at its first start. */
  gpuRuntime?: boolean;
  /** Evict page cache that keeps the model from fitting (a start, not `doctor`). */
  reclaim?: boolean;
  /** The last run ended lately: wait for its memory (a start after a failure or a stop). */
  release?: Release;
  now?: () => number;
}

/** Under systemd the unit's sandbox makes the host read-only to us, not to Docker. */
const sandboxed = () => Boolean(process.env['INVOCATION_ID']);

/** Stands for both files' contents: a change means vLLM would load different vocabularies. */
export function encodingsFingerprint(files: readonly EncodingFact[]): string | undefined {
  if (files.some((f) => !f.sha256)) return undefined;
  return createHash('sha256')
    .update(files.map((f) => `${f.file}=${f.sha256}`).join('\n'))
    .digest('hex')
    .slice(0, 16);
}

/** Every host path the container mounts, by its config key: the cache with each subfolder Docker mounts. */
export function mountedPaths(c: Config): Record<string, string | string[]> {
  const cache = c.paths.cache;
  return {
    encodings: c.paths.encodings,
    huggingface: c.paths.huggingface,
    ...(cache === null ? {} : { cache: [cache, ...CACHE_MOUNTS.map((m) => `${cache}/${m.sub}`)] }),
  };
}

/** Where the model's API listens, and whether it asks for a key there. */
export function exposureOf(c: Config): ExposureInput {
  return {
    bindAddress: c.container.bindAddress,
    port: c.container.port,
    gate: c.gate.enabled,
    apiKeyFile: c.gate.apiKeyFile !== null,
    vllmApiKey: Object.hasOwn(c.container.env, 'VLLM_API_KEY') && c.container.env['VLLM_API_KEY'] !== '',
  };
}

/** What must hold before the model container is started: files, token, port, memory. */
export async function prestartFacts(inp: PreflightInput): Promise<Facts> {
  const { config: c, engine } = inp;
  const rel = inp.release;
  // The port the container publishes: the guide's, or with the gate a loopback one (auto: Docker picks it).
  const published = !c.gate.enabled
    ? { port: c.container.port, host: c.container.bindAddress, key: 'container.port' }
    : c.gate.upstreamPort
      ? { port: c.gate.upstreamPort, host: '127.0.0.1', key: 'gate.upstreamPort' }
      : undefined;
  const now = (inp.now ?? Date.now)();
  const waiting = rel && now < rel.since + rel.timeout ? rel : undefined;
  // Memory the last run did not give back is looked for while it is waited for, and after (memoryGuard).
  const stuck = rel?.availableBefore !== undefined && rel.stuckBytes !== undefined ? rel : undefined;
  // One nvidia-smi answer for the memory check, the last run's processes and who holds memory.
  const smi = c.gpu.checkMemory || waiting || stuck ? await querySmi(c.gpu.nvidiaSmi) : undefined;
  const [files, hf, port, memory, symlinks, apps] = await Promise.all([
    inp.encodings
      ? inp.encodings.facts(c.paths.encodings, c.encodings.verify)
      : encodingFacts(c.paths.encodings, c.encodings.verify),
    huggingfaceFact(c.paths.huggingface, c.model.id, sandboxed()),
    published ? portFact(engine, published.port, published.host, c.container.name) : Promise.resolve(undefined),
    c.gpu.checkMemory ? gpuMemoryFact(c, c.gpu.nvidiaSmi, inp.reclaim === true, smi) : Promise.resolve(undefined),
    symlinkFacts(mountedPaths(c)),
    (waiting || stuck) && smi ? releaseApps(smi, (waiting ?? stuck)!.container) : Promise.resolve(undefined),
  ]);
  const facts: Facts = {
    encodings: { dir: c.paths.encodings, verify: c.encodings.verify, files },
    huggingface: { dir: c.paths.huggingface, fact: hf, modelId: c.model.id },
    token: {
      ...(inp.tokenSource ? { source: inp.tokenSource } : {}),
      file: c.hfToken.file,
      modelCached: hf.modelCached,
    },
  };
  if (published && port) facts.port = { port: published.port, fact: port, key: published.key };
  if (memory) facts.gpuMemory = memory;
  if (waiting && apps) facts.release = { apps, leftMs: waiting.since + waiting.timeout - now };
  if (stuck) facts.release = await stuckFacts(engine, stuck, apps ?? [], smi, now);
  if (symlinks.length) facts.symlinks = symlinks;
  facts.exposure = exposureOf(c);
  return facts;
}

/** What tells memory that did not come back: MemAvailable then and now, who holds GPU memory, the old container. */
async function stuckFacts(
  engine: ContainerEngine,
  rel: Release,
  apps: AppRow[],
  smi: SmiAnswer | undefined,
  now: number,
): Promise<ReleaseFact> {
  const leftMs = rel.since + rel.timeout - now;
  const availableNow = memAvailableNow();
  const fact: ReleaseFact = {
    apps,
    leftMs,
    ...(rel.availableBefore === undefined ? {} : { availableBefore: rel.availableBefore }),
    ...(availableNow === undefined ? {} : { availableNow }),
    ...(rel.stuckBytes === undefined ? {} : { stuckBytes: rel.stuckBytes }),
    noProcess: smi?.kind === 'ok' && smi.apps.length === 0,
  };
  // Only once the wait is over and memory is missing does it matter whether the old container still runs.
  if (leftMs > 0 || !missingBytes(fact)) return fact;
  const old = await engine.inspect(rel.container).catch(() => undefined);
  return { ...fact, containerRunning: old?.State.Running === true };
}

/** The pre-start checks' results and facts, and the first result that blocks a start, if one does. */
export interface Preflight {
  results: CheckResult[];
  facts: Facts;
  blocker?: CheckResult;
}

/**
 * Runs the pre-start checks; `blocker` is the first that blocks a start. Docker's
 * GPU support is only a warning here: the hook may live where no look from outside Docker finds
 * it, and a start without it fails at once with words the diagnosis knows (`gpu-runtime`).
 */
export async function preflight(inp: PreflightInput): Promise<Preflight> {
  const facts = await prestartFacts(inp);
  if (inp.config.container.gpus !== 'none' && inp.gpuRuntime !== false) {
    const rt = await runtimeFact(inp.engine).catch(() => undefined);
    if (rt) facts.gpuRuntime = rt;
  }
  const results = evaluate(facts).map((r): CheckResult =>
    r.id === 'gpu-runtime' && r.status === 'fail'
      ? { id: r.id, status: 'warn', detail: r.detail, ...(r.fix ? { fix: r.fix } : {}) }
      : r,
  );
  const b = blocker(results);
  return b ? { results, facts, blocker: b } : { results, facts };
}

/** Every check, for `doctor`: the engine, the image and Docker's GPU support too. */
export async function allFacts(inp: PreflightInput): Promise<Facts> {
  const { config: c, engine } = inp;
  let version: string | undefined;
  try {
    version = await engine.version();
  } catch (err) {
    // Without Docker the rest of what Docker would tell cannot be checked.
    const facts: Facts = await prestartFacts(inp).catch((): Facts => ({}));
    delete facts.port;
    return { ...facts, engine: { ok: false, message: (err as Error).message } };
  }
  const [present, runtime, rest] = await Promise.all([
    engine.imageExists(c.container.image),
    c.container.gpus === 'none' ? Promise.resolve(undefined) : runtimeFact(engine),
    prestartFacts(inp),
  ]);
  const facts: Facts = {
    engine: { ok: true, version: `Docker ${version}` },
    image: { present, image: c.container.image },
    ...rest,
  };
  if (runtime) facts.gpuRuntime = runtime;
  return facts;
}
