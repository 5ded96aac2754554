// Reads config.yaml and turns every problem into a located `file:line:col: what, how to fix` line.
import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import { readCapped } from '../util/read-capped.js';
import type { LoadResult, Problem } from './problem.js';
import { configSchema } from './schema.js';
import { dropEmptyMappings, issueProblems, type At } from './schema-issues.js';
import { firstAlias, keyProblems, lineCol, syntaxProblems } from './yaml-errors.js';

export { DEFAULT_CONFIG_PATH, formatProblem, resolveConfigPath, type LoadResult, type Problem } from './problem.js';

/** A config is a few KiB (the shipped one, every key commented, is 7 KiB): more is the wrong file. */
export const MAX_CONFIG_BYTES = 64 * 1024;
const MAX_ALIASES = 100;

const whole = (file: string, message: string): LoadResult => ({
  ok: false,
  file,
  problems: [{ file, line: 1, col: 1, key: '', message }],
});

/** Reads and validates a config file. Never throws for anything an operator can cause. */
export async function loadConfig(file: string): Promise<LoadResult> {
  const read = await readCapped(file, MAX_CONFIG_BYTES);
  if (!read.ok) return whole(file, describeReadError(read.code, read.why));
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(read.data);
  } catch {
    return whole(file, 'is not UTF-8 text (a binary file?); a config is YAML text');
  }
  return parseConfig(text, file);
}

function describeReadError(code: string | undefined, why: string): string {
  switch (code) {
    case 'ENOENT':
      return 'no such file; create it (install.sh installs the commented default) or pass --config PATH';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied; run as root or make the file readable';
    case 'EISDIR':
      return 'is a directory, not a config file; point --config at the YAML file (e.g. /etc/gptoss/config.yaml)';
    case 'ENOTREG':
      return `${why}; point --config at the YAML file (e.g. /etc/gptoss/config.yaml)`;
    case 'EFBIG':
      return `${why} for a config (${MAX_CONFIG_BYTES / 1024} KiB); is this the right file?`;
    default:
      return `cannot be read (${why})`;
  }
}

const TOP_LEVEL =
  'the top level must be a mapping of sections (model:, container:, paths:, ...), not a list or a single value';

/** Parses and validates config text; `file` is only used to locate problems. */
export function parseConfig(text: string, file: string): LoadResult {
  const nul = text.indexOf('\0');
  if (nul >= 0) {
    const message = 'contains a NUL byte: this is a binary file, not YAML';
    return { ok: false, file, problems: [{ file, ...lineCol(text, nul), key: '', message }] };
  }
  const lines = new LineCounter();
  // Duplicate keys are found by keyProblems in one pass: the parser's own check is quadratic.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false, strict: true });
  const at: At = (offset) => {
    const pos = lines.linePos(offset ?? 0);
    return { line: pos.line, col: pos.col };
  };
  if (doc.errors.length > 0) return { ok: false, file, problems: syntaxProblems(doc, text, file, at) };
  // Warnings (an unknown tag such as !!python/object) are errors here: nothing in a config needs one.
  const warned = doc.warnings.map((w): Problem => ({ file, ...at(w.pos[0]), key: '', message: `YAML: ${w.message}` }));
  const keys = keyProblems(doc, file, at);
  if (warned.length || keys.length) return { ok: false, file, problems: [...warned, ...keys] };
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null))
    return validate({}, doc, file, at, text);
  if (!isMap(doc.contents)) {
    return { ok: false, file, problems: [{ file, ...at(doc.contents.range?.[0]), key: '', message: TOP_LEVEL }] };
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (err) {
    const why = /Excessive alias count/.test(String(err))
      ? `expands YAML aliases more than ${MAX_ALIASES} times (an "alias bomb"); write the values out instead`
      : `YAML aliases cannot be resolved: ${(err as Error).message}`;
    return { ok: false, file, problems: [{ file, ...at(firstAlias(doc)), key: '', message: why }] };
  }
  return validate(data, doc, file, at, text);
}

function validate(data: unknown, doc: Document, file: string, at: At, text: string): LoadResult {
  const parsed = configSchema.safeParse(dropEmptyMappings(data ?? {}, []), { reportInput: true });
  if (parsed.success) return { ok: true, config: parsed.data, file, text };
  return { ok: false, file, problems: issueProblems(parsed.error.issues, doc, file, at) };
}
