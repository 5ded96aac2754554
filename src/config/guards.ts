// What the config may not ask of the container: environment that redirects the token or loads other
// code, and host folders that are the system's own.
import { MOUNT_FIX, normalisePath, refusedFolder } from '../core/rules/mounts.js';

export { normalisePath };

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

/** Why a folder may not be mounted (with the fix), or undefined when it may. */
export function systemFolder(p: string): string | undefined {
  const what = refusedFolder(p);
  return what && `${what}, and it would be mounted into the model container; ${MOUNT_FIX}`;
}
