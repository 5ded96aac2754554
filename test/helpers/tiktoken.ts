// Genuine tiktoken files without the internet: rebuilt from js-tiktoken's rank tables (same bytes,
// same SHA-256 as the published files).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const made = new Map<string, Promise<Buffer>>();

/** Rebuilt once per process: about a second for both. */
export function genuineEncoding(name: 'o200k_base' | 'cl100k_base'): Promise<Buffer> {
  let b = made.get(name);
  if (!b) made.set(name, (b = build(name)));
  return b;
}

async function build(name: 'o200k_base' | 'cl100k_base'): Promise<Buffer> {
  const { default: m } = (await import(`js-tiktoken/ranks/${name}`)) as { default: { bpe_ranks: string } };
  const rows: Array<[number, string]> = [];
  for (const line of m.bpe_ranks.split('\n').filter(Boolean)) {
    const [, off, ...toks] = line.split(' ');
    toks.forEach((t, i) => rows.push([Number(off) + i, t]));
  }
  rows.sort((a, b) => a[0] - b[0]);
  return Buffer.from(rows.map(([r, t]) => `${t} ${r}\n`).join(''));
}

export async function writeGenuineEncodings(dir: string): Promise<void> {
  for (const name of ['o200k_base', 'cl100k_base'] as const)
    await writeFile(join(dir, `${name}.tiktoken`), await genuineEncoding(name));
}
