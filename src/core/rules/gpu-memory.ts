// Predicts vLLM's start-up memory check before minutes of loading: is gpuMemoryUtilization x total free?
import { fittingUtilization } from './fit.js';

/** nvidia-smi's answers, as the adapter (gpu/nvidia-smi.ts) parses them. */
export interface GpuRow {
  index?: number;
  uuid?: string;
  name?: string;
  /** MiB; undefined where nvidia-smi says [N/A] or Not Supported (unified memory: the GB10). */
  totalMiB?: number;
  usedMiB?: number;
  freeMiB?: number;
}

export interface AppRow {
  gpuUuid?: string;
  pid: number;
  name: string;
  usedMiB?: number;
}

export type SmiAnswer =
  | { kind: 'ok'; gpus: GpuRow[]; apps: AppRow[] }
  /** No nvidia-smi on this host. */
  | { kind: 'missing' }
  /** nvidia-smi ran and failed (no driver, a version mismatch, ...): its own words. */
  | { kind: 'failed'; code: number | null; message: string };

/** The GPUs the container gets, as Docker's --gpus names them (container.gpus). */
export type Gpus = 'all' | 'none' | number | ReadonlyArray<number | string>;

export interface MemoryInput {
  smi: SmiAnswer;
  /** /proc/meminfo's text: the truth where GPU memory is the system's (unified memory, the GB10). */
  meminfo?: string;
  gpus: Gpus;
  utilization: number;
  /** GPUs vLLM uses: --tensor-parallel-size (1 unless model.extraArgs says otherwise). */
  tensorParallel: number;
}

export type MemoryVerdict =
  | { status: 'ok'; detail: string; reclaimed?: string }
  | {
      status: 'short';
      detail: string;
      remedy: string;
      freeGiB: number;
      totalGiB: number;
      needGiB: number;
      unified: boolean;
      /** Unified memory: how much of the shortfall is page cache the kernel would give back. */
      cacheGiB?: number;
      /** What was evicted before this verdict, and what it gave. */
      reclaimed?: string;
    }
  /** Cannot tell (no nvidia-smi, it failed, ids not found): the check is skipped with a warning. */
  | { status: 'unknown'; detail: string };

const gib = (mib: number) => mib / 1024;
const f1 = (n: number) => (Math.round(n * 10) / 10).toFixed(1);

/** The --tensor-parallel-size in extraArgs (`-tp N`, `--tensor-parallel-size N` or `=N`), else 1. */
export function tensorParallelOf(extraArgs: readonly string[]): number {
  for (let i = 0; i < extraArgs.length; i++) {
    const a = extraArgs[i] ?? '';
    const eq = /^(?:--tensor-parallel-size|-tp)=(\d+)$/.exec(a);
    if (eq) return Math.max(1, Number(eq[1]));
    if ((a === '--tensor-parallel-size' || a === '-tp') && /^\d+$/.test(extraArgs[i + 1] ?? ''))
      return Math.max(1, Number(extraArgs[i + 1]));
  }
  return 1;
}

/** The GPUs the container gets, in the order CUDA numbers them inside it. */
export function selectGpus<T extends GpuRow>(rows: readonly T[], gpus: Gpus): T[] | { missing: string[] } {
  const sorted = [...rows].sort((a, b) => (a.index ?? 0) - (b.index ?? 0));
  if (gpus === 'all') return sorted;
  if (gpus === 'none') return [];
  if (typeof gpus === 'number') return sorted.slice(0, gpus);
  const picked: T[] = [];
  const missing: string[] = [];
  for (const id of gpus) {
    const s = String(id);
    const row = sorted.find((r) =>
      /^\d+$/.test(s) ? r.index === Number(s) : r.uuid !== undefined && r.uuid.startsWith(s),
    );
    if (row) picked.push(row);
    else missing.push(s);
  }
  return missing.length ? { missing } : picked;
}

export interface Meminfo {
  totalKiB?: number;
  freeKiB?: number;
  availableKiB?: number;
  cachedKiB?: number;
  buffersKiB?: number;
  shmemKiB?: number;
}

export function parseMeminfo(text: string): Meminfo {
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const out: Meminfo = {};
  const keys: Array<[keyof Meminfo, string]> = [
    ['totalKiB', 'MemTotal'],
    ['freeKiB', 'MemFree'],
    ['availableKiB', 'MemAvailable'],
    ['cachedKiB', 'Cached'],
    ['buffersKiB', 'Buffers'],
    ['shmemKiB', 'Shmem'],
  ];
  for (const [k, name] of keys) {
    const v = field(name);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** The page cache the kernel could give back: Cached and Buffers, less shared memory (which it cannot drop). */
export function reclaimableKiB(m: Meminfo): number {
  return Math.max(0, (m.cachedKiB ?? 0) + (m.buffersKiB ?? 0) - (m.shmemKiB ?? 0));
}

function holders(apps: readonly AppRow[], gpu: GpuRow | undefined): string {
  const mine = apps.filter((a) => !gpu?.uuid || !a.gpuUuid || a.gpuUuid === gpu.uuid);
  if (mine.length === 0) return '';
  const byUse = [...mine].sort((a, b) => (b.usedMiB ?? 0) - (a.usedMiB ?? 0));
  const shown = byUse
    .slice(0, 3)
    .map((a) => `${a.name} (pid ${a.pid}${a.usedMiB !== undefined ? `, ${f1(gib(a.usedMiB))} GiB` : ''})`);
  const more = byUse.length > 3 ? ` and ${byUse.length - 3} more` : '';
  return `, held by ${shown.join(', ')}${more}`;
}

function gpuName(g: GpuRow): string {
  return `GPU ${g.index ?? '?'}${g.name ? ` (${g.name})` : ''}`;
}

export function checkGpuMemory(inp: MemoryInput): MemoryVerdict {
  if (inp.gpus === 'none') return { status: 'ok', detail: 'no GPU requested (container.gpus: none)' };
  const { smi } = inp;
  if (smi.kind === 'missing')
    return { status: 'unknown', detail: 'nvidia-smi not found on this host: GPU memory not checked before start' };
  if (smi.kind === 'failed')
    return {
      status: 'unknown',
      detail: `nvidia-smi failed (${smi.code === null ? 'no exit code' : `exit ${smi.code}`}): ${smi.message}`,
    };
  const sel = selectGpus(smi.gpus, inp.gpus);
  if (!Array.isArray(sel))
    return { status: 'unknown', detail: `nvidia-smi lists no GPU ${sel.missing.join(', ')} (container.gpus)` };
  if (sel.length === 0) return { status: 'unknown', detail: 'nvidia-smi lists no GPU' };
  const used = sel.slice(0, inp.tensorParallel);
  const oks: string[] = [];
  for (const g of used) {
    const v = g.totalMiB !== undefined && g.freeMiB !== undefined ? discrete(g, inp) : unified(g, inp);
    if (v.status !== 'ok') return v;
    oks.push(v.detail);
  }
  return { status: 'ok', detail: oks.join('; ') };
}

function discrete(g: GpuRow, inp: MemoryInput): MemoryVerdict {
  const total = gib(g.totalMiB ?? 0);
  const free = gib(g.freeMiB ?? 0);
  const need = total * inp.utilization;
  const nums =
    `${f1(free)} of ${f1(total)} GiB free on ${gpuName(g)}, ${f1(need)} GiB needed (gpuMemoryUtilization ` +
    `${inp.utilization})`;
  if (free >= need) return { status: 'ok', detail: nums };
  const fit = fittingUtilization(free, total);
  const smi = inp.smi.kind === 'ok' ? inp.smi.apps : [];
  return {
    status: 'short',
    detail: `${nums}${holders(smi, g)}`,
    remedy:
      `stop what holds the memory (nvidia-smi lists ` +
      `it)${fit !== undefined ? `, or set model.gpuMemoryUtilization to ${fit}` : ''}; the model starts as soon as ` +
      `enough is free`,
    freeGiB: free,
    totalGiB: total,
    needGiB: need,
    unified: false,
  };
}

/**
 * GPU memory is the system's (nvidia-smi: [N/A]). CUDA's "free" there, which vLLM's start-up check
 * reads, is the kernel's MemFree: the page cache counts as used, though the kernel would give it
 * back (MemAvailable counts it as free, and so over-promises).
 */
function unified(g: GpuRow, inp: MemoryInput): MemoryVerdict {
  const m = parseMeminfo(inp.meminfo ?? '');
  if (m.totalKiB === undefined || m.freeKiB === undefined) {
    return {
      status: 'unknown',
      detail: `${gpuName(g)} reports no memory figures and /proc/meminfo could not be read: GPU memory not checked`,
    };
  }
  const total = m.totalKiB / 1048576;
  const free = m.freeKiB / 1048576;
  const need = total * inp.utilization;
  const nums =
    `${f1(free)} of ${f1(total)} GiB free (unified memory: MemFree, what CUDA and vLLM see), ${f1(need)} GiB ` +
    `needed (gpuMemoryUtilization ${inp.utilization})`;
  if (free >= need) return { status: 'ok', detail: nums };
  const short = need - free;
  const cache = Math.min(short, reclaimableKiB(m) / 1048576);
  const fit = fittingUtilization(free, total);
  const smi = inp.smi.kind === 'ok' ? inp.smi.apps : [];
  const avail =
    m.availableKiB !== undefined ? ` (MemAvailable ${f1(m.availableKiB / 1048576)} GiB counts it as free)` : '';
  const inCache = cache >= 0.1 ? `; ${f1(cache)} GiB of the ${f1(short)} GiB short is page cache${avail}` : '';
  const evict =
    cache >= 0.1
      ? "evict the page cache (gpu.reclaimPageCache: auto evicts the model files' pages before each start; all of " +
        'it: `sync; echo 1 > /proc/sys/vm/drop_caches` as root); '
      : '';
  return {
    status: 'short',
    detail: `${nums}${inCache}${holders(smi, g)}`,
    remedy:
      `${evict}stop other large ` +
      `processes${fit !== undefined ? `, or set model.gpuMemoryUtilization to ${fit}` : ''}; the model starts as ` +
      `soon as enough is free`,
    freeGiB: free,
    totalGiB: total,
    needGiB: need,
    unified: true,
    cacheGiB: cache,
  };
}
