// What the config may not ask of the container: environment that redirects the token or loads other
// code, and host folders that are the system's own.
import { posix } from 'node:path';

/** Variables the supervisor sets in the container; `container.env` may not override them. */
export const MANAGED_ENV: Readonly<Record<string, string>> = {
  HF_TOKEN: 'the token comes from hfToken (a systemd credential, a file or the environment)',
  TIKTOKEN_ENCODINGS_BASE: 'it must point at the read-only mount of paths.encodings',
};

/** Variables refused unless `container.allowEnv` lists them, with the reason. */
export const RISKY_ENV: Readonly<Record<string, string>> = {
  HF_ENDPOINT: 'it sends the HF token to another host',
  HUGGING_FACE_HUB_TOKEN: 'it is a second HF token, one the supervisor does not manage or hide',
  HF_TOKEN_PATH: 'vLLM would read the HF token from another file',
  HF_HOME: 'it moves the model cache and the token file away from the mounted paths.huggingface',
  LD_PRELOAD: 'it loads other code into every process of the container',
  LD_LIBRARY_PATH: 'it loads other libraries into every process of the container',
  PYTHONPATH: 'it loads other Python code into vLLM',
  PYTHONSTARTUP: 'it runs other Python code in vLLM',
  PYTHONHOME: 'it replaces the Python vLLM runs on',
};

/** Folders that are the system's own: never bind-mounted read-write into the model container. */
const SYSTEM_EXACT = new Set([
  '/',
  '/home',
  '/mnt',
  '/media',
  '/opt',
  '/root',
  '/srv',
  '/tmp',
  '/var',
  '/var/lib',
  '/var/tmp',
]);
const SYSTEM_TREES = ['/bin', '/boot', '/dev', '/etc', '/lib', '/lib32', '/lib64', '/libx32', '/proc', '/run', '/sbin'];
const SYSTEM_TREES_MORE = ['/sys', '/usr', '/var/run', '/var/lib/docker', '/var/lib/containerd', '/var/log'];

/** `/vllm/../etc/` -> `/etc`: the folder a path names. */
export function normalisePath(p: string): string {
  const n = posix.normalize(p);
  return n.length > 1 ? n.replace(/\/+$/, '') : n;
}

/** Why a folder may not be mounted, or undefined when it may. */
export function systemFolder(p: string): string | undefined {
  const n = normalisePath(p);
  const tree = [...SYSTEM_TREES, ...SYSTEM_TREES_MORE].find((t) => n === t || n.startsWith(`${t}/`));
  if (SYSTEM_EXACT.has(n) || tree) {
    const named = n === p ? n : `${n} (${p} once normalised)`;
    return (
      `${named} is a system folder, and it would be mounted into the model container; ` +
      'use a folder of its own such as /vllm/...'
    );
  }
  return undefined;
}
