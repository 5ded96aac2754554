// Reads nvidia-smi's CSV answers: the GPUs with their memory, and the processes holding it.
import { execFile } from 'node:child_process';
import type { AppRow, GpuRow, SmiAnswer } from '../core/rules/gpu-memory.js';

export type { AppRow, GpuRow, SmiAnswer };

/** The two queries the check runs (with a header, so columns are found by name). */
export const GPU_QUERY = ['--query-gpu=index,uuid,name,memory.total,memory.used,memory.free', '--format=csv'];
export const APPS_QUERY = ['--query-compute-apps=gpu_uuid,pid,process_name,used_memory', '--format=csv'];

/** `[N/A]`, `N/A`, `[Not Supported]`, `Not Supported`, empty: no value. */
export function missing(v: string): boolean {
  return v === '' || /^\[?(N\/A|Not Supported|Unknown Error|Insufficient Permissions)\]?$/i.test(v);
}

function mib(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const t = v.trim();
  if (missing(t)) return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*(MiB)?$/.exec(t);
  return m ? Number(m[1]) : undefined;
}

/** `memory.total [MiB]` -> `memory.total`; `used_gpu_memory` is what nvidia-smi names used_memory. */
function columnName(h: string): string {
  const n = h.trim().replace(/\s*\[[^\]]*\]$/, '');
  return n === 'used_gpu_memory' ? 'used_memory' : n;
}

/**
 * CSV rows as records keyed by column. With a header line the columns are named by it; without
 * one (`noheader`) they are taken to be `fields`, in order. Names never contain commas in
 * nvidia-smi's output, so a plain split is right.
 */
export function parseCsv(text: string, fields: readonly string[]): Array<Record<string, string>> {
  const lines = text
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.trim() !== '');
  if (lines.length === 0) return [];
  const first = (lines[0] ?? '').split(',').map(columnName);
  const hasHeader = first.some((c) => fields.includes(c));
  const names = hasHeader ? first : [...fields];
  return lines.slice(hasHeader ? 1 : 0).map((line) => {
    const cells = line.split(',').map((c) => c.trim());
    // A process name may contain commas in theory: extra cells belong to the name column.
    if (cells.length > names.length && names.includes('process_name')) {
      const at = names.indexOf('process_name');
      const extra = cells.length - names.length;
      cells.splice(at, extra + 1, cells.slice(at, at + extra + 1).join(','));
    }
    return Object.fromEntries(names.map((n, i) => [n, cells[i] ?? '']));
  });
}

const GPU_FIELDS = ['index', 'uuid', 'name', 'memory.total', 'memory.used', 'memory.free'];
const APP_FIELDS = ['gpu_uuid', 'pid', 'process_name', 'used_memory'];

export function parseGpus(text: string): GpuRow[] {
  return parseCsv(text, GPU_FIELDS).map((r) => {
    const row: GpuRow = {};
    const index = r['index'];
    if (index !== undefined && /^\d+$/.test(index)) row.index = Number(index);
    if (r['uuid'] && !missing(r['uuid'])) row.uuid = r['uuid'];
    if (r['name'] && !missing(r['name'])) row.name = r['name'];
    const total = mib(r['memory.total']);
    const used = mib(r['memory.used']);
    const free = mib(r['memory.free']);
    if (total !== undefined) row.totalMiB = total;
    if (used !== undefined) row.usedMiB = used;
    if (free !== undefined) row.freeMiB = free;
    // A query without memory.free: total minus used (a little more than nvidia-smi's free, which leaves out
    // reserved memory).
    else if (total !== undefined && used !== undefined && r['memory.free'] === undefined)
      row.freeMiB = Math.max(0, total - used);
    return row;
  });
}

export function parseApps(text: string): AppRow[] {
  const out: AppRow[] = [];
  for (const r of parseCsv(text, APP_FIELDS)) {
    const pid = Number(r['pid']);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    const app: AppRow = { pid, name: r['process_name'] || '?' };
    if (r['gpu_uuid'] && !missing(r['gpu_uuid'])) app.gpuUuid = r['gpu_uuid'];
    const used = mib(r['used_memory']);
    if (used !== undefined) app.usedMiB = used;
    out.push(app);
  }
  return out;
}

/** nvidia-smi's own message, first line, for a failure (it writes errors to stdout). */
export function smiFailure(code: number | null, stdout: string, stderr: string): SmiAnswer {
  const message =
    `${stdout}\n${stderr}`
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l) ?? `exit ${code}`;
  return { kind: 'failed', code, message };
}

export function run(
  bin: string,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string; enoent: boolean }> {
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: timeoutMs, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
      const enoent = e?.code === 'ENOENT';
      const code = e ? (typeof e.code === 'number' ? e.code : null) : 0;
      resolve({
        code,
        stdout: String(stdout),
        stderr: String(stderr) || (e && !enoent && code === null ? e.message : ''),
        enoent,
      });
    });
  });
}

/** Asks nvidia-smi (`bin`, default from PATH) for the GPUs and the processes on them. */
export async function querySmi(bin = 'nvidia-smi', timeoutMs = 10_000): Promise<SmiAnswer> {
  const g = await run(bin, GPU_QUERY, timeoutMs);
  if (g.enoent) return { kind: 'missing' };
  if (g.code !== 0) return smiFailure(g.code, g.stdout, g.stderr);
  const a = await run(bin, APPS_QUERY, timeoutMs);
  // Without the process list the check still works; it only cannot name who holds the memory.
  return { kind: 'ok', gpus: parseGpus(g.stdout), apps: a.code === 0 ? parseApps(a.stdout) : [] };
}
