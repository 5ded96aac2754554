// What the config may not ask of the container: environment that redirects the token or loads other
// code, and host folders that are the system's own.
import { MOUNT_FIX, normalisePath, refusedFolder } from '../core/rules/mounts.js';

export { normalisePath };

/** Variables the supervisor sets in the container; `container.env` may not override them. */
export const MANAGED_ENV: Readonly<Record<string, string>> = {
  HF_TOKEN: 'the token comes from hfToken (a systemd credential, a file or the environment)',
  TIKTOKEN_ENCODINGS_BASE: 'it must point at the read-only mount of paths.encodings',
};

const MOVES_CACHE =
  'it moves the model cache away from the mounted paths.huggingface (downloads lost at each recreate, the checks ' +
  'looking at another folder)';
const CERTS =
  'it replaces the certificate authorities the HF token is sent under: whoever holds a certificate it trusts can ' +
  'read the token';
const PY_CODE = 'it makes Python load other code in vLLM';
const LIBRARY = 'it loads another shared library into vLLM';

/** Variables refused unless `container.allowEnv` lists them, with the reason. */
export const RISKY_ENV: Readonly<Record<string, string>> = {
  HF_ENDPOINT: 'it sends the HF token to another host',
  HUGGING_FACE_HUB_TOKEN: 'it is a second HF token, one the supervisor does not manage or hide',
  HF_TOKEN_PATH: 'vLLM would read the HF token from another file',
  HF_HOME: 'it moves the model cache and the token file away from the mounted paths.huggingface',
  HF_HUB_CACHE: MOVES_CACHE,
  HUGGINGFACE_HUB_CACHE: MOVES_CACHE,
  TRANSFORMERS_CACHE: MOVES_CACHE,
  REQUESTS_CA_BUNDLE: CERTS,
  CURL_CA_BUNDLE: CERTS,
  SSL_CERT_FILE: CERTS,
  SSL_CERT_DIR: CERTS,
  LD_PRELOAD: 'it loads other code into every process of the container',
  LD_LIBRARY_PATH: 'it loads other libraries into every process of the container',
  PYTHONPATH: 'it loads other Python code into vLLM',
  PYTHONSTARTUP: 'it runs other Python code in vLLM',
  PYTHONHOME: 'it replaces the Python vLLM runs on',
  PYTHONUSERBASE: `${PY_CODE} (a user site folder, whose .pth files run at start)`,
  PYTHONPYCACHEPREFIX: `${PY_CODE} (compiled modules read from another folder)`,
  PYTHONPLATLIBDIR: `${PY_CODE} (another library folder)`,
  PYTHONEXECUTABLE: 'it replaces the Python vLLM runs on',
  PYTHONWARNINGS: `${PY_CODE} (a warning category names a module to import)`,
  PYTHONBREAKPOINT: `${PY_CODE} (breakpoint() imports what it names)`,
  BASH_ENV: "bash runs that file first, in the image's entrypoint script",
  GCONV_PATH: 'the C library loads character-set modules from there',
  CUDA_INJECTION64_PATH: LIBRARY,
  NCCL_NET_PLUGIN: LIBRARY,
  NCCL_TUNER_PLUGIN: LIBRARY,
  NCCL_PROFILER_PLUGIN: LIBRARY,
  VLLM_LOGGING_CONFIG_PATH: `a logging config can call any function vLLM can import (logging's "()" factories)`,
  VLLM_ALLOW_RUNTIME_LORA_UPDATING:
    'API clients could load LoRA adapters at run time, from any path or repository (/v1/load_lora_adapter)',
  VLLM_SERVER_DEV_MODE: "it opens vLLM's development endpoints (/collective_rpc calls methods in the workers)",
};

/** Families refused like RISKY_ENV: every name that starts with the prefix. */
const RISKY_ENV_PREFIXES: Readonly<Record<string, string>> = {
  LD_: 'the dynamic loader reads it (LD_PRELOAD, LD_AUDIT, LD_LIBRARY_PATH, ... load other code into every process)',
};

/** Why a variable needs `container.allowEnv`, or undefined when it does not. */
export function riskyEnv(name: string): string | undefined {
  if (Object.hasOwn(RISKY_ENV, name)) return RISKY_ENV[name];
  const prefix = Object.keys(RISKY_ENV_PREFIXES).find((p) => name.startsWith(p));
  return prefix === undefined ? undefined : RISKY_ENV_PREFIXES[prefix];
}

/** Why a folder may not be mounted (with the fix), or undefined when it may. */
export function systemFolder(p: string): string | undefined {
  const what = refusedFolder(p);
  return what && `${what}, and it would be mounted into the model container; ${MOUNT_FIX}`;
}
