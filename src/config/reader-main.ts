// The config reader's own process: parses and validates one config file, prints the result as JSON.
// The daemon runs it (config/isolated.ts) so that the YAML parser and the schema library never
// stay in its memory, and a hostile file can use up this process's time, not the daemon's.
import { loadConfig } from './load.js';

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: reader-main.js CONFIG\n');
  process.exitCode = 64;
} else {
  process.stdout.write(`${JSON.stringify(await loadConfig(file))}\n`);
}
