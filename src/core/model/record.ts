// What a state record may hold, in sizes: the machine cuts what it persists to them, and the reader's
// schema (src/reader/record.ts) refuses more. One table, so the two cannot disagree: a log line longer
// than the reader allowed once made the next start set the record aside, and the restart count and
// the restart budget started again from zero.
import type { Persisted } from './events.js';

export const RECORD_LIMITS = {
  /** Lines of the exit's tail kept, and characters of each. */
  tailLines: 200,
  tailLine: 8192,
  lastFailure: 8192,
  cause: 1024,
  summary: 4096,
  remedy: 4096,
  deepDetail: 4096,
  name: 256,
  /** Looks of decode speed kept while a baseline is collected (an hour at a 10 s readiness period is 360). */
  decodeLooks: 720,
} as const;

const cut = (s: string, max: number): string => (s.length <= max ? s : `${s.slice(0, max - 3)}...`);

/** The record with every text within RECORD_LIMITS (the rest of it as it is). */
export function fitRecord(p: Persisted): Persisted {
  const L = RECORD_LIMITS;
  const out: Persisted = { ...p };
  if (p.lastExit) {
    const lines = (l: string[]) => l.slice(-L.tailLines).map((x) => cut(x, L.tailLine));
    const { kernel, ...exit } = p.lastExit;
    out.lastExit = { ...exit, tail: lines(exit.tail), ...(kernel ? { kernel: lines(kernel) } : {}) };
  }
  if (p.lastFailure !== undefined) out.lastFailure = cut(p.lastFailure, L.lastFailure);
  if (p.cause !== undefined) out.cause = cut(p.cause, L.cause);
  if (p.diagnosis)
    out.diagnosis = {
      ...p.diagnosis,
      summary: cut(p.diagnosis.summary, L.summary),
      remedy: cut(p.diagnosis.remedy, L.remedy),
    };
  if (p.lastDeep) out.lastDeep = { ...p.lastDeep, detail: cut(p.lastDeep.detail, L.deepDetail) };
  if (p.modelBytes) out.modelBytes = { ...p.modelBytes, model: cut(p.modelBytes.model, L.name) };
  if (p.container) out.container = { ...p.container, name: cut(p.container.name, L.name) };
  if (p.good)
    out.good = p.good.map((g) => (g.ended ? { ...g, ended: { ...g.ended, how: cut(g.ended.how, L.summary) } } : g));
  if (p.rollback) {
    const { failedToo, ...rb } = p.rollback;
    out.rollback = {
      ...rb,
      because: cut(rb.because, L.summary),
      ...(failedToo === undefined ? {} : { failedToo: cut(failedToo, L.summary) }),
    };
  }
  if (p.decode) out.decode = { ...p.decode, samples: p.decode.samples.slice(-L.decodeLooks) };
  return out;
}
