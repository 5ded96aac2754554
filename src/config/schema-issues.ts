// Schema issues as located problems: the wording, the place in the file, "did you mean".
import { isAlias, isMap, isPair, isScalar, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import type { Problem } from './problem.js';
import { configSchema } from './schema.js';
import { nearest } from './suggest.js';

export type At = (offset: number | undefined) => { line: number; col: number };

/**
 * Where values may be secrets, so that a problem there never quotes the value (a message reaches the
 * journal, `status` and D-Bus, which every user reads): the token's section, the environment, the extra
 * arguments, and any key that names a URL or a secret (a Slack URL or an ntfy topic is one).
 */
const SECRET_SECTIONS = new Set(['hfToken']);
const SECRET_KEY = /url|token|secret|passw|key|auth|credential|cookie/i;
export function secretPath(path: readonly (string | number)[]): boolean {
  if (SECRET_SECTIONS.has(String(path[0]))) return true;
  if (path[0] === 'container' && path[1] === 'env') return true;
  if (path[0] === 'model' && path[1] === 'extraArgs') return true;
  return path.some((p) => typeof p === 'string' && SECRET_KEY.test(p));
}

/** Every schema issue, located in the document, sorted by place. */
export function issueProblems(issues: readonly z.core.$ZodIssue[], doc: Document, file: string, at: At): Problem[] {
  const problems: Problem[] = [];
  for (const issue of issues) {
    const path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeys(path);
      for (const key of issue.keys) {
        const guess = nearest(key, known);
        const hint = guess ? `did you mean "${guess}"?` : `known keys here: ${known.join(', ')}`;
        const where = path.length ? `in ${path.join('.')}` : 'at the top level';
        const message = `unknown key ${where}; ${hint}`;
        problems.push({ file, ...at(keyOffset(doc, path, key)), key: [...path, key].join('.'), message });
      }
      continue;
    }
    const secret = secretPath(path);
    problems.push({ file, ...at(valueOffset(doc, path)), key: path.join('.'), message: describeIssue(issue, secret) });
  }
  return problems.sort((a, b) => a.line - b.line || a.col - b.col);
}

/** The issue in words, quoting the value given unless it sits under a secret's key (hfToken). */
function describeIssue(issue: z.core.$ZodIssue, secret: boolean): string {
  const got = !secret && 'input' in issue && issue.input !== undefined ? `; got ${show(issue.input)}` : '';
  const msg = issue.message;
  if (issue.code === 'invalid_type' && /^Invalid input/.test(msg)) return `expected ${article(issue.expected)}${got}`;
  if (issue.code === 'too_small' && /^Too small/.test(msg)) return `must be at least ${String(issue.minimum)}${got}`;
  if (issue.code === 'too_big' && /^Too big/.test(msg)) return `must be at most ${String(issue.maximum)}${got}`;
  if (issue.code === 'invalid_value' && /^Invalid/.test(msg))
    return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}${got}`;
  // Refinements carry their own wording; add the value only where it is a plain one not yet quoted.
  const plain = 'input' in issue && (typeof issue.input === 'string' || typeof issue.input === 'number');
  return issue.code === 'custom' && (secret || !plain || msg.includes(JSON.stringify(issue.input)))
    ? msg
    : `${msg}${got}`;
}

const article = (t: string) => (/^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`);

function show(v: unknown): string {
  if (v === null) return 'null (an empty value)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  return typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint' ? String(v) : typeof v;
}

/** The node at `path`, or the deepest existing ancestor when the path runs out. */
function nodeAt(doc: Document, path: (string | number)[]): Node | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n), true);
    if (node && typeof node === 'object' && 'range' in node && !isAlias(node)) return node as Node;
  }
  return doc.contents ?? undefined;
}

export function valueOffset(doc: Document, path: (string | number)[]): number | undefined {
  return nodeAt(doc, path)?.range?.[0];
}

export function keyOffset(doc: Document, path: (string | number)[], key: string): number | undefined {
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
      // Own keys only: `constructor` or `__proto__` are not config keys.
      const key = String(path[i++]);
      schema = def.shape && Object.hasOwn(def.shape, key) ? def.shape[key] : undefined;
      continue;
    }
    const inner = def.innerType ?? def.in;
    if (def.type === 'object' || def.type === 'record' || !inner) return i === path.length ? def : undefined;
    schema = inner;
  }
}

/** The keys the schema knows at a path, for "did you mean". */
export function knownKeys(path: (string | number)[]): string[] {
  const def = defAt(path);
  return def?.type === 'object' ? Object.keys(def.shape ?? {}) : [];
}

/**
 * A section left empty (`model:` with every line under it commented out) means "all defaults",
 * as it reads; YAML makes it null, which the schema would reject.
 */
export function dropEmptyMappings(data: unknown, path: string[]): unknown {
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
