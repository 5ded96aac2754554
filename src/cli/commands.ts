// The commands' table: what each takes, says and exits with.
import type { Command } from './command.js';
import { doctorCommand } from './doctor.js';
import { ensureCommand } from './ensure.js';
import { fetchEncodingsCommand } from './fetch-encodings.js';
import { renderCommand } from './render.js';
import { runCommand } from './run.js';
import { reloadCommand, restartCommand, statusCommand } from './daemon-client.js';
import { validateCommand } from './validate.js';

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
