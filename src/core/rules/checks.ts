// The deployment guide's checklist as plain functions: facts about the host in, pass/warn/fail out.
import type { CheckResult } from './check-result.js';
import type { MemoryVerdict } from './gpu-memory.js';
import { exposure, type ExposureInput } from './exposure.js';
import { MOUNT_FIX, refusedFolder } from './mounts.js';
import { checkRelease, type ReleaseFact } from './release.js';

export type { CheckId, CheckResult } from './check-result.js';
export { checkRelease, type ReleaseFact } from './release.js';

export interface EncodingFact {
  file: string;
  path: string;
  state: 'ok' | 'missing' | 'empty' | 'mismatch' | 'unreadable';
  sha256?: string;
  expected: string;
  /** Bytes, when the file is there. */
  size?: number;
  error?: string;
}

export type EngineFact = { ok: true; version: string } | { ok: false; message: string };
export type PortFact =
  { state: 'free' } | { state: 'ours' } | { state: 'taken'; holder: string } | { state: 'unknown'; why: string };
export type HuggingfaceFact = {
  state: 'ok' | 'missing' | 'not-dir' | 'read-only';
  modelCached: boolean;
  error?: string;
};
export type RuntimeFact = { ok: true; via: string } | { ok: false; runtimes: string[] };

export interface Facts {
  engine?: EngineFact;
  image?: { present: boolean; image: string };
  gpuRuntime?: RuntimeFact;
  encodings?: { dir: string; verify: boolean; files: EncodingFact[] };
  huggingface?: { dir: string; fact: HuggingfaceFact; modelId: string };
  token?: { source?: string; file: string; modelCached: boolean };
  /** The port the container publishes, and the config key that sets it. */
  port?: { port: number; fact: PortFact; key?: string };
  gpuMemory?: MemoryVerdict;
  /** The last run ended lately, or its memory is still missing: what the wait for it looks at (release.ts). */
  release?: ReleaseFact;
  /**
   * Mounted paths (paths.*, and the cache's subfolders) that lead elsewhere through a symlink (the path
   * itself or a folder above it), with where they lead ('?' when that cannot be read).
   */
  symlinks?: Array<{ key: string; path: string; target: string }>;
  /** Where the model's API listens and whether it asks for a key. */
  exposure?: ExposureInput;
}

export function checkEncodings(
  e: NonNullable<Facts['encodings']>,
  fetchCommand = 'gptoss-supervisor fetch-encodings',
): CheckResult {
  const bad = e.files.filter((f) => f.state !== 'ok');
  if (bad.length === 0) {
    return {
      id: 'encodings',
      status: 'pass',
      detail:
        `${e.files.map((f) => f.file).join(' and ')} in ` +
        `${e.dir}${e.verify ? ', SHA-256 verified' : ' (not verified: encodings.verify is false)'}`,
    };
  }
  const what = bad.map((f) => {
    switch (f.state) {
      case 'missing':
        return `${f.path} is missing`;
      case 'empty':
        return `${f.path} is empty`;
      case 'mismatch':
        return (
          `${f.path} is damaged or not the published file (SHA-256 ${f.sha256?.slice(0, 12)}..., expected ` +
          `${f.expected.slice(0, 12)}...)`
        );
      default:
        return `${f.path} cannot be read (${f.error ?? 'error'})`;
    }
  });
  const fix = bad.some((f) => f.state === 'mismatch')
    ? `${fetchCommand} (replaces damaged files; for custom files set encodings.verify: false)`
    : fetchCommand;
  return { id: 'encodings', status: 'fail', detail: what.join('; '), fix, waitFor: 'encodings' };
}

const NOT_CACHED = 'not downloaded yet (the first start downloads ~65 GB)';

export function checkHuggingface(h: NonNullable<Facts['huggingface']>): CheckResult {
  const { dir, fact } = h;
  switch (fact.state) {
    case 'ok':
      return {
        id: 'huggingface',
        status: 'pass',
        detail: `${dir} exists, ${h.modelId} ${fact.modelCached ? 'is in the cache' : NOT_CACHED}`,
      };
    case 'missing':
      return {
        id: 'huggingface',
        status: 'fail',
        detail: `${dir} does not exist`,
        fix: `mkdir -p ${dir}`,
        waitFor: 'huggingface',
      };
    case 'not-dir':
      return {
        id: 'huggingface',
        status: 'fail',
        detail: `${dir} is not a folder`,
        fix: `point paths.huggingface at a folder, or replace ${dir} with one`,
        waitFor: 'huggingface',
      };
    case 'read-only':
      return {
        id: 'huggingface',
        status: 'fail',
        detail: `${dir} is not writable (${fact.error ?? 'read-only'}): vLLM downloads the model into it`,
        fix: `make ${dir} writable by root (a read-only filesystem or mount?)`,
        waitFor: 'huggingface',
      };
  }
}

export function checkToken(t: NonNullable<Facts['token']>): CheckResult {
  if (t.source) return { id: 'hf-token', status: 'pass', detail: `HF token from ${t.source}` };
  if (t.modelCached) {
    return {
      id: 'hf-token',
      status: 'warn',
      detail: 'no HF token, but the model is in the cache: fine until it must be downloaded again',
      fix: `write the token to ${t.file} (mode 0600)`,
    };
  }
  return {
    id: 'hf-token',
    status: 'fail',
    detail: 'no HF token, and the model is not in the cache: the download needs one',
    fix: `write the token to ${t.file} (mode 0600), e.g. install.sh --hf-token-file FILE`,
    waitFor: 'hf-token',
  };
}

export function checkPort(p: NonNullable<Facts['port']>): CheckResult {
  const { port, fact } = p;
  switch (fact.state) {
    case 'free':
      return { id: 'port', status: 'pass', detail: `port ${port} is free` };
    case 'ours':
      return { id: 'port', status: 'pass', detail: `port ${port} is published by the model container` };
    case 'taken':
      return {
        id: 'port',
        status: 'fail',
        detail: `port ${port} is in use by ${fact.holder}`,
        fix: `stop it, or set ${p.key ?? 'container.port'} to a free port (ss -ltnp 'sport = :${port}')`,
        waitFor: 'port',
      };
    case 'unknown':
      return { id: 'port', status: 'warn', detail: `port ${port} not checked: ${fact.why}` };
  }
}

export function checkEngine(e: EngineFact): CheckResult {
  return e.ok
    ? { id: 'engine', status: 'pass', detail: `the Docker engine answers (${e.version})` }
    : { id: 'engine', status: 'fail', detail: e.message, fix: 'systemctl start docker', waitFor: 'docker' };
}

export function checkImage(i: NonNullable<Facts['image']>): CheckResult {
  return i.present
    ? { id: 'image', status: 'pass', detail: `image ${i.image} is present` }
    : {
        id: 'image',
        status: 'fail',
        detail: `image ${i.image} is not on this host (the service pulls it before the first start)`,
        fix: `docker pull ${i.image}`,
        waitFor: 'image',
      };
}

export function checkRuntime(r: RuntimeFact): CheckResult {
  return r.ok
    ? { id: 'gpu-runtime', status: 'pass', detail: `Docker can give containers a GPU (${r.via})` }
    : {
        id: 'gpu-runtime',
        status: 'fail',
        detail:
          `Docker has no NVIDIA runtime, no CDI spec for nvidia.com/gpu and no nvidia-container-runtime-hook ` +
          `(runtimes: ${r.runtimes.join(', ') || 'none'})`,
        fix:
          'apt-get install nvidia-container-toolkit && nvidia-ctk runtime configure --runtime=docker && systemctl ' +
          'restart docker',
        waitFor: 'gpu-runtime',
      };
}

export function checkMemory(v: MemoryVerdict): CheckResult {
  switch (v.status) {
    case 'ok':
      return { id: 'gpu-memory', status: 'pass', detail: v.detail };
    case 'short':
      return { id: 'gpu-memory', status: 'fail', detail: v.detail, fix: v.remedy, waitFor: 'gpu-memory' };
    case 'unknown':
      return { id: 'gpu-memory', status: 'warn', detail: v.detail };
  }
}

/**
 * A mounted path that leads elsewhere through a symlink: Docker mounts where it leads, which the config
 * does not show. Where it leads is judged like a path in the config: a system folder, a home folder,
 * the supervisor's state, ... fails (and blocks the start); anywhere else is a warning.
 */
export function checkSymlinks(links: NonNullable<Facts['symlinks']>): CheckResult {
  const refused = links.flatMap((l) => {
    const what = l.target === '?' ? undefined : refusedFolder(l.target);
    return what ? [`${l.key} (${l.path}) leads to ${l.target}: ${what}`] : [];
  });
  if (refused.length)
    return {
      id: 'symlinks',
      status: 'fail',
      detail: `${refused.join('; ')}; Docker would mount it into the model container`,
      fix: `${MOUNT_FIX}, or replace the symlink with a folder of its own`,
      waitFor: 'mounts',
    };
  const what = links.map((l) => `${l.key} (${l.path}) leads to ${l.target} through a symlink`).join('; ');
  return {
    id: 'symlinks',
    status: 'warn',
    detail: `${what}: Docker mounts where it leads`,
    fix: 'set the path to the folder itself, so the config says what is mounted',
  };
}

/** The model's API beyond loopback with no key: a warning (the guide's default; not a reason to stop). */
export function checkExposure(i: ExposureInput): CheckResult {
  const e = exposure(i);
  return e.open
    ? { id: 'exposure', status: 'warn', detail: e.detail, ...(e.fix ? { fix: e.fix } : {}) }
    : { id: 'exposure', status: 'pass', detail: e.detail };
}

/** Every check the facts allow, in the order an operator fixes things. */
export function evaluate(f: Facts, fetchCommand?: string): CheckResult[] {
  const out: CheckResult[] = [];
  if (f.engine) out.push(checkEngine(f.engine));
  if (f.image) out.push(checkImage(f.image));
  if (f.gpuRuntime) out.push(checkRuntime(f.gpuRuntime));
  // Before the files are read: a mount that leads into /etc is said first.
  if (f.symlinks?.length) out.push(checkSymlinks(f.symlinks));
  if (f.encodings) out.push(checkEncodings(f.encodings, fetchCommand));
  if (f.huggingface) out.push(checkHuggingface(f.huggingface));
  if (f.token) out.push(checkToken(f.token));
  if (f.port) out.push(checkPort(f.port));
  if (f.release) out.push(checkRelease(f.release, f.gpuMemory));
  if (f.gpuMemory) out.push(checkMemory(f.gpuMemory));
  if (f.exposure) out.push(checkExposure(f.exposure));
  return out;
}

/** The first failure that keeps the model from starting, if any. */
export function blocker(results: readonly CheckResult[]): CheckResult | undefined {
  return results.find((r) => r.status === 'fail' && r.waitFor);
}
