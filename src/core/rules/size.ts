// Sizes as operators write them (`8MiB`, `4GiB`, `512KiB`, `22097MiB`, or plain bytes), held as bytes.

const UNIT: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 };
const SIZE = /^(\d+(?:\.\d+)?) ?(B|KiB|MiB|GiB|TiB)$/;

/** Parses a size; undefined when the text is not one. */
export function parseSize(text: string): number | undefined {
  const m = SIZE.exec(text.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * (UNIT[m[2] as string] ?? 1));
}

/** The shortest exact form where there is one, else one decimal: 8388608 -> `8MiB`, 1536 -> `1.5KiB`. */
export function formatSize(bytes: number): string {
  for (const u of ['TiB', 'GiB', 'MiB', 'KiB'] as const) {
    const n = bytes / (UNIT[u] ?? 1);
    if (n >= 1) return `${Number.isInteger(n) ? n : n.toFixed(1)}${u}`;
  }
  return `${bytes}B`;
}
