// Loads the config for a command, printing located problems when it is not valid.
import { formatProblem, loadConfig, resolveConfigPath } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { stderrIsJournal } from '../systemd/journal.js';

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

export async function loadForCommand(flag: string | boolean | undefined): Promise<Loaded | undefined> {
  const file = resolveConfigPath(typeof flag === 'string' ? flag : undefined);
  const res = await loadConfig(file);
  if (res.ok) return { config: res.config, file, text: res.text };
  for (const p of res.problems) process.stderr.write(`${errLine(formatProblem(p))}\n`);
  const n = res.problems.length;
  process.stderr.write(`${errLine(`${file}: ${n} problem${n === 1 ? '' : 's'}; nothing was changed`)}\n`);
  return undefined;
}
