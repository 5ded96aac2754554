// The shell: runs the state machine's actions against the world, one container operation at a time.
import type { Event, Action } from '../core/events.js';
import type { State } from '../core/state.js';
import { initialState, isRunning } from '../core/state.js';
import { statusLine } from '../core/status-line.js';
import { step, wakeAt } from '../core/step.js';
import type { ContainerEngine } from '../docker/engine-api.js';
import { ContainerEvents } from '../docker/events.js';
import type { Logger } from '../log/logger.js';
import type { StateStore } from '../state/store.js';
import type { FileWatcher } from '../watch/watch.js';
import { Jobs } from './cron.js';
import type { Change, Desired } from './desired.js';
import { exitFromEvent, look, prepareSpec, reconcile, type ReconcileContext } from './effects/container.js';
import { EncodingsCache, lookAtEncodings, watchEncodings } from './effects/encodings.js';
import { LogWatch } from './effects/engine-log.js';
import { modelDisk } from '../preflight/model-disk.js';
import { probe, type ProbeOutcome } from './effects/probe.js';
import { Puller } from './effects/pull.js';

export interface SupervisorDeps {
  engine: ContainerEngine;
  desired: Desired;
  log: Logger;
  store: StateStore | undefined;
  /** Told the status line whenever it changes (sd_notify). */
  onStatus?: (line: string, state: State) => void;
  /** Told every event with the state before and after it (metrics, alerts). */
  onEvent?: (ev: Event, before: State, after: State) => void;
  /** Told the state after every event and every second (D-Bus properties), with the status line. */
  onState?: (state: State, line: string) => void;
  now?: () => number;
  random?: () => number;
  /** docker.service's state from systemd (D-Bus), to say why the engine went away. */
  dockerUnitState?: () => Promise<string | undefined>;
  /** The probes; tests without a model answer them. */
  probe?: (kind: Extract<Action, { type: 'probe' }>['kind'], d: Desired, timeout: number) => Promise<ProbeOutcome>;
  /** Follow the running container's log (engine death, warnings, stats); tests without Docker turn it off. */
  followLogs?: boolean;
}

/** How long a kill or oom event explains a die that follows it. */
const RECENT_EVENT_MS = 10_000;
/** Docker's own share of a stop, and a little for us. */
const STOP_SLACK_MS = 30_000;

export class Supervisor {
  state: State;
  readonly done: Promise<number>;
  private d: Desired;
  private timer: NodeJS.Timeout | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  /** Container operations run one at a time, in order; looks at Docker queue here too. */
  private ops: Promise<void> = Promise.resolve();
  /** state.json writes, in order, beside the container operations (a restart does not wait for an fsync). */
  private writes: Promise<void> = Promise.resolve();
  private events: ContainerEvents;
  private lastStatus = '';
  private exited = false;
  private resolveDone: (code: number) => void = () => {};
  private encodingsWatch: FileWatcher | undefined;
  private readonly encodings = new EncodingsCache();
  private readonly puller: Puller;
  /** Preflight warnings already logged: each is said once, not at every start. */
  private readonly warned = new Set<string>();
  private readonly jobs = new Jobs(
    (job) => this.dispatch({ type: 'scheduled', job }),
    (msg) => this.deps.log.log('warn', msg),
  );
  private runtimeChecked = false;
  /** The running container's log, followed while its run lasts. */
  private logWatch: LogWatch | undefined;
  /** Kill and oom events seen lately, by container: they tell how the next die came about. */
  private readonly recentEvents = new Map<string, { at: number; killed: boolean; oom: boolean }>();
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(private readonly deps: SupervisorDeps) {
    this.d = deps.desired;
    this.now = deps.now ?? Date.now;
    this.random = deps.random ?? Math.random;
    this.state = initialState(this.now());
    this.done = new Promise((r) => (this.resolveDone = r));
    this.events = this.follow(this.d.spec.name);
    this.puller = new Puller(deps.engine, deps.log, (ev) => this.dispatch(ev));
  }

  get desired(): Desired {
    return this.d;
  }

  async start(): Promise<void> {
    // Say "starting" at once: reading the state record (in the reader process) takes a moment.
    this.publishStatus();
    const loaded = this.deps.store ? await this.deps.store.load() : {};
    if (loaded.problem) this.deps.log.log('warn', loaded.problem);
    this.events.start();
    await this.watchEncodings();
    this.jobs.set(this.d.config.schedule);
    // Status lines carry elapsed times ("loading: 3m12s of 15m"): refresh them while nothing else happens.
    this.statusTimer = setInterval(() => this.publishStatus(), 1000);
    this.statusTimer.unref();
    this.dispatch(loaded.record ? { type: 'boot', persisted: loaded.record } : { type: 'boot' });
  }

  /**
   * A new config, already loaded, or a located error. Applied after any container operation
   * under way; the spec hash decides whether the container must be recreated.
   */
  reload(change: Change): Promise<void> {
    return this.op(async () => {
      // A reload that lands after the shutdown changes nothing: no watcher, timer or job is started again.
      if (this.exited) return;
      if ('error' in change) return this.dispatch({ type: 'configRejected', error: change.error });
      const next = change.desired;
      const before = this.d;
      const renamed = next.spec.name !== before.spec.name;
      const specChanged = renamed || next.spec.hash !== before.spec.hash;
      if (renamed) {
        this.deps.log.log(
          'warn',
          `container.name changed from ${before.spec.name} to ${next.spec.name}; the old container is stopped (not ` +
            `removed)`,
        );
        this.events.stop();
        this.events = this.follow(next.spec.name);
        this.events.start();
      }
      this.d = next;
      const enc = (c: Desired) => `${c.config.paths.encodings}:${c.config.encodings.verify}`;
      if (enc(next) !== enc(before)) await this.watchEncodings();
      this.jobs.set(next.config.schedule);
      this.dispatch({
        type: 'configApplied',
        specChanged,
        file: next.file,
        renamed,
        ...(change.what ? { what: change.what } : {}),
      });
    });
  }

  /** An operator's restart (D-Bus Restart()): the graceful path of every restart, after any operation under way. */
  requestRestart(by: string): void {
    void this.op(() => this.dispatch({ type: 'restartRequested', by }));
  }

  /** systemd says docker.service is stopping or back (D-Bus): wait for it quietly, then resume with a look. */
  dockerUnit(state: 'down' | 'up', activeState: string): void {
    if (state === 'down')
      this.dispatch({
        type: 'engineLost',
        message: `docker.service is ${activeState} (systemctl stop or restart docker)`,
      });
    else this.dispatch({ type: 'engineBack' });
  }

  /** How long a shutdown may take: any operation under way, then the container's graceful stop. */
  stopBudgetMs(): number {
    const t = this.d.settings;
    return t.stopOnExit ? 2 * t.stopTimeout + STOP_SLACK_MS : STOP_SLACK_MS;
  }

  /** SIGTERM/SIGINT: handled after any container operation under way, so nothing is left half done. */
  shutdown(signal: string, handover = false): void {
    void this.op(() => this.dispatch({ type: 'shutdown', signal, handover }));
  }

  dispatch(ev: Event): void {
    if (this.exited) return;
    const r = step(this.state, ev, { now: this.now(), random: this.random(), settings: this.d.settings });
    this.deps.onEvent?.(ev, this.state, r.state);
    if (r.state === this.state && r.actions.length === 0) {
      this.note(ev, this.state.phase, r.state, r.actions);
      // Nothing changed (pull progress between two status updates, a stale probe): nothing to publish.
      // A timer may fire a moment before its time by Date.now(): a tick always re-arms.
      if (ev.type === 'tick') this.arm();
      return;
    }
    const before = this.state.phase;
    this.state = r.state;
    if (r.state.phase !== before)
      this.deps.log.log('debug', `state ${before} -> ${r.state.phase}`, { state: r.state.phase, event: ev.type });
    for (const a of r.actions) this.perform(a);
    this.followRun();
    // After the event's own log lines: what follows this line in the log came after the decision.
    this.note(ev, before, r.state, r.actions);
    this.publishStatus();
    this.arm();
  }

  /**
   * One debug line per event that is not routine (ticks, probes, pull progress): what the machine
   * made of it. It proves the supervisor looked, where what it decided was to do nothing.
   */
  private note(ev: Event, was: State['phase'], next: State, actions: Action[]): void {
    if (ev.type === 'tick' || ev.type === 'probed' || ev.type === 'pullProgress') return;
    const did = actions.filter((a) => a.type !== 'log').map((a) => a.type);
    const msg = `${ev.type} handled: ${was} -> ${next.phase}${did.length ? `; ${did.join(', ')}` : ''}`;
    this.deps.log.log('debug', msg, { event: 'handled', handled: ev.type, state: next.phase });
  }

  private follow(name: string): ContainerEvents {
    return new ContainerEvents(this.deps.engine, name, {
      change: (action, id, attributes) => this.containerEvent(action, id, attributes),
      lost: (message) => void this.engineLost(message),
      back: () => this.dispatch({ type: 'engineBack' }),
    });
  }

  /**
   * The event stream broke. When systemd is stopping docker.service, that is the reason to give (the
   * stream's own error, "aborted", says nothing), whichever of the two was heard first.
   */
  private async engineLost(message: string): Promise<void> {
    const unit = await this.deps.dockerUnitState?.();
    const why = unit && unit !== 'active' ? `docker.service is ${unit} (systemctl stop or restart docker)` : message;
    this.dispatch({ type: 'engineLost', message: why });
  }

  /**
   * A container event: look at Docker. A die that no kill asked for (the model's process ended by
   * itself) is taken from the event, without waiting for Docker's inspect; any other change (our
   * stop, an operator's `docker restart`, a removal) is looked at in full.
   */
  private containerEvent(action: string, id: string, attributes: Record<string, string>): void {
    const now = this.now();
    for (const [k, v] of this.recentEvents) if (now - v.at > RECENT_EVENT_MS) this.recentEvents.delete(k);
    const recent = this.recentEvents.get(id) ?? { at: now, killed: false, oom: false };
    this.recentEvents.set(id, {
      at: now,
      killed: recent.killed || action === 'kill',
      oom: recent.oom || action === 'oom',
    });
    const code = Number(attributes['exitCode']);
    const { engine } = this.deps;
    if (action === 'die' && attributes['exitCode'] !== undefined && Number.isInteger(code) && !recent.killed) {
      void this.op(async () => this.dispatch(await exitFromEvent(engine, id, code, recent.oom)));
      return;
    }
    void this.op(async () => this.dispatch(await look(engine, this.d.spec.name)));
  }

  /** Follows the log of the run in progress (a new one at each run), none when nothing runs. */
  private followRun(): void {
    const s = this.state;
    const want = isRunning(s) && this.deps.followLogs !== false ? s.run.containerId : undefined;
    // While it loads, the output is followed live (an attach); once it serves, through Docker's log:
    // an attach left open for days would tie the container's output to this process's reading.
    const live = s.phase === 'loading';
    if (
      this.logWatch &&
      (this.logWatch.id !== want || this.logWatch.epoch !== s.epoch || this.logWatch.live !== live)
    ) {
      this.logWatch.stop();
      this.logWatch = undefined;
    }
    if (!want || this.logWatch || !isRunning(s)) return;
    this.logWatch = new LogWatch({
      engine: this.deps.engine,
      id: want,
      epoch: s.epoch,
      // From the run's start: a line printed between the start and this watch is not missed.
      sinceSec: live ? s.run.startedAt / 1000 - 1 : this.now() / 1000 - 1,
      live,
      dispatch: (ev) => this.dispatch(ev),
      warn: (msg) => this.deps.log.log('warn', msg),
    });
    void this.logWatch.start();
  }

  private publishStatus(): void {
    const line = statusLine(this.state, this.now(), this.d.settings);
    this.deps.onState?.(this.state, line);
    if (line === this.lastStatus) return;
    this.lastStatus = line;
    this.deps.onStatus?.(line, this.state);
  }

  private arm(): void {
    clearTimeout(this.timer);
    const at = wakeAt(this.state, this.d.settings);
    if (at === undefined || this.exited) return;
    this.timer = setTimeout(() => this.dispatch({ type: 'tick' }), Math.max(0, at - this.now()));
  }

  private op(fn: () => void | Promise<void>): Promise<void> {
    const next = this.ops.then(fn).catch((err: unknown) => {
      // A bug in an operation must not wedge the queue; say what happened and carry on.
      this.deps.log.log('error', `internal error: ${(err as Error).stack ?? String(err)}`);
    });
    this.ops = next;
    return next;
  }

  /** A probe, timed, with a look at the model's folder when asked; its result goes to the machine. */
  private probe(a: Extract<Action, { type: 'probe' }>): void {
    const stats = () => this.logWatch?.stats;
    const run = this.deps.probe ?? ((k, d, t) => probe(k, d, t, stats));
    const c = this.d.config;
    const disk = a.disk ? modelDisk(c.paths.huggingface, c.model.id).catch(() => undefined) : undefined;
    const t0 = performance.now();
    void Promise.all([run(a.kind, this.d, a.timeout).then((r) => ({ ...r, ms: performance.now() - t0 })), disk]).then(
      ([r, d]) => this.dispatch({ type: 'probed', kind: a.kind, epoch: a.epoch, ...r, ...(d ? { disk: d } : {}) }),
    );
  }

  private perform(a: Action): void {
    const { engine, log, store } = this.deps;
    switch (a.type) {
      case 'observe':
        void this.op(async () => this.dispatch(await look(engine, this.d.spec.name)));
        return;
      case 'reconcile':
        void this.op(async () => this.dispatch(await reconcile(this.reconcileContext(), a.stopFirst, a.release)));
        return;
      case 'pull':
        this.puller.start(a.image, this.d.config.container.registryAuth);
        return;
      case 'prepare':
        void this.op(async () => this.dispatch(await prepareSpec(this.reconcileContext(), a.spec)));
        return;
      case 'abortPull':
        this.puller.abort();
        return;
      case 'checkEncodings': {
        const c = this.d.config;
        void lookAtEncodings(this.encodings, c.paths.encodings, c.encodings.verify).then((ev) => this.dispatch(ev));
        return;
      }
      case 'probe':
        this.probe(a);
        return;
      case 'persist':
        if (store) {
          // Log tails and failure texts go into the record: never a secret with them.
          const record = JSON.parse(log.scrub(JSON.stringify(a.record))) as typeof a.record;
          const failed = (err: unknown) =>
            log.log('warn', `cannot save the restart count in ${store.file}: ${(err as Error).message}`);
          this.writes = this.writes.then(() => store.save(record).catch(failed));
        }
        return;
      case 'log':
        log.log(a.level, a.msg, { event: a.event, ...a.fields });
        return;
      case 'stopContainer':
        void this.op(async () => {
          await engine
            .stop(a.id, a.timeout)
            .catch((err: unknown) => log.log('warn', `stopping ${this.d.spec.name}: ${(err as Error).message}`));
          this.dispatch({ type: 'containerStopped' });
        });
        return;
      case 'exit':
        this.exit(a.code);
        return;
    }
  }

  private reconcileContext(): ReconcileContext {
    // Docker's GPU support is a warning only (a start without it is diagnosed): look once.
    const gpuRuntime = !this.runtimeChecked;
    this.runtimeChecked = true;
    return {
      engine: this.deps.engine,
      desired: this.d,
      log: this.deps.log,
      encodings: this.encodings,
      gpuRuntime,
      warnOnce: (msg) => this.warnOnce(msg),
      now: this.now,
    };
  }

  private warnOnce(msg: string): void {
    if (this.warned.has(msg)) return;
    this.warned.add(msg);
    this.deps.log.log('warn', `preflight: ${msg}`);
  }

  /** Follows the tiktoken files: appearing, replaced, removed. */
  private async watchEncodings(): Promise<void> {
    await this.encodingsWatch?.stop();
    const c = this.d.config;
    const changed = () => {
      this.encodings.forget();
      void lookAtEncodings(this.encodings, c.paths.encodings, c.encodings.verify).then((ev) => this.dispatch(ev));
    };
    this.encodingsWatch = watchEncodings(c.paths.encodings, changed, (msg) => this.deps.log.log('warn', msg));
    await this.encodingsWatch.start();
  }

  private exit(code: number): void {
    this.exited = true;
    clearTimeout(this.timer);
    clearInterval(this.statusTimer);
    this.events.stop();
    this.logWatch?.stop();
    this.puller.abort();
    void this.encodingsWatch?.stop();
    this.jobs.stop();
    // Let queued operations and writes (the state file) finish before saying we are done.
    void Promise.all([this.ops, this.writes]).then(() => this.resolveDone(code));
  }
}
