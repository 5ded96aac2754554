// The commands' table: what each takes, says and exits with.
import type { ParseArgsConfig } from 'node:util';
import { doctorCommand } from './doctor.js';
import { ensureCommand } from './ensure.js';
import { fetchEncodingsCommand } from './fetch-encodings.js';
import { renderCommand } from './render.js';
import { runCommand } from './run.js';
import { reloadCommand, restartCommand, statusCommand } from './status.js';
import { validateCommand } from './validate.js';

export interface Command {
  summary: string;
  help: string;
  options: ParseArgsConfig['options'];
  run(values: Record<string, string | boolean | undefined>): Promise<number>;
}

export const COMMANDS: Record<string, Command> = {
  validate: validateCommand,
  render: renderCommand,
  ensure: ensureCommand,
  run: runCommand,
  'fetch-encodings': fetchEncodingsCommand,
  doctor: doctorCommand,
  status: statusCommand,
  restart: restartCommand,
  reload: reloadCommand,
};
