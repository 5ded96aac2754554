// The shell: a loop that feeds events to the state machine and performs what it asks, one container
// operation at a time, keeping the watchers it subscribes to running. It decides nothing.
import { handledLine, step, stopBudget, wakeAt } from '../core/machine/step.js';
import { statusLine } from '../core/machine/status-line.js';
import { subscriptions } from '../core/machine/subscriptions.js';
import { doorView } from '../core/machine/door.js';
import type { RequestRecord } from '../core/model/door.js';
import type { Event } from '../core/model/events.js';
import { initialState, isRunning, type State } from '../core/model/state.js';
import type { Desired } from '../desired/desired.js';
import { InForce } from '../desired/rollback.js';
import type { SupervisorDeps } from './deps.js';
import type { Change } from './desired.js';
import { EncodingsCache } from './effects/encodings.js';
import { Effects } from './perform.js';
import { startWatcher, Watchers } from './watchers.js';

export class Supervisor {
  state: State;
  readonly done: Promise<number>;
  readonly now: () => number;
  /** The config file's desired config, and the one in force (a rollback's, while one is). */
  private file: Desired;
  private d: Desired;
  private readonly inForce: InForce;
  private timer: NodeJS.Timeout | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  /** Container operations run one at a time, in order; looks at Docker queue here too. */
  private ops: Promise<void> = Promise.resolve();
  private lastStatus = '';
  private exited = false;
  private resolveDone: (code: number) => void = () => {};
  private readonly random: () => number;
  private readonly effects: Effects;
  private readonly watchers: Watchers;

  constructor(private readonly deps: SupervisorDeps) {
    this.file = deps.desired;
    this.inForce = new InForce((msg) => deps.log.log('error', msg));
    this.d = deps.desired;
    this.now = deps.now ?? Date.now;
    this.random = deps.random ?? Math.random;
    this.state = initialState(this.now());
    this.done = new Promise((r) => (this.resolveDone = r));
    const env = {
      engine: deps.engine,
      log: deps.log,
      desired: () => this.d,
      encodings: new EncodingsCache(),
      now: this.now,
      warned: new Set<string>(),
      dispatch: (ev: Event) => this.dispatch(ev),
      op: (fn: () => Promise<void>) => void this.op(fn),
    };
    const watchEnv = {
      ...env,
      ...(deps.dockerUnitState ? { dockerUnitState: deps.dockerUnitState } : {}),
      ...(deps.gateControl ? { gateControl: deps.gateControl } : {}),
      ...(deps.store ? { stateDir: deps.store.dir } : {}),
      followLogs: deps.followLogs !== false,
      onDoorRecords: (r: RequestRecord[]) => deps.onDoorRecords?.(r),
      keysChanged: () => this.publishStatus(),
    };
    this.watchers = new Watchers((sub) => startWatcher(sub, watchEnv));
    this.effects = new Effects({
      ...env,
      store: deps.store,
      exit: (code) => this.exit(code),
      stats: () => this.watchers.stats(),
      upstream: () => (isRunning(this.state) && this.state.run.upstream) || this.d.upstream,
      drain: (ms) => this.watchers.gate()?.drain(ms) ?? Promise.resolve(),
      ...(deps.probe ? { prober: deps.probe } : {}),
    });
  }

  /** The desired config in force: the config file's, or, while a rollback is in force, the good spec's. */
  get desired(): Desired {
    return this.d;
  }

  /** An operator's request (D-Bus Restart(), Rollback()): handled after any container operation under way. */
  request(ev: Extract<Event, { type: 'restartRequested' | 'rollbackRequested' }>): void {
    void this.op(() => this.dispatch(ev));
  }

  async start(): Promise<void> {
    // Say "starting" at once: reading the state record (in the reader process) takes a moment.
    this.publishStatus();
    const loaded = this.deps.store ? await this.deps.store.load() : {};
    if (loaded.problem) this.deps.log.log('warn', loaded.problem);
    // A rollback in force before this supervisor started stays in force (its desired config first).
    if (loaded.record) this.d = this.inForce.of(this.file, loaded.record);
    // The watchers are in place before the first look: nothing that happens after it is missed.
    this.watchers.sync(subscriptions(this.state, this.d.settings));
    await this.watchers.ready();
    // Status lines carry elapsed times ("loading: 3m12s of 15m"): refresh them while nothing else happens.
    this.statusTimer = setInterval(() => this.publishStatus(), 1000);
    this.statusTimer.unref();
    this.dispatch(loaded.record ? { type: 'boot', persisted: loaded.record } : { type: 'boot' });
  }

  /**
   * A new config, already loaded, or a located error. Applied after any container operation under
   * way; the machine decides what the change means (settings only, a new spec, a new name).
   */
  reload(change: Change): Promise<void> {
    return this.op(async () => {
      // A reload that lands after the shutdown changes nothing: no watcher, timer or job is started again.
      if (this.exited) return;
      if ('error' in change) return this.dispatch({ type: 'configRejected', error: change.error });
      const { name, specHash } = this.d.settings;
      this.file = change.desired;
      this.d = this.inForce.of(this.file, this.state.history);
      const what = change.what ? { what: change.what } : {};
      this.dispatch({ type: 'configApplied', file: this.d.file, previous: { name, specHash }, ...what });
      await this.watchers.ready();
    });
  }

  /** systemd says docker.service is stopping or back (D-Bus): wait for it quietly, then resume with a look. */
  dockerUnit(state: 'down' | 'up', activeState: string): void {
    if (state === 'up') return this.dispatch({ type: 'engineBack' });
    this.dispatch({
      type: 'engineLost',
      message: `docker.service is ${activeState} (systemctl stop or restart docker)`,
    });
  }

  /** How long a shutdown may take: any operation under way, then the container's graceful stop. */
  stopBudgetMs(): number {
    return stopBudget(this.d.settings);
  }

  /** SIGTERM/SIGINT: handled after any container operation under way, so nothing is left half done. */
  shutdown(signal: string, handover = false): void {
    void this.op(() => this.dispatch({ type: 'shutdown', signal, handover }));
  }

  dispatch(ev: Event): void {
    if (this.exited) return;
    const before = this.state;
    const r = step(before, ev, { now: this.now(), random: this.random(), settings: this.d.settings });
    this.deps.onEvent?.(ev, before, r.state);
    this.state = r.state;
    // A rollback begun or ended: what the actions below do is done with the desired config now in force.
    this.d = this.inForce.of(this.file, r.state.history);
    if (r.state.phase !== before.phase) {
      const fields = { state: r.state.phase, event: ev.type };
      this.deps.log.log('debug', `state ${before.phase} -> ${r.state.phase}`, fields);
    }
    for (const a of r.actions) this.effects.perform(a);
    if (!this.exited) this.watchers.sync(subscriptions(this.state, this.d.settings));
    // After the event's own log lines: what follows this line in the log came after the decision.
    const handled = handledLine(ev, before.phase, r);
    if (handled) this.deps.log.log('debug', handled, { event: 'handled', handled: ev.type, state: r.state.phase });
    // Nothing changed (pull progress between two status updates, a stale probe): nothing to publish.
    if (r.state !== before || r.actions.length) this.publishStatus();
    // A timer may fire a moment before its time by Date.now(): a tick always re-arms.
    this.arm();
  }

  private publishStatus(): void {
    const now = this.now();
    const line = statusLine(this.state, now, this.d.settings);
    this.deps.onState?.(this.state, line, now);
    const view = doorView(this.state, this.d.settings, now, this.watchers.apiKeys());
    if (view) this.watchers.gate()?.update(view);
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

  private exit(code: number): void {
    this.exited = true;
    clearTimeout(this.timer);
    clearInterval(this.statusTimer);
    this.effects.stop();
    const stopped = this.watchers.stopAll();
    // Let queued operations, writes (the state file) and the watchers' stops finish before saying we are done.
    void Promise.all([this.ops, this.effects.written(), stopped]).then(() => this.resolveDone(code));
  }
}
