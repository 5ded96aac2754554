// Follows the engine's event stream for one container name; reconnects with backoff when it breaks.
import { backoffDelay } from '../core/rules/backoff.js';
import { withDeadline } from '../util/deadline.js';
import type { ContainerEngine } from './engine-api.js';
import { onJsonLines } from './json-lines.js';

export interface EventHandlers {
  /**
   * The model's process ended by itself: a die with its exit code that no kill asked for, and
   * whether an oom event came before it. Taken from the event, without waiting for Docker's inspect.
   */
  exited(id: string, code: number, oom: boolean): void;
  /** Anything else happened to a container with our name (our stop, `docker restart`, a removal): look. */
  changed(id: string): void;
  /** The stream broke or could not be opened; called once per outage. */
  lost(message: string): void;
  /** The stream is open again after an outage: events may have been missed. */
  back(): void;
}

type Stream = NodeJS.ReadableStream & { destroy?: () => void };

/** How long a kill or oom event explains a die that follows it. */
const RECENT_EVENT_MS = 10_000;

/** Kill and oom events seen lately, by container: they tell how the next die came about. */
export class ExitCorrelation {
  private readonly recent = new Map<string, { at: number; killed: boolean; oom: boolean }>();

  constructor(private readonly now: () => number) {}

  /** An event: the exit it is (a die nobody asked for), or undefined when it only asks for a look. */
  see(action: string, id: string, attributes: Record<string, string>): { code: number; oom: boolean } | undefined {
    const now = this.now();
    for (const [k, v] of this.recent) if (now - v.at > RECENT_EVENT_MS) this.recent.delete(k);
    const before = this.recent.get(id) ?? { at: now, killed: false, oom: false };
    this.recent.set(id, { at: now, killed: before.killed || action === 'kill', oom: before.oom || action === 'oom' });
    const code = Number(attributes['exitCode']);
    if (action !== 'die' || attributes['exitCode'] === undefined || !Number.isInteger(code) || before.killed)
      return undefined;
    return { code, oom: before.oom };
  }
}

export interface EventDelays {
  /** The first reconnect delay; it doubles up to `max`. */
  first: number;
  max: number;
  /** How long opening the stream may take before it counts as an outage. */
  open: number;
}

export class ContainerEvents {
  private stream: Stream | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private down = false;
  private retry = 0;
  private readonly exits: ExitCorrelation;

  constructor(
    private readonly engine: Pick<ContainerEngine, 'events'>,
    private readonly name: string,
    private readonly on: EventHandlers,
    private readonly delays: EventDelays = { first: 500, max: 10_000, open: 15_000 },
    now: () => number = Date.now,
  ) {
    this.exits = new ExitCorrelation(now);
  }

  start(): void {
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.stream?.destroy?.();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    let stream: Stream;
    // An engine that is starting up can accept the connection and answer much later (or never):
    // opening the stream has its own deadline, after which it counts as an outage and is retried.
    const opening = this.engine.events(this.name) as Promise<Stream>;
    let late = false;
    opening.then(
      (st) => late && st.destroy?.(),
      () => undefined,
    );
    try {
      const what = `no answer to the event stream request within ${this.delays.open / 1000}s`;
      stream = await withDeadline(opening, this.delays.open, () => new Error(what));
    } catch (err) {
      late = true;
      this.broken((err as Error).message);
      return;
    }
    if (this.stopped) {
      stream.destroy?.();
      return;
    }
    this.follow(stream);
  }

  private follow(stream: Stream): void {
    this.stream = stream;
    this.retry = 0;
    if (this.down) {
      this.down = false;
      this.on.back();
    }
    onJsonLines(stream, (rec) => {
      const e = rec as {
        Action?: string;
        status?: string;
        id?: string;
        Actor?: { ID?: string; Attributes?: Record<string, string> };
      };
      // Name filters match by prefix on old engines: check the exact name.
      const actor = e.Actor;
      if (actor?.Attributes?.['name'] !== undefined && actor.Attributes['name'] !== this.name) return;
      const id = actor?.ID ?? e.id ?? '';
      const exit = this.exits.see(e.Action ?? e.status ?? '', id, actor?.Attributes ?? {});
      if (exit) this.on.exited(id, exit.code, exit.oom);
      else this.on.changed(id);
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
    this.retry++;
    const delay = backoffDelay(
      this.retry,
      { initialDelay: this.delays.first, multiplier: 2, maxDelay: this.delays.max, jitter: 0 },
      0.5,
    );
    this.timer = setTimeout(() => void this.connect(), delay);
  }
}
