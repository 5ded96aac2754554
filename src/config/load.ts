// Reads config.yaml and turns every problem into a located `file:line:col: what, how to fix` line.
import { readFile, stat } from 'node:fs/promises';
import { isAlias, isMap, isPair, isScalar, LineCounter, parseDocument, visit, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import type { LoadResult, Problem } from './problem.js';
import { configSchema } from './schema.js';
import { nearest } from './suggest.js';

export { DEFAULT_CONFIG_PATH, formatProblem, resolveConfigPath, type LoadResult, type Problem } from './problem.js';
import { unclosed } from './yaml-errors.js';

type LineCol = { line: number; col: number };

/** A config is a few KiB; anything this large is the wrong file, and reading it would be the attack. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
const MAX_ALIASES = 100;

const whole = (file: string, message: string): LoadResult => ({
  ok: false,
  file,
  problems: [{ file, line: 1, col: 1, key: '', message }],
});

/** Reads and validates a config file. Never throws for anything an operator can cause. */
export async function loadConfig(file: string): Promise<LoadResult> {
  let bytes: Buffer;
  try {
    const st = await stat(file);
    if (st.isDirectory())
      return whole(
        file,
        'is a directory, not a config file; point --config at the YAML file (e.g. /etc/gptoss/config.yaml)',
      );
    if (st.size > MAX_CONFIG_BYTES)
      return whole(
        file,
        `is ${st.size} bytes, over the ${MAX_CONFIG_BYTES}-byte limit for a config; is this the right file?`,
      );
    bytes = await readFile(file);
  } catch (err) {
    return whole(file, describeFsError(err));
  }
  if (bytes.length > MAX_CONFIG_BYTES)
    return whole(file, `is over the ${MAX_CONFIG_BYTES}-byte limit for a config; is this the right file?`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return whole(file, 'is not UTF-8 text (a binary file?); a config is YAML text');
  }
  return parseConfig(text, file);
}

function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return 'no such file; create it (install.sh installs the commented default) or pass --config PATH';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied; run as root or make the file readable';
    case 'EISDIR':
      return 'is a directory, not a config file';
    default:
      return `cannot be read (${code ?? String(err)})`;
  }
}

/** Parses and validates config text; `file` is only used to locate problems. */
export function parseConfig(text: string, file: string): LoadResult {
  const nul = text.indexOf('\0');
  const lines = new LineCounter();
  if (nul >= 0) {
    const at = lineCol(text, nul);
    return {
      ok: false,
      file,
      problems: [{ file, ...at, key: '', message: 'contains a NUL byte: this is a binary file, not YAML' }],
    };
  }
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, strict: true });
  const at = (offset: number | undefined) => {
    const pos = lines.linePos(offset ?? 0);
    return { line: pos.line, col: pos.col };
  };
  if (doc.errors.length > 0) return { ok: false, file, problems: syntaxProblems(doc, text, file, at) };
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null))
    return validate({}, doc, file, at, text);
  if (!isMap(doc.contents)) {
    return {
      ok: false,
      file,
      problems: [
        {
          file,
          ...at(doc.contents.range?.[0]),
          key: '',
          message:
            'the top level must be a mapping of sections (model:, container:, paths:, ...), not a list or a single ' +
            'value',
        },
      ],
    };
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (err) {
    const alias = firstAlias(doc);
    const why = /Excessive alias count/.test(String(err))
      ? `expands YAML aliases more than ${MAX_ALIASES} times (an "alias bomb"); write the values out instead`
      : `YAML aliases cannot be resolved: ${(err as Error).message}`;
    return { ok: false, file, problems: [{ file, ...at(alias), key: '', message: why }] };
  }
  return validate(data, doc, file, at, text);
}

function validate(
  data: unknown,
  doc: Document,
  file: string,
  at: (o: number | undefined) => { line: number; col: number },
  text: string,
): LoadResult {
  const parsed = configSchema.safeParse(dropEmptyMappings(data ?? {}, []), { reportInput: true });
  if (parsed.success) return { ok: true, config: parsed.data, file, text };
  const problems: Problem[] = [];
  for (const issue of parsed.error.issues) {
    const path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeys(path);
      for (const key of issue.keys) {
        const guess = nearest(key, known);
        const hint = guess ? `did you mean "${guess}"?` : `known keys here: ${known.join(', ')}`;
        const where = path.length ? `in ${path.join('.')}` : 'at the top level';
        problems.push({
          file,
          ...at(keyOffset(doc, path, key)),
          key: [...path, key].join('.'),
          message: `unknown key ${where}; ${hint}`,
        });
      }
      continue;
    }
    problems.push({ file, ...at(valueOffset(doc, path)), key: path.join('.'), message: describeIssue(issue) });
  }
  problems.sort((a, b) => a.line - b.line || a.col - b.col);
  return { ok: false, file, problems };
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const got = 'input' in issue && issue.input !== undefined ? `; got ${show(issue.input)}` : '';
  const msg = issue.message;
  if (issue.code === 'invalid_type' && /^Invalid input/.test(msg)) return `expected ${article(issue.expected)}${got}`;
  if (issue.code === 'too_small' && /^Too small/.test(msg)) return `must be at least ${String(issue.minimum)}${got}`;
  if (issue.code === 'too_big' && /^Too big/.test(msg)) return `must be at most ${String(issue.maximum)}${got}`;
  if (issue.code === 'invalid_value' && /^Invalid/.test(msg))
    return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}${got}`;
  // Refinements carry their own wording; add the value only where it is a plain one not yet quoted.
  const plain = 'input' in issue && (typeof issue.input === 'string' || typeof issue.input === 'number');
  return issue.code === 'custom' && (!plain || msg.includes(JSON.stringify(issue.input))) ? msg : `${msg}${got}`;
}

const article = (t: string) => (/^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`);

function show(v: unknown): string {
  if (v === null) return 'null (an empty value)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  return typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint' ? String(v) : typeof v;
}

/**
 * Syntax errors, located. A bracket or quote that never closes is reported by the parser at the
 * end of the file (a line that may not exist): point at where it opened instead, and say where
 * the file ends.
 */
function syntaxProblems(doc: Document, text: string, file: string, at: (o: number | undefined) => LineCol): Problem[] {
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

function lineCol(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, col: (before.at(-1)?.length ?? 0) + 1 };
}

function firstAlias(doc: Document): number | undefined {
  let offset: number | undefined;
  visit(doc, {
    Alias(_, node) {
      offset ??= node.range?.[0];
      return offset === undefined ? undefined : visit.BREAK;
    },
  });
  return offset;
}

/** The node at `path`, or the deepest existing ancestor when the path runs out. */
function nodeAt(doc: Document, path: (string | number)[]): Node | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n), true);
    if (node && typeof node === 'object' && 'range' in node && !isAlias(node)) return node as Node;
  }
  return doc.contents ?? undefined;
}

function valueOffset(doc: Document, path: (string | number)[]): number | undefined {
  return nodeAt(doc, path)?.range?.[0];
}

function keyOffset(doc: Document, path: (string | number)[], key: string): number | undefined {
  const parent = nodeAt(doc, path);
  if (isMap(parent)) {
    for (const pair of parent.items) {
      if (isPair(pair) && isScalar(pair.key) && String(pair.key.value) === key) return pair.key.range?.[0];
    }
  }
  return parent?.range?.[0];
}

interface SchemaDef {
  type: string;
  innerType?: unknown;
  in?: unknown;
  shape?: Record<string, unknown>;
}

/** The schema's definition at a key path, unwrapped from defaults, pipes and optionals. */
function defAt(path: (string | number)[]): SchemaDef | undefined {
  let schema: unknown = configSchema;
  for (let i = 0; ;) {
    const def = (schema as { def?: SchemaDef } | undefined)?.def;
    if (!def) return undefined;
    if (def.type === 'object' && i < path.length) {
      schema = def.shape?.[String(path[i++])];
      continue;
    }
    const inner = def.innerType ?? def.in;
    if (def.type === 'object' || def.type === 'record' || !inner) return i === path.length ? def : undefined;
    schema = inner;
  }
}

/** The keys the schema knows at a path, for "did you mean". */
function knownKeys(path: (string | number)[]): string[] {
  const def = defAt(path);
  return def?.type === 'object' ? Object.keys(def.shape ?? {}) : [];
}

/**
 * A section left empty (`model:` with every line under it commented out) means "all defaults",
 * as it reads; YAML makes it null, which the schema would reject.
 */
function dropEmptyMappings(data: unknown, path: string[]): unknown {
  if (!data || typeof data !== 'object' || Array.isArray(data)) return data;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(data)) {
    const def = defAt([...path, k]);
    const mapping = def?.type === 'object' || def?.type === 'record';
    if (v === null && mapping) continue;
    out[k] = def?.type === 'object' ? dropEmptyMappings(v, [...path, k]) : v;
  }
  return out;
}
