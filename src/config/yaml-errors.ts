// YAML syntax errors where an operator can act on them: an unclosed bracket or quote, at its opening.
import { CST, Parser } from 'yaml';

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
