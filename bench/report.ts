// What every benchmark prints and keeps: a table of figures (each with a note) on stdout, and its
// results as JSON in bench/results/.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** A figure, its value, and a note on how it was measured. */
export type Row = [string, string, string];

/** The rows in aligned columns, under a `figure value note` header when `header` is set. */
export function printTable(rows: readonly Row[], header = false): void {
  const w0 = Math.max(...rows.map((r) => r[0].length), header ? 'figure'.length : 0);
  const w1 = Math.max(...rows.map((r) => r[1].length), header ? 'value'.length : 0);
  if (header) process.stdout.write(`${'figure'.padEnd(w0)}  ${'value'.padEnd(w1)}  note\n`);
  for (const [a, v, c] of rows) process.stdout.write(`${a.padEnd(w0)}  ${v.padEnd(w1)}  ${c}\n`);
}

/** Writes bench/results/NAME.json; returns its path. */
export async function writeResult(name: string, result: unknown): Promise<string> {
  const dir = new URL('../../bench/results/', import.meta.url).pathname;
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
  return file;
}
