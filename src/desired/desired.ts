// What a config file turns into: the container spec, the machine's settings, the token, the
// values no record may show. Pure: built again as a whole on every reload.
import type { Config } from '../config/schema.js';
import type { Token } from '../config/token.js';
import { isSecretEnvEntry, secretArgValues } from '../config/vllm-flags.js';
import { buildSpec, type ContainerSpec } from '../container/spec.js';
import type { Upstream } from '../core/model/door.js';
import type { Settings } from '../core/model/settings.js';
import { probeHost } from '../health/probe.js';
import { settingsOf } from './settings.js';

/** What a config file turns into; replaced as a whole on reload. */
export interface Desired {
  config: Config;
  /** The config file it came from. */
  file: string;
  spec: ContainerSpec;
  token: string | undefined;
  /** Where the token came from (safe to show), undefined when there is none. */
  tokenSource: string | undefined;
  settings: Settings;
  /** Where a container of this spec answers, from this host: what the probes (and the gate) reach. */
  upstream: Upstream;
  /** A rollback's desired config: the hash of the good spec it brings back. */
  restores?: string;
}

export function desiredOf(config: Config, file: string, token: Token | undefined): Desired {
  const spec = buildSpec(config, token?.value);
  return {
    config,
    file,
    spec,
    token: token?.value,
    tokenSource: token?.source,
    settings: settingsOf(config, token?.value, file),
    upstream: { host: probeHost(spec.published.host), port: spec.published.port },
  };
}

/** Values no record may show: the HF token, secret flags' values, secret variables' values (by name or look). */
export function secretsOf(config: Config, token: Token | undefined): string[] {
  const env = Object.entries(config.container.env)
    .filter(([k, v]) => isSecretEnvEntry(k, v))
    .map(([, v]) => v);
  return [...(token ? [token.value] : []), ...secretArgValues(config.model.extraArgs), ...env];
}
