// Prometheus's text exposition format (version 0.0.4), parsed as the format's specification says.
// https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format

export interface Series {
  labels: Record<string, string>;
  value: number;
}

/** Every sample by metric name, in the order given; comments, HELP, TYPE and timestamps are skipped. */
export type Exposition = Map<string, Series[]>;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*/;

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
  if (!/^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(v)) return undefined;
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
    const [v] = line.slice(i).trim().split(/\s+/);
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
    if (s?.length) return Math.max(...s.map((x) => x.value));
  }
  return undefined;
}
