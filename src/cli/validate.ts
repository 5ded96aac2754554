// `validate`: is the config file valid? Every problem at once, located.
import type { Command } from './command.js';
import { EXIT, UsageError } from './exit.js';
import { loadForCommand } from './config-arg.js';

export const validateCommand: Command = {
  help: `Usage: gptoss-supervisor validate [--config PATH] [--get KEY]

Checks the config file and prints every problem as FILE:LINE:COL: KEY: what is wrong.
--get KEY prints one value of the valid config, defaults applied (e.g. --get paths.encodings),
for scripts such as install.sh.

Exit codes: 0 valid, 1 invalid or unreadable, 64 usage error (also an unknown KEY).
`,
  options: { get: { type: 'string' } },
  async run(values) {
    const loaded = await loadForCommand(values['config']);
    if (!loaded) return EXIT.config;
    const key = values['get'];
    if (typeof key === 'string') {
      let v: unknown = loaded.config;
      for (const part of key.split('.'))
        v = v && typeof v === 'object' && Object.hasOwn(v, part) ? (v as Record<string, unknown>)[part] : undefined;
      if (v === undefined) throw new UsageError(`no config key ${key}`);
      process.stdout.write(
        `${typeof v === 'object' ? JSON.stringify(v) : typeof v === 'string' ? v : JSON.stringify(v)}\n`,
      );
      return EXIT.ok;
    }
    process.stdout.write(`${loaded.file}: valid\n`);
    return EXIT.ok;
  },
};
