// Loads the config for a command, printing located problems when it is not valid.
import { formatProblem, resolveConfigPath, type LoadResult } from '../config/problem.js';
import type { Config } from '../config/schema.js';
import { stderrIsJournal } from '../log/journal.js';

/** Under systemd stderr is the journal: `<3>` puts a line at priority err (journalctl -p err). */
export function errLine(text: string): string {
  return stderrIsJournal()
    ? text
        .split('\n')
        .map((l) => `<3>${l}`)
        .join('\n')
    : text;
}

/** A valid config, with the file it came from and its text. */
export interface Loaded {
  config: Config;
  file: string;
  text: string;
}

/**
 * The config a command works with, or undefined after printing its problems. `read` is how it is
 * read: in this process by default; the daemon reads it in a process of its own (reader/isolated.ts).
 */
export async function loadForCommand(
  flag: string | boolean | undefined,
  read?: (file: string) => Promise<LoadResult>,
): Promise<Loaded | undefined> {
  const file = resolveConfigPath(typeof flag === 'string' ? flag : undefined);
  const res = await (read ?? (await import('../config/load.js')).loadConfig)(file);
  if (res.ok) return { config: res.config, file, text: res.text };
  for (const p of res.problems) process.stderr.write(`${errLine(formatProblem(p))}\n`);
  const n = res.problems.length;
  process.stderr.write(`${errLine(`${file}: ${n} problem${n === 1 ? '' : 's'}; nothing was changed`)}\n`);
  return undefined;
}
