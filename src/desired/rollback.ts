// The desired config of a rollback: the config in force with the good spec's model, container and
// paths sections put back, its image by digest, secrets from the config in force.
import { checkSource, SECRET_MASK } from '../config/spec-source.js';
import type { Config } from '../config/schema.js';
import { isSecretFlag } from '../config/vllm-flags.js';
import type { History } from '../core/model/events.js';
import { goodImage, type GoodSpec, type Rollback } from '../core/model/rollback.js';
import { desiredOf, type Desired } from './desired.js';

/** The value a secret flag has in `args` (`--api-key X` or `--api-key=X`). */
function valueOf(args: readonly string[], flag: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === flag) return args[i + 1];
    if (a.startsWith(`${flag}=`)) return a.slice(flag.length + 1);
  }
  return undefined;
}

/** A kept argument list with its masked secrets from the config in force (a flag it no longer has is left out). */
export function unmaskArgs(kept: readonly string[], current: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < kept.length; i++) {
    const a = kept[i] ?? '';
    if (isSecretFlag(a) && a.endsWith(`=${SECRET_MASK}`)) {
      const flag = a.slice(0, a.indexOf('='));
      const v = valueOf(current, flag);
      if (v !== undefined) out.push(`${flag}=${v}`);
    } else if (isSecretFlag(a) && kept[i + 1] === SECRET_MASK) {
      const v = valueOf(current, a);
      if (v !== undefined) out.push(a, v);
      i++;
    } else out.push(a);
  }
  return out;
}

/** The desired config that brings `good` back, or undefined when its kept source no longer fits the schema. */
export function restoredDesired(current: Desired, good: GoodSpec): Desired | undefined {
  const src = checkSource(good.source);
  if (!src) return undefined;
  const cur = current.config;
  const env = { ...src.container.env };
  for (const k of src.container.secretEnv) {
    const v = cur.container.env[k];
    if (v !== undefined) env[k] = v;
  }
  const { secretEnv: _e, ...container } = src.container;
  const config: Config = {
    ...cur,
    model: { ...src.model, extraArgs: unmaskArgs(src.model.extraArgs, cur.model.extraArgs) },
    container: { ...cur.container, ...container, env, image: goodImage(good) },
    paths: src.paths,
  };
  const token = current.token === undefined ? undefined : { value: current.token, source: current.tokenSource ?? '' };
  const d = desiredOf(config, current.file, token);
  return { ...d, restores: good.hash, settings: { ...d.settings, configSpec: current.settings.specHash } };
}

/** The rollback in force for this config (the refused spec is still what it asks for), if any. */
export function rollbackFor(h: { rollback?: Rollback }, configSpec: string): Rollback | undefined {
  return h.rollback?.from === configSpec ? h.rollback : undefined;
}

/**
 * The desired config in force: the config file's, or, while a rollback of it is in force, the good
 * spec's (built once per file and good spec).
 */
export class InForce {
  private built: { from: Desired; to: string; d: Desired | undefined } | undefined;

  constructor(private readonly said: (msg: string) => void) {}

  of(file: Desired, h: Pick<History, 'rollback' | 'good'>): Desired {
    const rb = rollbackFor(h, file.settings.specHash);
    const good = rb && h.good?.find((g) => g.hash === rb.to);
    if (!good) return file;
    if (this.built?.from === file && this.built.to === good.hash) return this.built.d ?? file;
    const d = restoredDesired(file, good);
    // The reader keeps only sources the schema takes: this is a bug if it happens; said once.
    if (!d) this.said(`the good spec ${good.hash.slice(0, 12)} cannot be rebuilt from its record`);
    this.built = { from: file, to: good.hash, d };
    return d ?? file;
  }
}
