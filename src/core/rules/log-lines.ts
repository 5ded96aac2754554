// vLLM's log lines as users' logs carry them, reduced to what vLLM said: prefixes and colour codes off.
//
// Every line here is the container's output, so the outside's: a line is cut to MAX_LINE before any
// pattern reads it, and no pattern has an unbounded part between literals (a 2 MiB line once took a
// quadratic pattern 169 s, past the watchdog). test/unit/hostile.test.ts times each one.

/** The longest line a pattern reads; a longer one is cut by `capLine`. */
export const MAX_LINE = 4096;
/** How much of a cut line's end is kept. */
const LINE_END = 1024;
const CUT = ' [...] ';

/**
 * A line of at most MAX_LINE characters. The start is kept, most of it: Python's `Type: message`,
 * vLLM's prefixes and every phase line begin there; and the end, where a long message (a URL, a
 * list) ends with the words that explain it (`Invalid username or password.`). A cut line that grows
 * and is cut again keeps the same start and the newest end.
 */
export function capLine(line: string): string {
  if (line.length <= MAX_LINE) return line;
  return `${line.slice(0, MAX_LINE - LINE_END - CUT.length)}${CUT}${line.slice(-LINE_END)}`;
}

/** Colour codes, real (ESC [ ... m) or as pasted (^[[0;36m). */
// eslint-disable-next-line no-control-regex -- ESC is what a colour code begins with
const ANSI = /\x1b\[[0-9;?]{0,32}[A-Za-z]|\^\[\[[0-9;?]{0,32}[A-Za-z]/g;

/**
 * Prefixes, outermost first; each is taken off while one matches:
 * `docker logs -t`'s timestamp, a CI runner's `[2026-01-28T23:59:42Z]`, Compose's `vllm-1  | `,
 * vLLM's process tag `(EngineCore_DP0 pid=972)` / `(VllmWorker rank=1 pid=2445156)`, and its level,
 * date and source `ERROR 06-30 13:53:19 [core.py:515]` (older: `ERROR 02-07 11:28:26 engine.py:389]`).
 */
const PREFIXES: readonly RegExp[] = [
  /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)\s/,
  /^\[\d{4}-\d\d-\d\dT[^\]\s]{0,40}\]\s{0,8}/,
  /^[\w.-]{1,128}\s{1,64}\|\s?/,
  /^\([\w.-]{1,128}(?: rank=\d{1,6})? pid=\d{1,10}\)\s{0,8}/,
  // eslint-disable-next-line max-len -- one pattern, so that the hostile-input suite times it as it is used
  /^(?:DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)\s{1,8}\d\d-\d\d\s{1,8}\d\d:\d\d:\d\d(?:\.\d{1,9})?\s{1,8}\[?[\w./-]{1,256}:\d{1,6}\]\s?/,
];
/** More prefixes than a real line has (the five kinds above, each at most once or twice). */
const MAX_PREFIXES = 8;

/** One line as vLLM (or Python, or Docker) wrote it: no colour codes, no prefixes, no trailing blanks. */
export function bareLine(line: string): string {
  let s = capLine(line).replace(ANSI, '').replace(/\r$/, '');
  for (let changed = true, n = 0; changed && n < MAX_PREFIXES; n++) {
    changed = false;
    for (const p of PREFIXES) {
      const m = p.exec(s);
      if (m && m[0].length > 0) {
        s = s.slice(m[0].length);
        changed = true;
      }
    }
  }
  return s.trimEnd();
}

/** A log line quoted as evidence (status line, journal, diagnosis): trimmed, at most 240 characters. */
export function quoteLine(line: string): string {
  const t = line.trim();
  return t.length > 240 ? `${t.slice(0, 237)}...` : t;
}

/** vLLM's periodic engine statistics, from the log (where /metrics is not served). */
export interface StatsLine {
  running: number;
  waiting: number;
  /** tokens/s over vLLM's last interval (10 s). */
  generationRate: number;
  /** 0..1 */
  kvCache?: number;
}

/**
 * `Engine 000: Avg prompt throughput: 0.0 tokens/s, Avg generation throughput: 41.3 tokens/s, Running: 1 reqs,
 * Waiting: 0 reqs, GPU KV cache usage: 0.4%, ...` (V1) or `Avg prompt throughput: ..., Running: 1 reqs,
 * Swapped: 0 reqs, Pending: 0 reqs, GPU KV cache usage: 0.2%, ...` (V0, where Pending is the queue).
 */
const STATS = new RegExp(
  /Avg generation throughput: ([\d.]{1,16}) tokens\/s, Running: (\d{1,9}) reqs?,(?: Swapped: \d{1,9} reqs?,)? /.source +
    /(?:Waiting|Pending): (\d{1,9}) reqs?(?:, GPU KV cache usage: ([\d.]{1,8})%)?/.source,
);

export function statsLine(line: string): StatsLine | undefined {
  const m = STATS.exec(line);
  if (!m) return undefined;
  const out: StatsLine = { generationRate: Number(m[1]), running: Number(m[2]), waiting: Number(m[3]) };
  if (m[4] !== undefined) out.kvCache = Number(m[4]) / 100;
  return out;
}

/**
 * Lines that mean the engine is dead now, whatever /health still answers: vLLM V1's
 * `EngineDeadError` (vllm/v1/engine/exceptions.py), its core's `EngineCore encountered an issue`,
 * V0's `AsyncEngineDeadError`, and the engine core's process dying under the API server.
 */
const FATAL = new RegExp(
  /\b(?:EngineDeadError|AsyncEngineDeadError)\b|EngineCore encountered an issue|EngineCore died unexpectedly/.source +
    /|Engine core proc \S{1,128} died unexpectedly/.source,
);

export const isFatalLine = (line: string): boolean => FATAL.test(line);

/** `Unknown vLLM environment variable detected: VLLM_FOO` (vllm/envs.py): the variable's name. */
const UNKNOWN_ENV = /Unknown vLLM environment variable detected: ([A-Za-z_]\w{0,127})/;

export function unknownEnv(line: string): string | undefined {
  return UNKNOWN_ENV.exec(line)?.[1];
}

/** Every pattern here, for the hostile-input suite (test/unit/hostile.test.ts) to time. */
export const LOG_PATTERNS: Readonly<Record<string, RegExp>> = {
  ANSI,
  ...Object.fromEntries(PREFIXES.map((p, i) => [`PREFIXES[${i}]`, p])),
  STATS,
  FATAL,
  UNKNOWN_ENV,
};
