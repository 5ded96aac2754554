// Follows the engine's event stream for one container name; reconnects with backoff when it breaks.
import type Docker from 'dockerode';
import { onJsonLines } from './json-lines.js';

export interface EventHandlers {
  /** Something happened to a container with our name (die, oom, destroy, stop, start, create). */
  change(action: string, id: string): void;
  /** The stream broke or could not be opened; called once per outage. */
  lost(message: string): void;
  /** The stream is open again after an outage: events may have been missed. */
  back(): void;
}

const ACTIONS = ['create', 'start', 'die', 'oom', 'stop', 'destroy', 'kill'];

export class ContainerEvents {
  private stream: NodeJS.ReadableStream | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private down = false;
  private retry = 0;

  constructor(
    private readonly docker: Docker,
    private readonly name: string,
    private readonly on: EventHandlers,
    private readonly delays = { first: 500, max: 10_000, open: 15_000 },
  ) {}

  start(): void {
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    const s = this.stream as (NodeJS.ReadableStream & { destroy?: () => void }) | undefined;
    s?.destroy?.();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    let stream: NodeJS.ReadableStream;
    // An engine that is starting up can accept the connection and answer much later (or never):
    // opening the stream has its own deadline, after which it counts as an outage and is retried.
    let late = false;
    let deadline: NodeJS.Timeout | undefined;
    try {
      const opening = this.docker.getEvents({ filters: { type: ['container'], container: [this.name], event: ACTIONS } }) as Promise<NodeJS.ReadableStream>;
      opening.then((st) => late && (st as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.(), () => undefined);
      stream = await Promise.race([
        opening,
        new Promise<never>((_r, reject) => {
          deadline = setTimeout(() => reject(new Error(`no answer to the event stream request within ${this.delays.open / 1000}s`)), this.delays.open);
        }),
      ]);
    } catch (err) {
      late = true;
      this.broken((err as Error).message);
      return;
    } finally {
      clearTimeout(deadline);
    }
    if (this.stopped) {
      (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
      return;
    }
    this.stream = stream;
    this.retry = 0;
    if (this.down) {
      this.down = false;
      this.on.back();
    }
    onJsonLines(stream, (rec) => {
      const e = rec as { Action?: string; status?: string; id?: string; Actor?: { ID?: string; Attributes?: Record<string, string> } };
      // Name filters match by prefix on old engines: check the exact name.
      const actor = e.Actor;
      if (actor?.Attributes?.['name'] !== undefined && actor.Attributes['name'] !== this.name) return;
      this.on.change(e.Action ?? e.status ?? '', actor?.ID ?? e.id ?? '');
    });
    let ended = false;
    const end = (why: string) => {
      if (ended) return;
      ended = true;
      this.stream = undefined;
      this.broken(why);
    };
    stream.on('end', () => end('the event stream ended'));
    stream.on('close', () => end('the event stream closed'));
    stream.on('error', (e: Error) => end(e.message));
  }

  private broken(message: string): void {
    if (this.stopped) return;
    if (!this.down) {
      this.down = true;
      this.on.lost(message);
    }
    const delay = Math.min(this.delays.max, this.delays.first * 2 ** this.retry);
    this.retry++;
    this.timer = setTimeout(() => void this.connect(), delay);
  }
}
