// Finds the HF token: a systemd credential, else a file, else an environment variable. Never logs it.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from './schema.js';

export interface Token {
  /** The secret itself: pass it to Docker and nowhere else. */
  value: string;
  /** Where it came from, safe to show: `credential hf_token`, `file /etc/gptoss/hf_token`, `environment HF_TOKEN`. */
  source: string;
}

async function readTrimmed(path: string): Promise<string | undefined> {
  try {
    const v = (await readFile(path, 'utf8')).trim();
    return v || undefined;
  } catch {
    return undefined;
  }
}

export async function resolveToken(cfg: Config['hfToken'], env: NodeJS.ProcessEnv = process.env): Promise<Token | undefined> {
  const credDir = env['CREDENTIALS_DIRECTORY'];
  if (credDir) {
    const v = await readTrimmed(join(credDir, cfg.credential));
    if (v) return { value: v, source: `credential ${cfg.credential}` };
  }
  if (cfg.file) {
    const v = await readTrimmed(cfg.file);
    if (v) return { value: v, source: `file ${cfg.file}` };
  }
  const v = env[cfg.env]?.trim();
  return v ? { value: v, source: `environment ${cfg.env}` } : undefined;
}
