// Inputs built to make a regular expression backtrack, and a clock for them (the hostile-input suite).
//
// A pattern is slow on input that matches a long way and then fails: many starting points that
// each run a greedy or lazy part to the end of the line, or one part that can match the same text
// in many ways. So, from the pattern's own syntax tree (regexpp), for each way through it and each
// unbounded part (`*`, `+`, `{n,}`): what leads up to that part, then a long run of what the part
// accepts, or of what follows it, with the terminating literal left off; and the whole run repeated,
// so that every copy is a new start. Plus long runs of single characters.
import { parseRegExpLiteral, type AST } from '@eslint-community/regexpp';

/** One hostile input: `head`, then `unit` repeated, then `end` (a character no pattern wants), `n` in all. */
export interface Attack {
  head: string;
  unit: string;
  end?: string;
}

export function attackText(a: Attack, n: number): string {
  const end = a.end ?? '';
  const body = n - a.head.length - end.length;
  return (
    (a.head + a.unit.repeat(Math.ceil(Math.max(0, body) / Math.max(1, a.unit.length)))).slice(0, n - end.length) + end
  );
}

export const attackLabel = (a: Attack): string => {
  const end = a.end ? ` + ${JSON.stringify(a.end)}` : '';
  return `${JSON.stringify(a.head.slice(0, 60))} + ${JSON.stringify(a.unit.slice(0, 60))}...${end}`;
};

/** Characters tried where a pattern takes a class: the first one or two it accepts stand for it. */
const CANDIDATES = ['a', '0', ' ', 'x', '.', '-', '_', ':', '/', '(', ')', '[', ']', '|', '"', ',', '%', '=', '\t'];
/** Ways through one pattern that are followed (alternatives times optional parts); enough for any here. */
const MAX_WAYS = 16;
/** A quantifier with a larger bound than this counts as unbounded. */
const UNBOUNDED = 256;

interface Atom {
  /** The shortest text this part matches here. */
  text: string;
  /** For an unbounded part: one repetition of what it accepts, in one or more forms. */
  pumps: string[];
}
type Way = Atom[];

function samples(raw: string, flags: string): string[] {
  const re = new RegExp(`^(?:${raw})$`, flags.replace(/[gy]/g, ''));
  return CANDIDATES.filter((c) => re.test(c)).slice(0, 2);
}

function product(ways: Way[], more: Way[]): Way[] {
  const out: Way[] = [];
  for (const a of ways) for (const b of more) if (out.length < MAX_WAYS) out.push([...a, ...b]);
  return out;
}

function alternativesOf(alts: readonly AST.Alternative[], flags: string): Way[] {
  const out: Way[] = [];
  for (const alt of alts) {
    let ways: Way[] = [[]];
    for (const el of alt.elements) ways = product(ways, waysOf(el, flags));
    out.push(...ways);
  }
  return out.slice(0, MAX_WAYS);
}

const textOf = (w: Way): string => w.map((a) => a.text).join('');

function waysOf(el: AST.Element, flags: string): Way[] {
  switch (el.type) {
    case 'Assertion':
    case 'Backreference':
      return [[]];
    case 'Group':
    case 'CapturingGroup':
      return alternativesOf(el.alternatives, flags);
    case 'Character':
      return [[{ text: String.fromCodePoint(el.value), pumps: [] }]];
    case 'CharacterSet':
    case 'CharacterClass':
    case 'ExpressionCharacterClass':
      return [[{ text: samples(el.raw, flags)[0] ?? 'a', pumps: [] }]];
    case 'Quantifier': {
      const inner = waysOf(el.element, flags);
      const one = textOf(inner[0] ?? []);
      const isClass = el.element.type === 'CharacterSet' || el.element.type === 'CharacterClass';
      const forms = isClass ? samples(el.element.raw, flags) : inner.map(textOf).filter(Boolean);
      const pumps = el.max > UNBOUNDED ? [...new Set(forms)] : [];
      const ways: Way[] = [[{ text: one.repeat(el.min), pumps }]];
      // An optional part is followed both ways: left out, and taken once.
      if (el.min === 0 && one) ways.push([{ text: one, pumps }]);
      return ways;
    }
  }
}

/** The shortest string whose repetition `s` is (`abab` -> `ab`): a run of either is the same input. */
function root(s: string): string {
  for (let p = 1; p < s.length; p++)
    if (s.length % p === 0 && s.slice(0, p).repeat(s.length / p) === s) return s.slice(0, p);
  return s;
}

/** The hostile inputs for one pattern, without duplicates. */
export function attacksFor(re: RegExp): Attack[] {
  const ast = parseRegExpLiteral(re);
  const ways = alternativesOf(ast.pattern.alternatives, re.flags);
  const out = new Map<string, Attack>();
  const add = (head: string, text: string, end?: string) => {
    const unit = root(text);
    if (unit) out.set(`${head}\u0000${unit}\u0000${end ?? ''}`, { head, unit, ...(end ? { end } : {}) });
  };
  // Runs of one character: a few common ones, and what each way's first part takes.
  for (const c of [' ', 'a', '0']) add('', c);
  for (const way of ways) for (const c of [way[0]?.text[0] ?? '', ...(way[0]?.pumps ?? [])]) add('', c);
  for (const way of ways) {
    const full = textOf(way);
    add('', full.slice(0, -1));
    for (let i = 0; i < way.length; i++) {
      const atom = way[i]!;
      if (!atom.pumps.length) continue;
      const prefix = textOf(way.slice(0, i + 1));
      for (const p of atom.pumps) {
        add(prefix, p);
        // A pattern anchored at the end ($) fails only at a character it does not take.
        add(prefix, p, '\u0001');
        add('', prefix + p);
      }
      // What follows the part, up to the next unbounded part and up to the end (its last piece left off).
      const next = way.findIndex((a, j) => j > i && a.pumps.length > 0);
      for (const end of [next, way.length - 1]) {
        if (end > i + 1) add(prefix, textOf(way.slice(i + 1, end)));
        if (end > i + 1) add('', prefix + textOf(way.slice(i + 1, end)));
      }
    }
  }
  return [...out.values()];
}

export interface Subject {
  name: string;
  run: (input: string) => unknown;
  attacks: readonly Attack[];
}

export interface Timing {
  name: string;
  attack: string;
  /** Characters of the input the figure is for. */
  size: number;
  ms: number;
}

/**
 * The CPU time (ms) `run` takes on this thread: a figure of the pattern, not of how busy the machine
 * is (wall time on a shared CI runner is mostly the other jobs), nor of other tests in this process.
 */
function clock(run: (s: string) => unknown, s: string): number {
  const cpu = (since?: NodeJS.CpuUsage) =>
    typeof process.threadCpuUsage === 'function' ? process.threadCpuUsage(since) : process.cpuUsage(since);
  const t0 = cpu();
  run(s);
  const d = cpu(t0);
  return (d.user + d.system) / 1000;
}

/**
 * Each subject on each of its attacks: first all of them at `screen` characters, where a quadratic
 * pattern shows in a fraction of the time it would take on `size`: over `limitMs * screen / size * 8`
 * there (eight times the share of the limit a linear pattern may use), it would be over the limit on
 * `size` too, and is reported with its figure on `screen` rather than run for minutes; when any is,
 * that is the answer. Else each at `size`. A figure over its limit is taken again (twice), the best
 * counting: a collection pause or a busy machine is not the pattern. Each input is built once for
 * all the subjects that share it. Returns the slowest figure of each subject, and every figure over
 * the limit (`onOver` hears each as it is found).
 */
export function timeSubjects(
  subjects: readonly Subject[],
  o: { size: number; screen: number; limitMs: number; onOver?: (t: Timing) => void },
): { slowest: Timing[]; over: Timing[] } {
  const screenLimit = ((o.limitMs * o.screen) / o.size) * 8;
  const inputs = new Map<string, { attack: Attack; subjects: Subject[] }>();
  for (const s of subjects)
    for (const a of s.attacks) {
      const key = `${a.head}\u0000${a.unit}\u0000${a.end ?? ''}`;
      const entry = inputs.get(key) ?? { attack: a, subjects: [] };
      entry.subjects.push(s);
      inputs.set(key, entry);
    }
  const worst = new Map<Subject, Timing>(subjects.map((s) => [s, { name: s.name, attack: '', size: 0, ms: -1 }]));
  const over: Timing[] = [];
  const best = (s: Subject, text: string, limit: number) => {
    let ms = clock(s.run, text);
    // Four times over is the pattern, not noise: not taken again.
    for (let i = 0; i < 2 && ms > limit && ms < 4 * limit; i++) ms = Math.min(ms, clock(s.run, text));
    return ms;
  };
  const note = (s: Subject, a: Attack, size: number, ms: number, limit: number) => {
    const t = { name: s.name, attack: attackLabel(a), size, ms };
    if (ms > limit) {
      over.push(t);
      o.onOver?.(t);
    }
    if (ms > (worst.get(s)?.ms ?? -1)) worst.set(s, t);
  };
  for (const size of [o.screen, o.size]) {
    const limit = size === o.size ? o.limitMs : screenLimit;
    for (const { attack, subjects: those } of inputs.values()) {
      const text = attackText(attack, size);
      for (const s of those) note(s, attack, size, best(s, text, limit), limit);
    }
    if (over.length) break;
  }
  return { slowest: [...worst.values()], over };
}
