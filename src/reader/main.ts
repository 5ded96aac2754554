// The reader's own process: what interprets the operator's files, out of the daemon's memory. The
// daemon runs it (reader/isolated.ts), so that the YAML parser, the schema library and the cron
// library (with the ICU data its time zones need) never stay in the daemon, and a hostile file uses
// up this process's time, not the daemon's.
//   main.js config FILE               -> the LoadResult, as JSON
//   main.js plan FROM_MS COUNT EXPR.. -> for each cron expression, its next run times (ms)
//   main.js state FILE                -> a state record checked in full, or what is wrong
import cron from 'node-cron';
import { checkRecord } from './record.js';
import { readCapped } from '../util/read-capped.js';
import { loadConfig } from '../config/load.js';

/** A state record is a few KiB; more is not one. */
const MAX_STATE_BYTES = 1024 * 1024;

async function readState(file: string): Promise<unknown> {
  const r = await readCapped(file, MAX_STATE_BYTES);
  if (!r.ok) return r.code === 'ENOENT' ? { absent: true } : { unreadable: r.why };
  try {
    return checkRecord(JSON.parse(r.data.toString('utf8')));
  } catch (err) {
    return { problem: `not JSON (${(err as Error).message})` };
  }
}

/** The next `count` runs of a cron expression after `from`, as node-cron computes them. */
function nextRuns(expr: string, from: number, count: number): number[] {
  const task = cron.createTask(expr, () => undefined);
  try {
    return task
      .getNextRuns(count)
      .map((d) => d.getTime())
      .filter((t) => t > from);
  } finally {
    void task.destroy();
  }
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'config' && args[0]) {
  process.stdout.write(`${JSON.stringify(await loadConfig(args[0]))}\n`);
} else if (mode === 'state' && args[0]) {
  process.stdout.write(`${JSON.stringify(await readState(args[0]))}\n`);
} else if (mode === 'plan' && args.length >= 2) {
  const [from, count, ...exprs] = args;
  process.stdout.write(`${JSON.stringify(exprs.map((e) => nextRuns(e, Number(from), Number(count))))}\n`);
} else {
  process.stderr.write('usage: main.js config FILE | state FILE | plan FROM_MS COUNT EXPR...\n');
  process.exitCode = 64;
}
