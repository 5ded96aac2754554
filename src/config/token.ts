// Finds the HF token: a systemd credential, else a file, else an environment variable. Never logs it.
import { readCapped } from '../util/read-capped.js';
import { join } from 'node:path';
import type { Config } from './schema.js';

export interface Token {
  /** The secret itself: pass it to Docker and nowhere else. */
  value: string;
  /** Where it came from, safe to show: `credential hf_token`, `file /etc/gptoss/hf_token`, `environment HF_TOKEN`. */
  source: string;
}

/** A token is ~40 characters; a file much larger is not one (and is not read in full). */
const MAX_TOKEN_BYTES = 4096;

/** The file's trimmed text; undefined when it is missing, empty, not a regular file or too large. */
async function readTrimmed(path: string): Promise<string | undefined> {
  const r = await readCapped(path, MAX_TOKEN_BYTES);
  return r.ok ? r.data.toString('utf8').trim() || undefined : undefined;
}

/**
 * The credential first, then the file, then the environment. systemd copies the credential from
 * the file when the service starts (LoadCredential=), so a file that now says something else was
 * edited since: it wins, and a new token applies without restarting the service.
 */
export async function resolveToken(
  cfg: Config['hfToken'],
  env: NodeJS.ProcessEnv = process.env,
): Promise<Token | undefined> {
  const credDir = env['CREDENTIALS_DIRECTORY'];
  const fromFile = cfg.file ? await readTrimmed(cfg.file) : undefined;
  if (credDir) {
    const v = await readTrimmed(join(credDir, cfg.credential));
    if (v && fromFile && fromFile !== v)
      return {
        value: fromFile,
        source: `file ${cfg.file} (changed since the service loaded credential ${cfg.credential})`,
      };
    if (v) return { value: v, source: `credential ${cfg.credential}` };
  }
  if (fromFile) return { value: fromFile, source: `file ${cfg.file}` };
  const v = env[cfg.env]?.trim();
  return v ? { value: v, source: `environment ${cfg.env}` } : undefined;
}
