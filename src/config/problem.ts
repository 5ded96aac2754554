// A config's problems, each located (`file:line:col: key: what, how to fix`), and where the config lives.
import { hideTokenShapes } from '../util/token-shape.js';
import type { Config } from './schema.js';

export const DEFAULT_CONFIG_PATH = '/etc/gptoss/config.yaml';
export interface Problem {
  file: string;
  line: number;
  col: number;
  /** Dotted key path, empty for the file as a whole. */
  key: string;
  message: string;
}

export type LoadResult =
  { ok: true; config: Config; file: string; text: string } | { ok: false; file: string; problems: Problem[] };

export function formatProblem(p: Problem): string {
  return hideTokenShapes(`${p.file}:${p.line}:${p.col}: ${p.key ? `${p.key}: ` : ''}${p.message}`);
}

/** Where the config lives: `--config` first, then `GPTOSS_CONFIG`, then the system path. */
export function resolveConfigPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag || env['GPTOSS_CONFIG'] || DEFAULT_CONFIG_PATH;
}
