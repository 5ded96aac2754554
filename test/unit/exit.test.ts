// Exit codes: one table for every command, one meaning per code, and the README lists each.
import { readFile } from 'node:fs/promises';
import test from 'ava';
import { EXIT } from '../../src/cli/exit.js';

test('every exit code has one meaning, and the README table lists exactly these', async (t) => {
  const codes = Object.values(EXIT);
  t.is(new Set(codes).size, codes.length, 'no code has two names');
  const readme = await readFile(new URL('../../../README.md', import.meta.url), 'utf8');
  const table = readme.slice(readme.indexOf('| code | meaning |'));
  const listed = [...table.matchAll(/^\| (\d+) \|/gm)].map((m) => Number(m[1]));
  t.deepEqual(
    listed,
    [...codes].sort((a, b) => a - b),
  );
});
