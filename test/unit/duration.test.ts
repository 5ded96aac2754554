import test from 'ava';
import { formatDuration, parseDuration } from '../../src/core/rules/duration.js';

const parses: [string, number | undefined][] = [
  ['30s', 30_000],
  ['10m', 600_000],
  ['1h', 3_600_000],
  ['1m30s', 90_000],
  ['500ms', 500],
  ['1.5s', 1500],
  ['2d', 172_800_000],
  [' 5s ', 5000],
  ['30', undefined],
  ['s', undefined],
  ['-1s', undefined],
  ['1 m', undefined],
  ['1y', undefined],
  ['', undefined],
];
for (const [text, ms] of parses) {
  test(`parseDuration(${JSON.stringify(text)}) = ${ms}`, (t) => t.is(parseDuration(text), ms));
}

const formats: [number, string][] = [
  [0, '0s'],
  [500, '500ms'],
  [30_000, '30s'],
  [90_000, '1m30s'],
  [3_600_000, '1h'],
  [900_000, '15m'],
  [3_723_000, '1h2m3s'],
];
for (const [ms, text] of formats) {
  test(`formatDuration(${ms}) = ${text}`, (t) => t.is(formatDuration(ms), text));
}
