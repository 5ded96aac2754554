#!/usr/bin/env node
// The `gptoss-supervisor` command: parses the command line and hands off to one command module.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Command } from './command.js';
import { COMMANDS } from './commands.js';
import { EXIT, UsageError } from './exit.js';
import { errLine } from './config-arg.js';

const USAGE = `Usage: gptoss-supervisor COMMAND [options]

Keeps gpt-oss-120b serving under vLLM in Docker (container vllm-gpt-oss).

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(16)}${c.summary}`)
  .join('\n')}

Options for every command:
  --config PATH   config file (default: $GPTOSS_CONFIG, else /etc/gptoss/config.yaml)
  -h, --help      help for the command
  --version       print the version

Run 'gptoss-supervisor COMMAND --help' for a command's own options and exit codes.
`;

const COMMON: ParseArgsConfig['options'] = {
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(USAGE);
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === '--version') {
    process.stdout.write(`${await version()}\n`);
    return EXIT.ok;
  }
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  const cmd: Command | undefined = await entry?.load();
  if (!cmd) return usage(`unknown command "${name}"`);
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: { ...COMMON, ...cmd.options }, allowPositionals: false, strict: true });
  } catch (err) {
    return usage((err as Error).message, name);
  }
  if (parsed.values['help']) {
    process.stdout.write(cmd.help);
    return EXIT.ok;
  }
  try {
    return await cmd.run(parsed.values as Record<string, string | boolean | undefined>);
  } catch (err) {
    if (err instanceof UsageError) return usage(err.message, name);
    // A bug, not an operator mistake: give what a bug report needs.
    process.stderr.write(
      `${errLine(`gptoss-supervisor ${name}: internal error: ${(err as Error).stack ?? String(err)}`)}\n`,
    );
    return EXIT.software;
  }
}

function usage(message: string, command?: string): number {
  process.stderr.write(
    `gptoss-supervisor: ${message}\nRun 'gptoss-supervisor ${command ? `${command} ` : ''}--help' for usage.\n`,
  );
  return EXIT.usage;
}

async function version(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${errLine(`gptoss-supervisor: internal error: ${String(err)}`)}\n`);
    process.exitCode = EXIT.software;
  },
);
