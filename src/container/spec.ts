// The container spec: one pure function from config to the Docker Engine API create body.
import { createHash } from 'node:crypto';
import type { Config, Gpus, Ulimit } from '../config/schema.js';
import { isTokenEntry, tokenEntry } from './token-env.js';

export const ENCODINGS_MOUNT = '/etc/encodings';
export const HF_CACHE_MOUNT = '/root/.cache/huggingface';
export const CONTAINER_PORT = 8000;

/**
 * vLLM's compile and JIT caches in the NGC image (all under root's home): a subfolder of paths.cache
 * each, so a recreated container finds them warm. vLLM's cache root holds torch_compile_cache
 * (VLLM_CACHE_ROOT's default, vllm/envs.py); FlashInfer's JIT (FLASHINFER_WORKSPACE_BASE's default,
 * flashinfer/jit/env.py); Triton's kernels (TRITON_CACHE_DIR's default, triton/runtime/cache.py); the
 * CUDA driver's compute cache of PTX JIT output (CUDA_CACHE_PATH's default on Linux).
 */
export const CACHE_MOUNTS: readonly { sub: string; container: string }[] = [
  { sub: 'vllm', container: '/root/.cache/vllm' },
  { sub: 'flashinfer', container: '/root/.cache/flashinfer' },
  { sub: 'triton', container: '/root/.triton/cache' },
  { sub: 'cuda', container: '/root/.nv/ComputeCache' },
];

/** The cache binds of a config (none when paths.cache is null). */
export function cacheBinds(cacheDir: string | null): string[] {
  return cacheDir === null ? [] : CACHE_MOUNTS.map((m) => `${cacheDir}/${m.sub}:${m.container}`);
}
export const LABEL_MANAGED = 'org.gptoss.managed';
export const LABEL_HASH = 'org.gptoss.spec-hash';

export interface DeviceRequest {
  Driver: string;
  Count: number;
  DeviceIDs: string[] | null;
  Capabilities: string[][];
  Options: Record<string, string>;
}

export interface UlimitEntry {
  Name: string;
  Soft: number;
  Hard: number;
}

/** The subset of the Engine API's ContainerCreate body that the supervisor sets. */
export interface CreateBody {
  Image: string;
  Cmd: string[];
  Env: string[];
  ExposedPorts: Record<string, Record<string, never>>;
  Labels: Record<string, string>;
  HostConfig: {
    IpcMode: string;
    Ulimits: UlimitEntry[];
    PortBindings: Record<string, { HostIp: string; HostPort: string }[]>;
    Binds: string[];
    DeviceRequests: DeviceRequest[];
    RestartPolicy: { Name: string; MaximumRetryCount: number };
  };
}

export interface ContainerSpec {
  name: string;
  body: CreateBody;
  /** sha256 of everything in the body but the labels and the token's value. */
  hash: string;
  /** Where the container answers on the host, as this spec publishes it; port 0: Docker picks one at each start. */
  published: { host: string; port: number };
  /**
   * With the gate on: the binding the guide's container (and one made before the gate) publishes
   * instead of the loopback one. Not drift: it keeps its port until its next planned recreate.
   */
  direct?: { HostIp: string; HostPort: string };
}

export function vllmCommand(model: Config['model']): string[] {
  return [
    'vllm',
    'serve',
    model.id,
    '--quantization',
    model.quantization,
    '--gpu-memory-utilization',
    String(model.gpuMemoryUtilization),
    '--max-model-len',
    String(model.maxModelLen),
    '--served-model-name',
    model.servedName,
    ...model.extraArgs,
  ];
}

export function deviceRequests(gpus: Gpus): DeviceRequest[] {
  const base = { Driver: '', Capabilities: [['gpu']], Options: {} };
  if (gpus === 'none') return [];
  if (gpus === 'all') return [{ ...base, Count: -1, DeviceIDs: null }];
  if (typeof gpus === 'number') return [{ ...base, Count: gpus, DeviceIDs: null }];
  return [{ ...base, Count: 0, DeviceIDs: gpus.map(String) }];
}

export function ulimitEntries(ulimits: Record<string, Ulimit>): UlimitEntry[] {
  return Object.entries(ulimits).map(([Name, v]) =>
    typeof v === 'number' ? { Name, Soft: v, Hard: v } : { Name, Soft: v.soft, Hard: v.hard },
  );
}

/**
 * Builds the create body. `token` is the HF token's value, or undefined when there is none
 * (the variable is then left out, as the hub treats an empty one as no token anyway).
 */
export function buildSpec(config: Config, token: string | undefined): ContainerSpec {
  const c = config.container;
  const port = `${CONTAINER_PORT}/tcp`;
  // With the gate, the model is reachable only from this host: the gate listens on the guide's address.
  const direct = { HostIp: c.bindAddress, HostPort: String(c.port) };
  const gated = config.gate.enabled;
  // upstreamPort 0 (auto): Docker picks a free port at each start (HostPort '').
  const up = config.gate.upstreamPort;
  const published = gated ? { HostIp: '127.0.0.1', HostPort: up ? String(up) : '' } : direct;
  const env = [
    ...(token === undefined ? [] : [tokenEntry(token)]),
    `TIKTOKEN_ENCODINGS_BASE=${ENCODINGS_MOUNT}`,
    ...Object.entries(c.env).map(([k, v]) => `${k}=${v}`),
  ];
  const body: CreateBody = {
    Image: c.image,
    Cmd: vllmCommand(config.model),
    Env: env,
    ExposedPorts: { [port]: {} },
    Labels: {},
    HostConfig: {
      IpcMode: c.ipc,
      Ulimits: ulimitEntries(c.ulimits),
      PortBindings: { [port]: [published] },
      Binds: [
        `${config.paths.huggingface}:${HF_CACHE_MOUNT}`,
        `${config.paths.encodings}:${ENCODINGS_MOUNT}:ro`,
        ...cacheBinds(config.paths.cache),
      ],
      DeviceRequests: deviceRequests(c.gpus),
      RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
    },
  };
  const hash = specHash(body);
  body.Labels = { [LABEL_MANAGED]: 'true', [LABEL_HASH]: hash };
  const at = { host: published.HostIp || '0.0.0.0', port: Number(published.HostPort) };
  return { name: c.name, body, hash, published: at, ...(gated ? { direct } : {}) };
}

/**
 * Hash of the body without labels and without the token: a token added, removed or changed is not
 * drift (a running model keeps serving; the new token is used at its next start).
 */
export function specHash(body: CreateBody): string {
  const { Labels: _labels, ...rest } = body;
  const env = rest.Env.filter((e) => !isTokenEntry(e));
  return createHash('sha256')
    .update(canonical({ ...rest, Env: env }))
    .digest('hex');
}

/** JSON with sorted keys, so the hash does not depend on property order. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}
