// Loads the config for a command, printing located problems when it is not valid.
import { formatProblem, loadConfig, resolveConfigPath } from '../config/load.js';
import type { Config } from '../config/schema.js';

export async function loadForCommand(flag: string | boolean | undefined): Promise<{ config: Config; file: string } | undefined> {
  const file = resolveConfigPath(typeof flag === 'string' ? flag : undefined);
  const res = await loadConfig(file);
  if (res.ok) return { config: res.config, file };
  for (const p of res.problems) process.stderr.write(`${formatProblem(p)}\n`);
  const n = res.problems.length;
  process.stderr.write(`${file}: ${n} problem${n === 1 ? '' : 's'}; nothing was changed\n`);
  return undefined;
}
