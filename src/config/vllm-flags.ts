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

/** Flags refused outright, with the reason. */
export const FORBIDDEN_FLAGS: Readonly<Record<string, string>> = {
  '--trust-remote-code': 'gpt-oss needs no remote code; running it would execute code from the model repository',
  '--enable-auto-tool-choice': 'gpt-oss enables tool use by itself; this flag breaks it',
  '--config':
    'vLLM reads further flags from that file, past every check here; put the flags in model.extraArgs instead',
};

/** The flag an argument names, as vLLM normalises it: `--gpu_memory_utilization=0.9` -> `--gpu-memory-utilization`. */
export function normalisedFlag(arg: string): string | undefined {
  if (!arg.startsWith('--') || arg === '--') return undefined;
  return (arg.split('=')[0] ?? arg).replace(/_/g, '-').toLowerCase();
}

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
  const as = name === (arg.split('=')[0] ?? arg) ? name : `${arg.split('=')[0]} (vLLM reads it as ${name})`;
  for (const [flag, why] of Object.entries(FORBIDDEN_FLAGS)) {
    if (flag === name) return `${as} is refused: ${why}; remove it`;
    if (isAbbreviation(name, flag)) return `${as} is refused: vLLM takes it for ${flag}, which is refused (${why})`;
  }
  for (const [flag, key] of Object.entries(OWNED_FLAGS)) {
    if (flag === name) return `${as} is set by ${key}; set that key instead of repeating the flag`;
    if (isAbbreviation(name, flag)) return `${as} is refused: vLLM takes it for ${flag}, which ${key} sets`;
  }
  return undefined;
}

/** argparse accepts a unique prefix of a long flag as that flag (allow_abbrev is on in vLLM). */
function isAbbreviation(name: string, flag: string): boolean {
  return name.length > 3 && name.length < flag.length && flag.startsWith(name);
}

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
