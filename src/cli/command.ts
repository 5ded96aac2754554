// What a command is: its one-line summary, its help, its options, and what it runs.
import type { ParseArgsConfig } from 'node:util';

export interface Command {
  summary: string;
  help: string;
  options: ParseArgsConfig['options'];
  run(values: Record<string, string | boolean | undefined>): Promise<number>;
}
