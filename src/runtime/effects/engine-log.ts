// Follows the running container's log: the lines that mean the engine is dead, vLLM's warnings, its stats line.
import type { Event } from '../../core/model/events.js';
import { recogniseLoadLine } from '../../core/rules/load-phases.js';
import { bareLine, isFatalLine, statsLine, unknownEnv, type StatsLine } from '../../core/rules/log-lines.js';
import type { ContainerEngine } from '../../docker/engine-api.js';

/** Lines kept for the diagnosis of a fatal line: its root cause is printed above it. */
const CONTEXT_LINES = 400;
/** A line longer than this is cut (a runaway line must not grow the buffer without end). */
const MAX_LINE = 16 * 1024;

/**
 * Splits Docker's log stream into lines: multiplexed frames (8-byte headers, no TTY) or raw bytes
 * (a TTY), either of them cut anywhere by the transport.
 */
export class LogLines {
  private pending: Buffer = Buffer.alloc(0);
  private text = '';
  private raw: boolean | undefined;

  /**
   * `onPartial` hears the unfinished end of the stream after each chunk: a tqdm bar's first state has
   * no line end yet (nor will it, if the load hangs right there).
   */
  constructor(
    private readonly onLine: (line: string) => void,
    private readonly onPartial?: (text: string) => void,
  ) {}

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

  private addText(s: string): void {
    this.text += s;
    // tqdm redraws its bar with \r: each state of the bar is a line of its own (a progress step).
    const parts = this.text.split(/[\r\n]/);
    this.text = (parts.pop() ?? '').slice(-MAX_LINE);
    for (const p of parts) if (p) this.onLine(p.slice(-MAX_LINE));
    if (this.text && this.onPartial) this.onPartial(this.text);
  }
}

export interface LogWatchOptions {
  engine: ContainerEngine;
  id: string;
  epoch: number;
  sinceSec: number;
  /** Follow the output live (an attach: progress bars move) rather than Docker's log (whole lines). */
  live: boolean;
  dispatch: (ev: Event) => void;
  warn: (msg: string) => void;
  now: () => number;
}

/** One run's log, followed while it runs; `stop()` when the run ends. */
export class LogWatch {
  readonly id: string;
  readonly epoch: number;
  readonly live: boolean;
  /** vLLM's latest stats line and when it came (the engine probe's fallback where /metrics is not served). */
  stats: (StatsLine & { at: number }) | undefined;
  private readonly context: string[] = [];
  private readonly envSeen = new Set<string>();
  private stream: NodeJS.ReadableStream | undefined;
  private stopped = false;
  private fatal = false;

  constructor(private readonly o: LogWatchOptions) {
    this.id = o.id;
    this.epoch = o.epoch;
    this.live = o.live;
  }

  async start(): Promise<void> {
    try {
      const e = this.o.engine;
      const s = await (this.o.live ? e.attachOutput(this.id, this.o.sinceSec) : e.followLogs(this.id, this.o.sinceSec));
      if (this.stopped) return destroy(s);
      this.stream = s;
      const lines = new LogLines(
        (l) => this.line(l),
        (p) => this.loadLine(bareLine(p)),
      );
      s.on('data', (c: Buffer | string) => lines.push(typeof c === 'string' ? Buffer.from(c) : c));
      s.on('error', () => undefined);
    } catch (err) {
      // The probes still watch the model; only the early warning is lost.
      this.o.warn(`cannot follow the log of ${this.id.slice(0, 12)}: ${(err as Error).message}`);
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.stream) destroy(this.stream);
  }

  private lastLoad = '';

  /** A start-up line the phase table knows; the same text twice (a partial line, then whole) is said once. */
  private loadLine(line: string): void {
    if (!line || line === this.lastLoad) return;
    const load = recogniseLoadLine(line);
    if (!load) return;
    this.lastLoad = line;
    const { took: _t, ...said } = load;
    this.o.dispatch({ type: 'loadLine', epoch: this.epoch, line, ...said });
  }

  private line(raw: string): void {
    const line = bareLine(raw);
    if (!line) return;
    const st = statsLine(line);
    if (st) {
      this.stats = { ...st, at: this.o.now() };
      return;
    }
    this.loadLine(line);
    const env = unknownEnv(line);
    if (env && !this.envSeen.has(env)) {
      this.envSeen.add(env);
      this.o.dispatch({ type: 'engineLog', epoch: this.epoch, kind: 'unknown-env', line: env });
    }
    if (isFatalLine(line) && !this.fatal) {
      // One report per run: the lines that follow (other workers, the shutdown) say the same.
      this.fatal = true;
      this.o.dispatch({ type: 'engineLog', epoch: this.epoch, kind: 'fatal', line, context: [...this.context] });
    }
    this.context.push(line);
    if (this.context.length > CONTEXT_LINES) this.context.shift();
  }
}

function destroy(s: NodeJS.ReadableStream): void {
  (s as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
}
