// What a command is: its help, its options, and what it runs (its summary is in commands.ts).
import type { ParseArgsConfig } from 'node:util';

export interface Command {
  help: string;
  options: ParseArgsConfig['options'];
  run(values: Record<string, string | boolean | undefined>): Promise<number>;
}
