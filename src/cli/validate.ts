// `validate`: is the config file valid? Every problem at once, located.
import type { Command } from './commands.js';
import { EXIT } from './exit.js';
import { loadForCommand } from './load.js';

export const validateCommand: Command = {
  summary: 'check the config file; every problem at once, as FILE:LINE:COL',
  help: `Usage: gptoss-supervisor validate [--config PATH]

Checks the config file and prints every problem as FILE:LINE:COL: KEY: what is wrong.

Exit codes: 0 valid, 1 invalid or unreadable, 64 usage error.
`,
  options: {},
  async run(values) {
    const loaded = await loadForCommand(values['config']);
    if (!loaded) return EXIT.config;
    process.stdout.write(`${loaded.file}: valid\n`);
    return EXIT.ok;
  },
};
