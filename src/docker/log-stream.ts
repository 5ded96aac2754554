// Docker's log stream as lines: multiplexed frames or a TTY's raw bytes, split, each line cut to
// MAX_LINE. The bytes are the container's: nothing here grows with what it prints.
import { capLine } from '../core/rules/log-lines.js';

export interface LogLinesOptions {
  /**
   * `\r` ends a line too (default): tqdm redraws its bar with `\r` only, and each state of the bar is
   * a progress step. Off for an exit's tail, whose lines are quoted as Docker has them.
   */
  carriageReturn?: boolean;
}

/**
 * Splits Docker's log stream into lines: multiplexed frames (8-byte headers, no TTY) or raw bytes
 * (a TTY), either of them cut anywhere by the transport. Every line, and the unfinished end, is cut
 * to MAX_LINE (its start and its end kept: `capLine`).
 */
export class LogLines {
  private pending: Buffer = Buffer.alloc(0);
  private text = '';
  private raw: boolean | undefined;
  private readonly split: RegExp;

  /**
   * `onPartial` hears the unfinished end of the stream after each chunk: a tqdm bar's first state has
   * no line end yet (nor will it, if the load hangs right there).
   */
  constructor(
    private readonly onLine: (line: string) => void,
    private readonly onPartial?: (text: string) => void,
    o: LogLinesOptions = {},
  ) {
    this.split = o.carriageReturn === false ? /\n/ : /[\r\n]/;
  }

  push(chunk: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    // Which of the two it is shows in the first 8 bytes (a frame header: stream 0-2, then zeros).
    if (this.raw === undefined) {
      if (this.pending.length < 8) return;
      this.raw = !(this.pending[0]! <= 2 && this.pending[1] === 0 && this.pending[2] === 0 && this.pending[3] === 0);
    }
    if (this.raw) {
      this.addText(this.pending.toString('utf8'));
      this.pending = Buffer.alloc(0);
      return;
    }
    while (this.pending.length >= 8) {
      const len = this.pending.readUInt32BE(4);
      if (this.pending.length < 8 + len) break;
      this.addText(this.pending.subarray(8, 8 + len).toString('utf8'));
      this.pending = this.pending.subarray(8 + len);
    }
  }

  /** What is left unfinished: text after the last line end. */
  rest(): string {
    return this.text;
  }

  private addText(s: string): void {
    this.text += s;
    const parts = this.text.split(this.split);
    this.text = capLine(parts.pop() ?? '');
    for (const p of parts) if (p) this.onLine(capLine(p));
    if (this.text && this.onPartial) this.onPartial(this.text);
  }
}

/**
 * A log stream read to its end, keeping its last lines within `maxChars` (each cut to MAX_LINE):
 * the lines, each with its `\n`, then the unfinished end. Memory stays within that, whatever comes.
 */
export function readLogTail(stream: NodeJS.ReadableStream, maxChars: number): Promise<string> {
  const kept: string[] = [];
  let first = 0;
  let size = 0;
  const keep = (line: string) => {
    kept.push(line);
    size += line.length + 1;
    while (size > maxChars && first < kept.length - 1) size -= (kept[first++]?.length ?? 0) + 1;
    // Forget what was dropped now and then, not at every line.
    if (first > 1024 && first * 2 > kept.length) {
      kept.splice(0, first);
      first = 0;
    }
  };
  const lines = new LogLines(keep, undefined, { carriageReturn: false });
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      const out = kept.slice(first).map((l) => `${l}\n`);
      resolve(out.join('') + lines.rest());
    };
    stream.on('data', (c: Buffer | string) => lines.push(typeof c === 'string' ? Buffer.from(c) : c));
    stream.on('end', finish);
    stream.on('close', finish);
    stream.on('error', (err: Error) => {
      done = true;
      reject(err);
    });
  });
}
