// Runs the state machine against the world: Docker, probes, timers, the state file, the log.
import type { ContainerSpec } from '../container/spec.js';
import type { Engine } from '../docker/engine.js';
import { ensureContainer } from '../docker/ensure.js';
import { EngineUnreachable, ImageMissing } from '../docker/errors.js';
import { ContainerEvents } from '../docker/events.js';
import { probeHealth, probeModels, type ProbeResult } from '../health/probe.js';
import type { Logger } from '../log/logger.js';
import type { StateStore } from '../state/store.js';
import { initialState, step, wakeAt, type Action, type Event, type ProbeKind, type Seen, type Settings, type State } from '../supervisor/machine.js';
import { statusLine } from '../supervisor/status.js';

/** What a config file turns into; replaced as a whole on reload. */
export interface Desired {
  spec: ContainerSpec;
  token: string | undefined;
  settings: Settings;
  probeHost: string;
}

export interface SupervisorDeps extends Desired {
  engine: Engine;
  log: Logger;
  store: StateStore | undefined;
  /** Told the status line whenever it changes (sd_notify, D-Bus in later layers). */
  onStatus?: (line: string, state: State) => void;
  now?: () => number;
  random?: () => number;
}

const TAIL_LINES = 20;
const ACCESS_SLACK = 200;
/** uvicorn's access log: `INFO:     172.17.0.1:33406 - "GET /health HTTP/1.1" 200 OK`. */
const ACCESS_LINE = /INFO:\s+\S+ - "(?:GET|POST|HEAD) \S+ HTTP\/[\d.]+" \d{3}/;

export class Supervisor {
  state: State;
  private timer: NodeJS.Timeout | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  /** Container operations run one at a time, in order; events that need a look at Docker queue here too. */
  private ops: Promise<void> = Promise.resolve();
  private events: ContainerEvents;
  private lastStatus = '';
  private exited = false;
  private resolveDone: (code: number) => void = () => {};
  readonly done: Promise<number>;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(private readonly d: SupervisorDeps) {
    this.now = d.now ?? Date.now;
    this.random = d.random ?? Math.random;
    this.state = initialState(this.now());
    this.done = new Promise((r) => (this.resolveDone = r));
    this.events = this.watch(d.spec.name);
  }

  private watch(name: string): ContainerEvents {
    return new ContainerEvents(this.d.engine.docker, name, {
      change: () => this.op(() => this.look()),
      lost: (message) => this.dispatch({ type: 'engineLost', message }),
      back: () => this.dispatch({ type: 'engineBack' }),
    });
  }

  /**
   * A new config, already loaded: `undefined` desired means it was rejected (`error` says where).
   * Applied after any container operation under way; the spec hash decides whether the
   * container must be recreated, everything else applies in place.
   */
  reload(next: { desired: Desired; file: string } | { error: string }, done?: () => void): void {
    this.op(async () => {
      if ('error' in next) {
        this.dispatch({ type: 'configRejected', error: next.error });
      } else {
        const { desired, file } = next;
        const renamed = desired.spec.name !== this.d.spec.name;
        const specChanged = renamed || desired.spec.hash !== this.d.spec.hash;
        if (renamed) {
          this.d.log.log('warn', `container.name changed from ${this.d.spec.name} to ${desired.spec.name}; the old container is stopped (not removed)`);
          this.events.stop();
          this.events = this.watch(desired.spec.name);
          this.events.start();
        }
        Object.assign(this.d, desired);
        this.dispatch({ type: 'configApplied', specChanged, file, renamed });
      }
      done?.();
    });
  }

  async start(): Promise<void> {
    const loaded = this.d.store ? await this.d.store.load() : {};
    if (loaded.problem) this.d.log.log('warn', loaded.problem);
    this.events.start();
    // Status lines carry elapsed times ("loading: 3m12s of 15m"): refresh them while nothing else happens.
    this.statusTimer = setInterval(() => this.publishStatus(), 1000);
    this.statusTimer.unref();
    this.dispatch(loaded.record ? { type: 'boot', persisted: loaded.record } : { type: 'boot' });
  }

  /** SIGTERM/SIGINT: handled after any container operation under way, so nothing is left half done. */
  shutdown(signal: string, handover = false): void {
    this.op(async () => this.dispatch({ type: 'shutdown', signal, handover }));
  }

  dispatch(ev: Event): void {
    if (this.exited) return;
    const r = step(this.state, ev, { now: this.now(), random: this.random(), settings: this.d.settings });
    const before = this.state.phase;
    this.state = r.state;
    if (r.state.phase !== before) this.d.log.log('debug', `state ${before} -> ${r.state.phase}`, { state: r.state.phase, event: ev.type });
    for (const a of r.actions) this.perform(a);
    this.publishStatus();
    this.arm();
  }

  private publishStatus(): void {
    const line = statusLine(this.state, this.now(), this.d.settings);
    if (line === this.lastStatus) return;
    this.lastStatus = line;
    this.d.onStatus?.(line, this.state);
  }

  private arm(): void {
    clearTimeout(this.timer);
    const at = wakeAt(this.state, this.d.settings);
    if (at === undefined || this.exited) return;
    this.timer = setTimeout(() => this.dispatch({ type: 'tick' }), Math.max(0, at - this.now()));
  }

  private op(fn: () => Promise<void>): void {
    this.ops = this.ops.then(fn).catch((err: unknown) => {
      // A bug in an operation must not wedge the queue; say what happened and carry on.
      this.d.log.log('error', `internal error: ${(err as Error).stack ?? String(err)}`);
    });
  }

  private perform(a: Action): void {
    switch (a.type) {
      case 'observe':
        this.op(() => this.look());
        return;
      case 'reconcile':
        this.op(() => this.reconcile(a.stopFirst));
        return;
      case 'probe':
        void this.probe(a.kind, a.timeout).then((r) => this.dispatch({ type: 'probed', kind: a.kind, epoch: a.epoch, ...r }));
        return;
      case 'persist':
        if (this.d.store) {
          const store = this.d.store;
          this.op(() => store.save(a.record).catch((err: unknown) => this.d.log.log('warn', `cannot save the restart count in ${store.file}: ${(err as Error).message}`)));
        }
        return;
      case 'log':
        this.d.log.log(a.level, a.msg, { event: a.event, ...a.fields });
        return;
      case 'stopContainer':
        this.op(async () => {
          try {
            await this.d.engine.stop(a.id, a.timeout);
          } catch (err) {
            this.d.log.log('warn', `stopping ${this.d.spec.name}: ${(err as Error).message}`);
          }
          this.dispatch({ type: 'containerStopped' });
        });
        return;
      case 'exit':
        this.exit(a.code);
        return;
    }
  }

  private exit(code: number): void {
    this.exited = true;
    clearTimeout(this.timer);
    clearInterval(this.statusTimer);
    this.events.stop();
    // Let queued writes (the state file) finish before saying we are done.
    void this.ops.then(() => this.resolveDone(code));
  }

  private async look(): Promise<void> {
    let seen: Seen;
    try {
      seen = await this.seen();
    } catch (err) {
      // Either way the machine must hear of it: waiting for Docker re-checks on its own.
      this.dispatch({ type: 'engineLost', message: err instanceof EngineUnreachable ? err.message : `inspecting ${this.d.spec.name}: ${(err as Error).message}` });
      return;
    }
    this.dispatch({ type: 'observed', seen });
  }

  private async seen(): Promise<Seen> {
    const c = await this.d.engine.inspect(this.d.spec.name);
    if (!c) return { kind: 'absent' };
    if (c.State.Running) return { kind: 'running', id: c.Id, startedAt: Date.parse(c.State.StartedAt) };
    // No log (a log driver without reads, a race with removal) is no reason to miss the exit.
    const log = await this.d.engine.logTail(c.Id, TAIL_LINES + ACCESS_SLACK).catch(() => '');
    const lines = log.split('\n').map((l) => l.trimEnd());
    // Our own probes fill the access log; the lines that explain an exit are the others.
    const tail = lines.filter((l) => l && !ACCESS_LINE.test(l)).slice(-TAIL_LINES);
    return { kind: 'exited', id: c.Id, exit: { code: c.State.ExitCode, oom: c.State.OOMKilled, tail } };
  }

  private async reconcile(stopFirst: string | undefined): Promise<void> {
    const { engine, spec, token, settings, log } = this.d;
    try {
      if (stopFirst) await engine.stop(stopFirst, settings.stopTimeout);
      const res = await ensureContainer(engine, spec, token, {
        stopTimeoutMs: settings.stopTimeout,
        // A recreate stops the old container first (up to stopTimeout): say so before, not after.
        onPlan: (outcome, reason) => log.log(outcome === 'recreated' ? 'info' : 'debug', `${spec.name}: ${outcome === 'recreated' ? 'recreating' : outcome}: ${reason}`),
      });
      const c = await engine.inspect(res.id || spec.name);
      const startedAt = c ? Date.parse(c.State.StartedAt) : this.now();
      this.dispatch({ type: 'reconciled', id: c?.Id ?? res.id, outcome: res.outcome, reason: res.reason, startedAt });
    } catch (err) {
      const kind = err instanceof EngineUnreachable ? 'engine' : err instanceof ImageMissing ? 'image' : 'docker';
      this.dispatch({ type: 'reconcileFailed', kind, message: (err as Error).message });
    }
  }

  private probe(kind: ProbeKind, timeout: number): Promise<ProbeResult> {
    const { probeHost: host, settings } = this.d;
    if (kind === 'readiness') return probeModels(host, settings.port, settings.servedName, timeout);
    return probeHealth(host, settings.port, timeout);
  }
}
