// The GPU-memory check on real nvidia-smi answers (test/fixtures/nvidia-smi/SOURCES.md says where each comes from).
import { readFileSync } from 'node:fs';
import test from 'ava';
import {
  checkGpuMemory,
  parseMeminfo,
  selectGpus,
  tensorParallelOf,
  type MemoryInput,
} from '../../src/core/rules/gpu-memory.js';
import { parseApps, parseGpus, smiFailure, type SmiAnswer } from '../../src/gpu/nvidia-smi.js';

const FIX = new URL('../../../test/fixtures/nvidia-smi/', import.meta.url);
const read = (p: string) => readFileSync(new URL(p, FIX), 'utf8');
const ok = (gpu: string, apps?: string): SmiAnswer => ({
  kind: 'ok',
  gpus: parseGpus(read(gpu)),
  apps: apps ? parseApps(read(apps)) : [],
});
const input = (smi: SmiAnswer, over: Partial<MemoryInput> = {}): MemoryInput => ({
  smi,
  gpus: 'all',
  utilization: 0.85,
  tensorParallel: 1,
  ...over,
});

/** A GB10-sized /proc/meminfo: 119.7 GiB total. */
/** /proc/meminfo as a GB10 shows it (MemTotal 119.7 GiB), figures in GiB. */
const meminfo = (freeGiB: number, availGiB: number, cachedGiB: number) =>
  `MemTotal:       125513240 kB\nMemFree:         ${Math.round(freeGiB * 1048576)} kB\nMemAvailable:   ` +
  `${Math.round(availGiB * 1048576)} kB\nBuffers:          120000 kB\nCached:         ` +
  `${Math.round(cachedGiB * 1048576)} kB\nShmem:            300000 kB\n`;

test('H100 idle: parsed by header, units stripped', (t) => {
  t.deepEqual(parseGpus(read('h100/idle-gpu.txt')), [
    {
      index: 0,
      uuid: 'GPU-8650bab8-0c43-2b05-3362-e15b1e40d499',
      name: 'NVIDIA H100 80GB HBM3',
      totalMiB: 81559,
      usedMiB: 0,
      freeMiB: 81079,
    },
  ]);
  t.deepEqual(parseApps(read('h100/idle-apps.txt')), []);
});

test('H100 idle: 0.85 fits', (t) => {
  const v = checkGpuMemory(input(ok('h100/idle-gpu.txt', 'h100/idle-apps.txt')));
  t.is(v.status, 'ok');
  t.regex(v.detail, /^79\.2 of 79\.6 GiB free on GPU 0 \(NVIDIA H100 80GB HBM3\), 67\.7 GiB needed/);
});

test('H100, two processes holding 42 GiB: short, the holders named, biggest first, a utilization that fits', (t) => {
  const smi = ok('h100/held-gpu.txt', 'h100/held-apps.txt');
  const v = checkGpuMemory(input(smi));
  t.is(v.status, 'short');
  if (v.status !== 'short') return;
  t.is(
    v.detail,
    '36.0 of 79.6 GiB free on GPU 0 (NVIDIA H100 80GB HBM3), 67.7 GiB needed (gpuMemoryUtilization 0.85), held by ' +
      'python3 (pid 438, 30.6 GiB), python3 (pid 439, 12.6 GiB)',
  );
  t.regex(v.remedy, /gpuMemoryUtilization to 0\.44/);
  t.false(v.unified);
  t.is(checkGpuMemory(input(smi, { utilization: 0.44 })).status, 'ok', 'the suggested value passes');
});

test('the same answers without the header (noheader) parse by the query order', (t) => {
  const noHeader = read('h100/held-gpu.txt').split('\n').slice(1).join('\n').replace(/ MiB/g, '');
  t.is(parseGpus(noHeader)[0]?.freeMiB, 36837);
});

test('GB10 (unified memory): nvidia-smi says [N/A]; /proc/meminfo decides, and the page cache is named', (t) => {
  const rows = parseGpus(read('gb10/gpu-index-name-total-free.txt'));
  t.deepEqual(rows, [{ index: 0, name: 'NVIDIA GB10' }]);
  t.deepEqual(parseGpus(read('gb10/gpu-memory-util-power.txt')), [{}], 'all three memory fields [N/A]');
  const smi: SmiAnswer = { kind: 'ok', gpus: rows, apps: [{ pid: 400721, name: 'VLLM::EngineCore', usedMiB: 96581 }] };
  // Measured on a GB10 after writing a 60 GiB file: CUDA's free 41.5 GiB = MemFree; MemAvailable 115.6 GiB.
  const gb10 = meminfo(41.5, 115.6, 74);
  const short = checkGpuMemory(input(smi, { meminfo: gb10 }));
  t.is(short.status, 'short', 'vLLM would refuse: it reads MemFree');
  // The same host with MemFree at what MemAvailable said: it fits, so the verdict above is MemFree's.
  const asAvailable = checkGpuMemory(input(smi, { meminfo: meminfo(115.6, 115.6, 74) }));
  t.is(asAvailable.status, 'ok', 'MemAvailable would have said it fits');
  t.regex(asAvailable.detail, /^115\.6 of 119\.7 GiB free \(unified memory: MemFree/);
  if (short.status !== 'short') return;
  t.true(short.unified);
  t.regex(
    short.detail,
    /^41\.5 of 119\.7 GiB free \(unified memory: MemFree, what CUDA and vLLM see\), 101\.7 GiB needed/,
  );
  t.regex(short.detail, /60\.2 GiB of the 60\.2 GiB short is page cache \(MemAvailable 115\.6 GiB counts it as free\)/);
  t.regex(short.detail, /held by VLLM::EngineCore \(pid 400721, 94\.3 GiB\)/);
  t.is(Math.round((short.cacheGiB ?? 0) * 10) / 10, 60.2);
  t.regex(short.remedy, /evict the page cache \(gpu\.reclaimPageCache: auto.*echo 1 > \/proc\/sys\/vm\/drop_caches/);
  const little = checkGpuMemory(input(smi, { meminfo: meminfo(41.5, 45, 2) }));
  t.regex(little.status === 'short' ? little.detail : '', /1\.8 GiB of the 60\.2 GiB short is page cache/);
  t.is(checkGpuMemory(input(smi, { meminfo: meminfo(110, 112, 2) })).status, 'ok');
  t.is(checkGpuMemory(input(smi)).status, 'unknown', 'no meminfo: cannot tell, not a failure');
});

test('GB10 plain table: the memory column says Not Supported (what the CSV [N/A] stands for)', (t) => {
  t.regex(read('gb10/plain-vllm.txt'), /\| Not Supported +\|/);
});

test('eight H200s: gpus all uses GPU 0; a count, ids and tensor parallelism pick others', (t) => {
  const smi = ok('h200x8/gpu.txt', 'h200x8/apps.txt');
  if (smi.kind !== 'ok') return;
  t.is(smi.gpus.length, 8);
  t.is(smi.gpus[7]?.freeMiB, 143771 - 58071, 'no memory.free column: total minus used');
  const all = checkGpuMemory(input(smi, { utilization: 0.3 }));
  t.is(all.status, 'short', 'GPU 0 is nearly full');
  t.regex(all.detail, /on GPU 0.*held by \/usr\/local\/bin\/python3\.10 \(pid 1328667, 127\.0 GiB\)$/);
  const seven = checkGpuMemory(input(smi, { gpus: ['GPU-28780eb0'], utilization: 0.5 }));
  t.is(seven.status, 'ok', 'GPU 7 by uuid prefix has 83 GiB free');
  const tp = checkGpuMemory(input(smi, { gpus: [7, 2], utilization: 0.5, tensorParallel: 2 }));
  t.is(tp.status, 'short', 'the second GPU of a tensor-parallel pair counts too');
  t.regex(tp.detail, /on GPU 2, .*held by python3 \(pid 1425258/);
  const missing = checkGpuMemory(input(smi, { gpus: [9] }));
  t.deepEqual([missing.status, missing.detail], ['unknown', 'nvidia-smi lists no GPU 9 (container.gpus)']);
  t.deepEqual(parseApps(read('h200x8/apps.txt')).at(-1), {
    gpuUuid: 'GPU-28780eb0-24d5-1f13-59b8-ae5c23617a72',
    pid: 1758887,
    name: '[Not Found]',
    usedMiB: 58060,
  });
});

test('two RTX 5090: a count of 2 with tensor parallelism 2 checks both', (t) => {
  const smi = ok('rtx5090x2/gpu.txt');
  t.is(checkGpuMemory(input(smi, { gpus: 2, tensorParallel: 2, utilization: 0.85 })).status, 'ok');
  t.is(checkGpuMemory(input(smi, { gpus: 2, tensorParallel: 2, utilization: 0.9 })).status, 'short');
});

const errorRows: Array<[string, number]> = [
  ['no-driver', 9],
  ['version-mismatch', 18],
  ['nvml-missing', 12],
  ['blocked', 17],
  ['no-devices', 6],
];
for (const [name, rc] of errorRows) {
  test(`nvidia-smi failing (${name}, exit ${rc}): a warning with its own words, never a block`, (t) => {
    const text = read(`errors/${name}.txt`);
    t.is(Number(read(`errors/${name}.rc`)), rc);
    const v = checkGpuMemory(input(smiFailure(rc, text, '')));
    t.is(v.status, 'unknown');
    t.true(v.detail.includes(text.split('\n')[0]!), v.detail);
  });
}

test('bad field (recorded): exit 2 and the message', (t) => {
  const v = checkGpuMemory(input(smiFailure(Number(read('h100/bad-field.rc')), read('h100/bad-field.txt'), '')));
  t.is(v.detail, 'nvidia-smi failed (exit 2): Field "memory.nonsense" is not a valid field to query.');
});

test('no nvidia-smi, or no GPU wanted', (t) => {
  t.is(checkGpuMemory(input({ kind: 'missing' })).status, 'unknown');
  t.is(checkGpuMemory(input({ kind: 'missing' }, { gpus: 'none' })).status, 'ok');
});

test('tensor parallel size from extraArgs, every spelling', (t) => {
  const rows: Array<[string[], number]> = [
    [[], 1],
    [['--tensor-parallel-size', '4'], 4],
    [['--tensor-parallel-size=2'], 2],
    [['-tp', '8'], 8],
    [['-tp=2'], 2],
    [['--max-num-seqs', '4'], 1],
  ];
  for (const [args, n] of rows) t.is(tensorParallelOf(args), n, args.join(' '));
});

test('selectGpus and meminfo parsing', (t) => {
  const rows = [{ index: 1 }, { index: 0, uuid: 'GPU-a' }];
  t.deepEqual(selectGpus(rows, 'all'), [{ index: 0, uuid: 'GPU-a' }, { index: 1 }]);
  t.deepEqual(selectGpus(rows, 1), [{ index: 0, uuid: 'GPU-a' }]);
  t.deepEqual(selectGpus(rows, ['1']), [{ index: 1 }]);
  t.deepEqual(parseMeminfo('MemTotal: 100 kB\nMemAvailable: 40 kB\nCached: 7 kB\n'), {
    totalKiB: 100,
    availableKiB: 40,
    cachedKiB: 7,
  });
});
