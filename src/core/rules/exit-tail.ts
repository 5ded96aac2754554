// Which log lines explain an exit: the container's own words, not the access log our probes fill.
import { capLine } from './log-lines.js';

/** How many lines a restart line and the state record keep. */
export const TAIL_LINES = 20;
/**
 * How many lines a diagnosis reads: the root cause is often far above the last line (an engine
 * core's traceback, then each worker's shutdown, then the API server's).
 */
export const DIAGNOSIS_LINES = 400;
/** How many lines to read so that DIAGNOSIS_LINES remain after the probes' access lines are dropped. */
export const TAIL_READ = DIAGNOSIS_LINES + 200;
/**
 * How many characters of those lines are kept at most (each line cut to MAX_LINE first): the log is
 * the container's, and Docker answers TAIL_READ lines of any length.
 */
export const TAIL_CHARS = 512 * 1024;

/** uvicorn's access log: `INFO:     172.17.0.1:33406 - "GET /health HTTP/1.1" 200 OK`. */
const ACCESS_LINE = /INFO:\s{1,16}\S{1,128} - "(?:GET|POST|HEAD) \S{1,2048} HTTP\/[\d.]{1,4}" \d{3}/;

/**
 * The last `n` lines of a log's lines that are not blank and not access lines, trailing blanks
 * trimmed, each cut to MAX_LINE, all of them within TAIL_CHARS.
 */
export function exitTail(lines: readonly string[], n = TAIL_LINES): string[] {
  const kept = lines
    .slice(-TAIL_READ)
    .map((l) => capLine(l).trimEnd())
    .filter((l) => l && !ACCESS_LINE.test(l))
    .slice(-n);
  let size = 0;
  let from = kept.length;
  while (from > 0 && size + (kept[from - 1]?.length ?? 0) <= TAIL_CHARS) size += kept[--from]?.length ?? 0;
  return kept.slice(from);
}
