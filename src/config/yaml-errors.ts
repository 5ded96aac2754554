// YAML syntax errors where an operator can act on them: an unclosed bracket or quote, at its opening.
import { CST, isMap, isPair, isScalar, Parser, visit, type Document } from 'yaml';
import type { Problem } from './problem.js';

type At = (offset: number | undefined) => { line: number; col: number };

type Token = CST.Token | undefined;

const closes = (t: CST.FlowCollection) => t.end.some((e) => e.type === 'flow-seq-end' || e.type === 'flow-map-end');

/** Whether a quoted scalar's source ends with its closing quote (escapes and doubled quotes skipped). */
function quoteClosed(source: string, quote: string): boolean {
  for (let i = 1; i < source.length; i++) {
    const c = source[i];
    if (quote === '"' && c === '\\') i++;
    else if (quote === "'" && c === "'" && source[i + 1] === "'") i++;
    else if (c === quote) return true;
  }
  return false;
}

export interface Unclosed {
  offset: number;
  what: string;
}

function check(t: Token, out: Unclosed[]): void {
  if (!t) return;
  if (t.type === 'flow-collection' && !closes(t)) {
    out.push({
      offset: t.offset,
      what: t.start.source === '[' ? 'the list "[" that opens here' : 'the mapping "{" that opens here',
    });
  }
  if (t.type === 'double-quoted-scalar' && !quoteClosed(t.source, '"'))
    out.push({ offset: t.offset, what: 'the quote " that opens here' });
  if (t.type === 'single-quoted-scalar' && !quoteClosed(t.source, "'"))
    out.push({ offset: t.offset, what: "the quote ' that opens here" });
}

/** Flow collections and quoted scalars that open and never close, in file order. */
export function unclosed(text: string): Unclosed[] {
  const out: Unclosed[] = [];
  for (const doc of new Parser().parse(text)) {
    if (doc.type !== 'document') continue;
    check(doc.value, out);
    CST.visit(doc, (item) => {
      check(item.key ?? undefined, out);
      check(item.value, out);
    });
  }
  return out.sort((a, b) => a.offset - b.offset);
}

/**
 * Syntax errors, located. A bracket or quote that never closes is reported by the parser at the
 * end of the file (a line that may not exist): point at where it opened instead, and say where
 * the file ends.
 */
export function syntaxProblems(doc: Document, text: string, file: string, at: At): Problem[] {
  const open = unclosed(text)[0];
  const lastLine = text.replace(/\n$/, '').split('\n').length;
  return doc.errors.map((e, i) => {
    const hint = yamlHint(e.code, e.message);
    if (i === 0 && open) {
      return {
        file,
        ...at(open.offset),
        key: '',
        message: `${hint}: ${open.what} is never closed (the file ends at line ${lastLine})`,
      };
    }
    const pos = at(e.pos[0]);
    return {
      file,
      ...(pos.line > lastLine ? at(Math.max(0, text.replace(/\n$/, '').length - 1)) : pos),
      key: '',
      message: hint,
    };
  });
}

function yamlHint(code: string, message: string): string {
  switch (code) {
    case 'DUPLICATE_KEY':
      return 'this key appears twice in the same mapping; keep one (the second would silently win)';
    case 'TAB_AS_INDENT':
      return 'YAML does not allow tabs for indentation; indent with spaces';
    default:
      return `YAML syntax error: ${message}`;
  }
}

export function lineCol(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, col: (before.at(-1)?.length ?? 0) + 1 };
}

export function firstAlias(doc: Document): number | undefined {
  let offset: number | undefined;
  visit(doc, {
    Alias(_, node) {
      offset ??= node.range?.[0];
      return offset === undefined ? undefined : visit.BREAK;
    },
  });
  return offset;
}

/** Keys that would reach into JavaScript's object machinery rather than the config. */
const RESERVED_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Structural problems the parser leaves to us, found in one pass over the document (linear time,
 * whatever the number of keys): a key twice in one mapping, a reserved key, a non-scalar key.
 */
export function keyProblems(doc: Document, file: string, at: At): Problem[] {
  const problems: Problem[] = [];
  visit(doc, {
    Map(_, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        if (!isPair(pair)) continue;
        const where = at((pair.key as { range?: [number] } | null)?.range?.[0] ?? map.range?.[0]);
        if (!isScalar(pair.key)) {
          problems.push({ file, ...where, key: '', message: 'a key must be a plain word, not a list or a mapping' });
          continue;
        }
        const key = String(pair.key.value);
        if (RESERVED_KEYS.has(key)) {
          problems.push({ file, ...where, key, message: `"${key}" is not a config key (it is reserved); remove it` });
        } else if (seen.has(key)) {
          problems.push({ file, ...where, key: '', message: yamlHint('DUPLICATE_KEY', '') });
        }
        seen.add(key);
      }
      return isMap(map) ? undefined : visit.SKIP;
    },
  });
  return problems;
}
