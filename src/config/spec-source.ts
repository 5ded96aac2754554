// A spec's source: the config sections a container spec is made from (model, container, paths),
// kept in the state record for a rollback, without a secret: secret variables are kept by name
// only and secret flags' values masked; the config in force gives them back (src/desired/rollback.ts).
import type { SpecSource } from '../core/model/rollback.js';
import { configSchema, type Config } from './schema.js';
import { isSecretEnvEntry, maskArgs } from './vllm-flags.js';

/** Stands for a secret flag's value in a kept source. */
export const SECRET_MASK = '(secret)';

/** What the supervisor does not keep of the container section: not the spec's (credentials, stop policy). */
type KeptContainer = Omit<Config['container'], 'registryAuth' | 'stopTimeout' | 'stopOnExit'>;

export interface Source {
  model: Config['model'];
  /** `secretEnv`: the variables whose values were left out. */
  container: KeptContainer & { secretEnv: string[] };
  paths: Config['paths'];
}

/** The largest source kept (its JSON): a config is at most 64 KiB. */
export const MAX_SOURCE_CHARS = 64 * 1024;

export function specSourceOf(c: Config): SpecSource {
  const env: Record<string, string> = {};
  const secretEnv: string[] = [];
  for (const [k, v] of Object.entries(c.container.env)) {
    if (isSecretEnvEntry(k, v)) secretEnv.push(k);
    else env[k] = v;
  }
  const { registryAuth: _a, stopTimeout: _s, stopOnExit: _o, ...container } = c.container;
  const source: Source = {
    model: { ...c.model, extraArgs: maskArgs(c.model.extraArgs, SECRET_MASK) },
    container: { ...container, env, secretEnv },
    paths: c.paths,
  };
  return source as unknown as SpecSource;
}

/** A kept source read back: one the config schema still takes, or undefined (a newer or older shape). */
export function checkSource(value: unknown): Source | undefined {
  if (typeof value !== 'object' || value === null || JSON.stringify(value).length > MAX_SOURCE_CHARS) return undefined;
  const v = value as Partial<Source>;
  const secretEnv = v.container?.secretEnv;
  if (!Array.isArray(secretEnv) || !secretEnv.every((n) => typeof n === 'string')) return undefined;
  const { secretEnv: _e, ...container } = v.container as Source['container'];
  const r = configSchema.safeParse({ model: v.model, container, paths: v.paths });
  if (!r.success) return undefined;
  const { model, paths } = r.data;
  const { registryAuth: _a, stopTimeout: _s, stopOnExit: _o, ...kept } = r.data.container;
  return { model, container: { ...kept, secretEnv }, paths };
}
