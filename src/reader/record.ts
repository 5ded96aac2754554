// What a state record may hold, checked in full (in the reader process): a record that does not fit
// is set aside, never half-trusted (a date where a time belongs once crashed the D-Bus properties).
import { z } from 'zod';
import { LOAD_PHASES, type Persisted } from '../core/model/events.js';
import { RECORD_LIMITS as L } from '../core/model/record.js';
import { GOOD_KEPT } from '../core/model/rollback.js';
import { checkSource } from '../config/spec-source.js';

const count = z.int().min(0).max(1_000_000_000);
/** A time in ms since the epoch, from this century to the next. */
const time = z.number().min(946_684_800_000).max(4_102_444_800_000);
const text = (max: number) => z.string().max(max);
const hash = z.string().regex(/^[0-9a-f]{64}$/);

const exit = z.object({
  code: z.int().min(-1).max(255).nullable(),
  oom: z.boolean(),
  tail: z.array(text(L.tailLine)).max(L.tailLines),
});

export const persistedSchema = z.object({
  restarts: count,
  totalRestarts: count,
  restartAt: time.optional(),
  failedUntil: time.optional(),
  failures: z.array(time).max(10_000).optional(),
  lastExit: exit.optional(),
  lastFailure: text(L.lastFailure).optional(),
  cause: text(L.cause).optional(),
  diagnosis: z
    .object({
      code: z.string().regex(/^[a-z][a-z0-9-]{0,39}$/),
      summary: text(L.summary),
      remedy: text(L.remedy),
      at: time,
    })
    .optional(),
  lastDeep: z.object({ at: time, ok: z.boolean(), detail: text(L.deepDetail) }).optional(),
  lastMaintenance: time.optional(),
  lastLoad: z
    .object({
      spec: hash,
      took: z.number().min(0).max(1e10),
      // Partial: a load names only the phases it went through (zod 4 makes a record of an enum exhaustive).
      phases: z.partialRecord(z.enum(LOAD_PHASES), z.number().min(0).max(1e10)),
      at: time,
    })
    .optional(),
  modelBytes: z.object({ model: text(L.name), bytes: z.number().min(0).max(1e15) }).optional(),
  container: z.object({ name: text(L.name), spec: hash }).optional(),
  good: z
    .array(
      z.object({
        hash,
        image: text(L.name),
        imageId: z.string().regex(/^sha256:[0-9a-f]{64}$/),
        digest: text(L.name).optional(),
        source: z.record(z.string(), z.unknown()),
        servedAt: time,
        provenAt: time,
        ended: z.object({ at: time, how: text(L.summary) }).optional(),
      }),
    )
    .max(GOOD_KEPT)
    .optional(),
  trial: z.object({ spec: hash, failures: count, operator: z.boolean().optional() }).optional(),
  rollback: z
    .object({
      from: hash,
      to: hash,
      because: text(L.summary),
      code: z.string().regex(/^[a-z][a-z0-9-]{0,39}$/),
      at: time,
      failedToo: text(L.summary).optional(),
    })
    .optional(),
  guardKills: z.object({ spec: hash, count: count }).optional(),
  decode: z
    .object({
      spec: hash,
      servedMs: z.number().min(0).max(1e12),
      samples: z.array(z.number().min(0).max(1e6)).max(L.decodeLooks),
      secondsPerToken: z.number().min(0).max(1e6).optional(),
      at: time.optional(),
    })
    .optional(),
});

export type CheckedRecord = { record: Persisted } | { problem: string };

/** The record, or what is wrong with it (the first problem, with its key). */
export function checkRecord(value: unknown): CheckedRecord {
  const r = persistedSchema.safeParse(value);
  if (r.success) {
    // A good spec whose source the config schema no longer takes cannot be brought back: it is dropped, not the record.
    const good = r.data.good?.filter((g) => checkSource(g.source) !== undefined);
    const record = { ...r.data, ...(good ? { good } : {}) } as Persisted;
    if (record.rollback && !good?.some((g) => g.hash === record.rollback?.to)) delete record.rollback;
    return { record };
  }
  const first = r.error.issues[0];
  return { problem: `${first?.path.join('.') || 'the record'}: ${first?.message ?? 'does not fit'}` };
}
