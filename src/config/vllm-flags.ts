import { looksSecret } from '../util/token-shape.js';

// model.extraArgs as vLLM will read them: `_` and `-` are the same, `--config FILE` reads more flags
// from a file, and argparse takes any unique prefix of a flag for the flag itself.

/** `vllm serve` flags the config owns: a second copy in extraArgs would fight it. */
export const OWNED_FLAGS: Readonly<Record<string, string>> = {
  '--model': 'model.id',
  '--quantization': 'model.quantization',
  '--gpu-memory-utilization': 'model.gpuMemoryUtilization',
  '--max-model-len': 'model.maxModelLen',
  '--served-model-name': 'model.servedName',
  '--port': 'container.port',
  '--host': 'container.bindAddress',
};

/** Short forms of owned flags (argparse also reads `-qVALUE`). */
const OWNED_SHORT: Readonly<Record<string, string>> = { '-q': 'model.quantization' };

const LOADS = 'vLLM imports the code it names';
const FILE_CODE = `${LOADS}, a Python file, and the container can write files (the mounted caches) for it to import`;
const CLASS_CODE = `${LOADS} (a module and a class), past the model's own code`;

/** Flags refused outright, with the reason (and the fix, where it is not "remove it"). */
export const FORBIDDEN_FLAGS: Readonly<Record<string, string | { why: string; fix: string }>> = {
  '--trust-remote-code': 'gpt-oss needs no remote code; running it would execute code from the model repository',
  '--enable-auto-tool-choice': 'gpt-oss enables tool use by itself; this flag breaks it',
  '--config':
    'vLLM reads further flags from that file, past every check here; put the flags in model.extraArgs instead',
  '--tool-parser-plugin': FILE_CODE,
  '--reasoning-parser-plugin': FILE_CODE,
  '--worker-cls': CLASS_CODE,
  '--sd-worker-cls': CLASS_CODE,
  '--worker-extension-cls': CLASS_CODE,
  '--scheduler-cls': CLASS_CODE,
  '--logits-processors': CLASS_CODE,
  '--middleware': CLASS_CODE,
  '--kv-transfer-config': `${LOADS} (its kv_connector_module_path), past the model's own code`,
  '--logits-processor-pattern':
    "API clients could name classes for vLLM to import with each request's logits_processors",
  '--log-config-file': 'a logging config can call any function vLLM can import (logging\'s "()" factories)',
  '--allowed-local-media-path':
    "API clients could read the container's files as images or videos (the mounted caches included)",
  '--api-key': {
    why: "its value would sit in the container's command line, which any user of the host reads with ps",
    fix:
      'set VLLM_API_KEY in container.env instead (its value is never shown) and keep the config file private: ' +
      'chmod 600 /etc/gptoss/config.yaml',
  },
};

/**
 * The flag an argument names, as vLLM normalises it: `--gpu_memory_utilization=0.9` ->
 * `--gpu-memory-utilization`; `--kv-transfer-config.kv_connector_module_path=x` (vLLM's dotted form of a
 * JSON flag) -> `--kv-transfer-config`.
 */
export function normalisedFlag(arg: string): string | undefined {
  if (!arg.startsWith('--') || arg === '--') return undefined;
  return flagPart(arg).replace(/_/g, '-').toLowerCase();
}

/** What names the flag: before any `=value`, and before the `.key` of vLLM's dotted JSON form. */
const flagPart = (arg: string) => (arg.split('=')[0] ?? arg).split('.')[0] ?? arg;

export interface FlagProblem {
  index: number;
  message: string;
}

/** What is wrong with each argument, as vLLM would parse them (empty when all is well). */
export function checkExtraArgs(args: readonly string[]): FlagProblem[] {
  const out: FlagProblem[] = [];
  args.forEach((arg, index) => {
    const short = Object.keys(OWNED_SHORT).find((s) => arg === s || (arg.startsWith(s) && !arg.startsWith('--')));
    if (short) {
      out.push({
        index,
        message: `${short} is set by ${OWNED_SHORT[short]}; set that key instead of repeating the flag`,
      });
      return;
    }
    const name = normalisedFlag(arg);
    if (!name) return;
    const message = refusal(name, arg);
    if (message) out.push({ index, message });
  });
  return out;
}

function refusal(name: string, arg: string): string | undefined {
  const as = name === flagPart(arg) ? name : `${flagPart(arg)} (vLLM reads it as ${name})`;
  for (const [flag, r] of Object.entries(FORBIDDEN_FLAGS)) {
    const { why, fix } = typeof r === 'string' ? { why: r, fix: 'remove it' } : r;
    if (flag === name) return `${as} is refused: ${why}; ${fix}`;
    if (isAbbreviation(name, flag))
      return `${as} is refused: vLLM takes it for ${flag}, which is refused (${why}); ${fix}`;
  }
  for (const [flag, key] of Object.entries(OWNED_FLAGS)) {
    if (flag === name) return `${as} is set by ${key}; set that key instead of repeating the flag`;
    if (isAbbreviation(name, flag)) return `${as} is refused: vLLM takes it for ${flag}, which ${key} sets`;
  }
  return undefined;
}

/**
 * argparse accepts a unique prefix of a long flag as that flag (allow_abbrev is on in vLLM). A prefix
 * that several flags share is an error to vLLM, so refusing every prefix of a refused flag loses nothing.
 */
function isAbbreviation(name: string, flag: string): boolean {
  return name.length > 2 && name.length < flag.length && flag.startsWith(name) && !PREFIX_FLAGS.has(name);
}

/** vLLM's own flags that are a prefix of a refused one: argparse takes an exact match as itself. */
const PREFIX_FLAGS = new Set(['--reasoning-parser']);

/** Words that name a secret, as parts of a name: `api-key`, `HF_TOKEN` (not `tokenizer`, `TIKTOKEN_...`). */
const SECRET_WORDS = new Set(['token', 'key', 'apikey', 'secret', 'password', 'passwd', 'credential', 'credentials']);
const namesSecret = (name: string) =>
  name
    .toLowerCase()
    .split(/[-_]+/)
    .some((w) => SECRET_WORDS.has(w));

/** Flags whose values are secrets (`--api-key`, `--ssl-keyfile-password`): never shown. */
export function isSecretFlag(arg: string): boolean {
  const name = normalisedFlag(arg);
  return name !== undefined && namesSecret(name);
}

/** Env names whose values are secrets (`VLLM_API_KEY`, `HF_TOKEN`): never shown. */
export function isSecretEnv(name: string): boolean {
  return namesSecret(name);
}

/**
 * A variable whose value is never shown: a secret's name, or a value that looks like one whatever the
 * name (`HTTPS_PROXY=http://user:password@proxy`, an HF token under another name).
 */
export function isSecretEnvEntry(name: string, value: string): boolean {
  return isSecretEnv(name) || looksSecret(value);
}

/** The secret values in an argument list: what follows a secret flag, or its `=value`. */
export function secretArgValues(args: readonly string[]): string[] {
  const out: string[] = [];
  args.forEach((arg, i) => {
    if (!isSecretFlag(arg)) return;
    const eq = arg.indexOf('=');
    const value = eq > 0 ? arg.slice(eq + 1) : args[i + 1];
    if (value && (eq > 0 || !value.startsWith('-'))) out.push(value);
  });
  return out;
}

/** The arguments with secret values replaced by `mask`. */
export function maskArgs(args: readonly string[], mask: string): string[] {
  return args.map((arg, i) => {
    if (isSecretFlag(arg)) return arg.includes('=') ? `${arg.slice(0, arg.indexOf('='))}=${mask}` : arg;
    const prev = args[i - 1];
    return prev !== undefined && isSecretFlag(prev) && !prev.includes('=') && !arg.startsWith('-') ? mask : arg;
  });
}
