// Follows the running container's log: the lines that mean the engine is dead, vLLM's warnings, its stats line.
import type { Event } from '../../core/model/events.js';
import { recogniseLoadLine } from '../../core/rules/load-phases.js';
import { bareLine, isFatalLine, statsLine, unknownEnv, type StatsLine } from '../../core/rules/log-lines.js';
import type { ContainerEngine } from '../../docker/engine-api.js';
import { LogLines } from '../../docker/log-stream.js';

/** Lines kept for the diagnosis of a fatal line: its root cause is printed above it. */
const CONTEXT_LINES = 400;

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
