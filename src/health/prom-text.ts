// Prometheus's text exposition format (version 0.0.4), parsed as the format's specification says.
// https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
//
// The text is the model container's (its /metrics, up to the probe's 1 MiB): no pattern here may
// backtrack over it (test/unit/hostile.test.ts times them), and a line longer than any vLLM writes
// is skipped unread.

export interface Series {
  labels: Record<string, string>;
  value: number;
}

/** Every sample by metric name, in the order given; comments, HELP, TYPE and timestamps are skipped. */
export type Exposition = Map<string, Series[]>;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*/;
/** A float as Go and Python write one. One way to match each text: `\d+\.?\d*` had n of them for n digits. */
const FLOAT = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
/** The first word of what follows the labels: the value. */
const FIRST = /^[ \t]*(\S+)/;
/** Longer than any line vLLM's /metrics has (a histogram bucket with its labels is ~300 characters). */
const MAX_LINE = 16 * 1024;

function parseValue(v: string): number | undefined {
  switch (v) {
    case 'NaN':
      return NaN;
    case '+Inf':
    case 'Inf':
      return Infinity;
    case '-Inf':
      return -Infinity;
  }
  if (!FLOAT.test(v)) return undefined;
  return Number(v);
}

/** The label set from just after `{`; returns the labels and where the `}` ends, or undefined when malformed. */
function parseLabels(line: string, from: number): { labels: Record<string, string>; end: number } | undefined {
  const labels: Record<string, string> = {};
  let i = from;
  for (;;) {
    while (line[i] === ' ' || line[i] === '\t') i++;
    if (line[i] === '}') return { labels, end: i + 1 };
    const m = LABEL.exec(line.slice(i));
    if (!m) return undefined;
    i += m[0].length;
    while (line[i] === ' ') i++;
    if (line[i] !== '=' || line[i + 1] !== '"') return undefined;
    i += 2;
    let v = '';
    for (;;) {
      const c = line[i];
      if (c === undefined) return undefined;
      if (c === '"') break;
      if (c === '\\') {
        const n = line[i + 1];
        v += n === 'n' ? '\n' : n === '"' ? '"' : n === '\\' ? '\\' : `\\${n ?? ''}`;
        i += 2;
        continue;
      }
      v += c;
      i++;
    }
    labels[m[0]] = v;
    i++;
    while (line[i] === ' ') i++;
    if (line[i] === ',') i++;
    else if (line[i] !== '}') return undefined;
  }
}

/** Parses an exposition; malformed lines are skipped (one bad series must not hide the rest). */
export function parseExposition(text: string): Exposition {
  const out: Exposition = new Map();
  for (const raw of text.split('\n')) {
    if (raw.length > MAX_LINE) continue;
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const name = NAME.exec(line)?.[0];
    if (!name) continue;
    let i = name.length;
    let labels: Record<string, string> = {};
    if (line[i] === '{') {
      const l = parseLabels(line, i + 1);
      if (!l) continue;
      labels = l.labels;
      i = l.end;
    }
    const v = FIRST.exec(line.slice(i))?.[1];
    const value = parseValue(v ?? '');
    if (value === undefined) continue;
    const list = out.get(name) ?? [];
    list.push({ labels, value });
    out.set(name, list);
  }
  return out;
}

/** The sum of a metric over its series (several engines, several models), from the first name that is there. */
export function sumOf(e: Exposition, ...names: string[]): number | undefined {
  for (const n of names) {
    const s = e.get(n);
    if (s?.length) return s.reduce((a, x) => a + x.value, 0);
  }
  return undefined;
}

/** The largest value of a metric over its series, from the first name that is there. */
export function maxOf(e: Exposition, ...names: string[]): number | undefined {
  for (const n of names) {
    const s = e.get(n);
    if (s?.length) return s.reduce((a, x) => Math.max(a, x.value), -Infinity);
  }
  return undefined;
}
