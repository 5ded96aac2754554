// The config's value types, each checked the way what reads it will read it (Docker, vLLM, timers).
import { z } from 'zod';
import { formatDuration, parseDuration } from '../core/rules/duration.js';
import { formatSize, parseSize } from '../core/rules/size.js';
import { normalisePath, systemFolder } from './guards.js';
import { checkExtraArgs } from './vllm-flags.js';

/** Node's timers hold at most 2^31-1 ms (24.8 days); a longer one fires at once. */
const TIMER_MAX_MS = 2 ** 31 - 1;

/**
 * A duration in ms, between `min` and `max`: a minimum keeps periods and delays from turning into
 * busy loops, a maximum keeps them in what a timer can hold and an operator means.
 */
export const duration = (fallback: string, min: string, max: string) => durationIn(min, max).prefault(fallback);

/** A duration, or null (nothing written: null). */
export const optionalDuration = (min: string, max: string) => durationIn(min, max).nullable().default(null);

function durationIn(min: string, max: string) {
  const lo = parseDuration(min) ?? 0;
  const hi = Math.min(parseDuration(max) ?? TIMER_MAX_MS, TIMER_MAX_MS);
  return z.string({ error: 'expected a duration such as 30s, 10m or 1h' }).transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration; write it like 30s, 10m, 1h or 1m30s` });
      return z.NEVER;
    }
    if (ms < lo || ms > hi) {
      const message = ms < lo ? `must be at least ${formatDuration(lo)}` : `must be at most ${formatDuration(hi)}`;
      ctx.addIssue({ code: 'custom', message });
      return z.NEVER;
    }
    return ms;
  });
}

/** A size in bytes between `min` and `max`, written `8MiB`, `4GiB` or as a number of bytes. */
export const size = (fallback: string, min: string, max: string) => sizeIn(min, max).prefault(fallback);

/** A size, or `auto` (the supervisor works it out from the host). */
export const sizeOrAuto = (min: string, max: string) => sizeIn(min, max, true).prefault('auto');

function sizeIn(min: string, max: string, auto: true): z.ZodType<number | 'auto', number | string>;
function sizeIn(min: string, max: string): z.ZodType<number, number | string>;
function sizeIn(min: string, max: string, auto = false): z.ZodType<number | 'auto', number | string> {
  const lo = parseSize(min) ?? 0;
  const hi = parseSize(max) ?? Number.MAX_SAFE_INTEGER;
  const like = `${auto ? 'auto or ' : ''}a size such as 8MiB, 4GiB or a number of bytes`;
  return z.union([z.int().min(0), z.string()], `expected ${like}`).transform((v, ctx) => {
    if (auto && v === 'auto') return 'auto';
    const bytes = typeof v === 'number' ? v : parseSize(v);
    if (bytes === undefined) {
      const hint = `write it like ${auto ? 'auto, ' : ''}512KiB, 8MiB or 4GiB`;
      ctx.addIssue({ code: 'custom', message: `"${String(v)}" is not a size; ${hint}` });
      return z.NEVER;
    }
    if (bytes < lo || bytes > hi) {
      const message = bytes < lo ? `must be at least ${formatSize(lo)}` : `must be at most ${formatSize(hi)}`;
      ctx.addIssue({ code: 'custom', message });
      return z.NEVER;
    }
    return bytes;
  });
}

/** The first control character in a value (C0, DEL, C1), as JSON writes it, or undefined. */
export function controlIn(v: string): string | undefined {
  // eslint-disable-next-line no-control-regex -- control characters are what it looks for
  const m = /[\x00-\x1f\x7f-\x9f]/.exec(v);
  return m ? JSON.stringify(m[0]) : undefined;
}

/**
 * Refuses control characters in a value that reaches a command line, the environment, a path or an
 * exported unit file: a newline there ends a line (an injected `ExecStartPre=` in a Quadlet unit).
 */
export function refuseControl(v: string, ctx: z.core.$RefinementCtx<string>): void {
  const found = controlIn(v);
  if (found) ctx.addIssue({ code: 'custom', message: controlMessage(found) });
}

export const controlMessage = (found: string) =>
  `must not contain control characters (found ${found}): a newline or tab splits words and lines; remove it`;

/**
 * A value that goes on vLLM's command line as a word of its own (model.id, servedName, quantization):
 * one that starts with "-" would be read as a flag (`vllm serve --trust-remote-code ...`).
 */
export const argValue = (fallback: string, what: string) =>
  z
    .string()
    .min(1, 'must not be empty')
    .superRefine(refuseControl)
    .superRefine((v, ctx) => {
      if (v.startsWith('-'))
        ctx.addIssue({
          code: 'custom',
          message:
            `must not start with "-": vLLM would read ${JSON.stringify(v)} as a flag; write ${what}, and flags in ` +
            'model.extraArgs',
        });
    })
    .default(fallback);

export const positiveInt = (fallback: number) =>
  z.int('expected a whole number').min(1, 'must be at least 1').default(fallback);

/** An absolute path, normalised (`/vllm/../x` is `/x`). */
export const absolutePath = (fallback: string) =>
  z
    .string('expected an absolute path')
    .refine((p) => p.startsWith('/'), 'must be an absolute path (starting with /)')
    .superRefine(refuseControl)
    .transform(normalisePath)
    .default(fallback);

/** A host folder bind-mounted into the model container: absolute, no ":", not a system folder. */
export const mountPath = (fallback: string) => mountPathIn().default(fallback);

/** A mount path, or null to go without the mount. */
export const optionalMountPath = (fallback: string) => mountPathIn().nullable().default(fallback);

const mountPathIn = () =>
  z
    .string('expected an absolute path')
    .refine((p) => p.startsWith('/'), 'must be an absolute path (starting with /)')
    .refine((p) => !p.includes(':'), 'must not contain ":" (Docker uses it to separate bind-mount fields)')
    .superRefine(refuseControl)
    .superRefine((p, ctx) => {
      const why = systemFolder(p);
      if (why) ctx.addIssue({ code: 'custom', message: why });
    })
    .transform(normalisePath);

// Docker's reference grammar (distribution/reference): a registry host (any case, a port), path
// components in lower case, a tag, a digest.
const LABEL = String.raw`[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?`;
const DOMAIN = String.raw`${LABEL}(?:\.${LABEL})*(?::[0-9]+)?`;
const COMPONENT = String.raw`[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`;
const TAG = String.raw`[\w][\w.-]{0,127}`;
const DIGEST = String.raw`[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`;
const REFERENCE = new RegExp(`^(?:${DOMAIN}/)?${COMPONENT}(?:/${COMPONENT})*(?::${TAG})?(?:@${DIGEST})?$`);

export const imageRef = (fallback: string) =>
  z
    .string()
    .refine(
      (r) => REFERENCE.test(r),
      'is not an image reference Docker accepts (the repository in lower case), such as nvcr.io/nvidia/vllm:25.09-py3',
    )
    .default(fallback);

/** A GPU as Docker's --gpus names it: an index, or a UUID (GPU-..., MIG-...). No commas: Docker splits on them. */
const gpuId = z.union([
  z.int().min(0),
  z.string().regex(/^(?:\d+|(?:GPU|MIG)-[A-Za-z0-9/-]+)$/, 'is not a GPU index or UUID (GPU-..., MIG-...)'),
]);

export const gpus = z
  .union([z.enum(['all', 'none']), z.int().min(1), z.array(gpuId).min(1)], {
    error: 'expected "all", "none", a GPU count such as 1, or a list of device ids such as [0, 1]',
  })
  .default('all');

export const extraArgs = z
  .array(z.string('expected a flag as a string, e.g. "--max-num-seqs=64"').superRefine(refuseControl))
  .default([])
  .superRefine((args, ctx) => {
    for (const p of checkExtraArgs(args)) ctx.addIssue({ code: 'custom', path: [p.index], message: p.message });
  });

/** An http(s) URL, parsed now (not at the first download). */
export const httpUrl = (fallback: string) =>
  z
    .string()
    .refine((u) => {
      try {
        const url = new URL(u);
        return (url.protocol === 'https:' || url.protocol === 'http:') && !/\s/.test(u);
      } catch {
        return false;
      }
    }, 'expected an http(s) URL such as https://openaipublic.blob.core.windows.net/encodings/')
    .default(fallback);
