// Runs the state machine against the world: Docker, probes, timers, files, the state file, the log.
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import type { ContainerSpec } from '../container/spec.js';
import type { Engine } from '../docker/engine.js';
import { ensureContainer } from '../docker/ensure.js';
import { EngineUnreachable, ImageMissing, PullFailed } from '../docker/errors.js';
import { ContainerEvents } from '../docker/events.js';
import { authFor, classifyPullError, describePull, PullProgress } from '../docker/pull-progress.js';
import { ENCODINGS } from '../encodings/known.js';
import { checkEncodings } from '../preflight/checks.js';
import { encodingFacts } from '../preflight/facts.js';
import { encodingsFingerprint, preflight, PrereqMissing } from '../preflight/run.js';
import { FileWatcher } from '../watch/watch.js';
import { Jobs } from './jobs.js';
import { deepProbe, probeHealth, probeModels, type ProbeResult } from '../health/probe.js';
import type { Logger } from '../log/logger.js';
import type { StateStore } from '../state/store.js';
import { initialState, step, wakeAt, type Action, type Event, type ProbeKind, type RunInputs, type Seen, type Settings, type State } from '../supervisor/machine.js';
import { statusLine } from '../supervisor/status.js';

/** What a config file turns into; replaced as a whole on reload. */
export interface Desired {
  config: Config;
  spec: ContainerSpec;
  token: string | undefined;
  /** Where the token came from (safe to show), undefined when there is none. */
  tokenSource: string | undefined;
  settings: Settings;
  probeHost: string;
}

/** A short stand-in for the token: equal tokens, equal fingerprints; the token cannot be read back. */
export function tokenFingerprint(token: string | undefined): string | undefined {
  return token === undefined ? undefined : createHash('sha256').update(`gptoss-token:${token}`).digest('hex').slice(0, 16);
}

export interface SupervisorDeps extends Desired {
  engine: Engine;
  log: Logger;
  store: StateStore | undefined;
  /** Told the status line whenever it changes (sd_notify). */
  onStatus?: (line: string, state: State) => void;
  /** Told the state after every event and every second (D-Bus properties), with the status line. */
  onState?: (state: State, line: string) => void;
  now?: () => number;
  random?: () => number;
}

const TAIL_LINES = 20;
/** Docker's own share of a stop, and a little for us. */
const STOP_SLACK_MS = 30_000;
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
  private encodingsWatch: FileWatcher | undefined;
  private pullAbort: AbortController | undefined;
  /** Preflight warnings already logged: each is said once, not at every start. */
  private readonly warned = new Set<string>();
  private readonly jobs = new Jobs((job) => this.dispatch({ type: 'scheduled', job }));
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
  reload(next: { desired: Desired; file: string; what?: string } | { error: string }, done?: () => void): void {
    this.op(async () => {
      if ('error' in next) {
        this.dispatch({ type: 'configRejected', error: next.error });
      } else {
        const { desired, file } = next;
        const before = this.d.config;
        const renamed = desired.spec.name !== this.d.spec.name;
        const specChanged = renamed || desired.spec.hash !== this.d.spec.hash;
        if (renamed) {
          this.d.log.log('warn', `container.name changed from ${this.d.spec.name} to ${desired.spec.name}; the old container is stopped (not removed)`);
          this.events.stop();
          this.events = this.watch(desired.spec.name);
          this.events.start();
        }
        // A pull of an image no longer wanted stops; the next reconcile pulls the new one.
        if (desired.config.container.image !== before.container.image) this.pullAbort?.abort();
        Object.assign(this.d, desired);
        if (desired.config.paths.encodings !== before.paths.encodings || desired.config.encodings.verify !== before.encodings.verify) void this.watchEncodings();
        this.jobs.set(desired.config.schedule);
        this.dispatch({ type: 'configApplied', specChanged, file, renamed, ...(next.what ? { what: next.what } : {}) });
      }
      done?.();
    });
  }

  async start(): Promise<void> {
    const loaded = this.d.store ? await this.d.store.load() : {};
    if (loaded.problem) this.d.log.log('warn', loaded.problem);
    this.events.start();
    await this.watchEncodings();
    this.jobs.set(this.d.config.schedule);
    // Status lines carry elapsed times ("loading: 3m12s of 15m"): refresh them while nothing else happens.
    this.statusTimer = setInterval(() => this.publishStatus(), 1000);
    this.statusTimer.unref();
    this.dispatch(loaded.record ? { type: 'boot', persisted: loaded.record } : { type: 'boot' });
  }

  /** An operator's restart (D-Bus Restart()): the same graceful path as every restart, after any operation under way. */
  requestRestart(by: string): void {
    this.op(async () => this.dispatch({ type: 'restartRequested', by }));
  }

  /** systemd says docker.service is stopping or back (D-Bus): wait for it quietly, then resume with a look. */
  dockerUnit(state: 'down' | 'up', activeState: string): void {
    if (state === 'down') this.dispatch({ type: 'engineLost', message: `docker.service is ${activeState} (systemctl stop or restart docker)` });
    else this.dispatch({ type: 'engineBack' });
  }

  /** How long a shutdown may take: any operation under way, then the container's graceful stop. */
  stopBudgetMs(): number {
    return this.d.settings.stopOnExit ? 2 * this.d.settings.stopTimeout + STOP_SLACK_MS : STOP_SLACK_MS;
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
    this.d.onState?.(this.state, line);
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
        this.op(() => this.reconcile(a.stopFirst, a.blocked));
        return;
      case 'pull':
        void this.pull(a.image);
        return;
      case 'probe':
        void this.probe(a.kind, a.timeout).then((r) => this.dispatch({ type: 'probed', kind: a.kind, epoch: a.epoch, ...r }));
        return;
      case 'persist':
        if (this.d.store) {
          const store = this.d.store;
          // Log tails and failure texts go into the record: never a secret with them.
          const record = JSON.parse(this.d.log.scrub(JSON.stringify(a.record))) as typeof a.record;
          this.op(() => store.save(record).catch((err: unknown) => this.d.log.log('warn', `cannot save the restart count in ${store.file}: ${(err as Error).message}`)));
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
    this.pullAbort?.abort();
    void this.encodingsWatch?.stop();
    this.jobs.stop();
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

  private async reconcile(stopFirst: string | undefined, blocked: Extract<Action, { type: 'reconcile' }>['blocked']): Promise<void> {
    const { engine, spec, token, settings, log, config } = this.d;
    let encodings: string | undefined;
    const inputs = (): RunInputs => {
      const r: RunInputs = { model: config.model.id };
      const fp = tokenFingerprint(token);
      if (fp) r.token = fp;
      if (encodings) r.encodings = encodings;
      return r;
    };
    try {
      if (stopFirst) await engine.stop(stopFirst, settings.stopTimeout);
      const res = await ensureContainer(engine, spec, token, {
        stopTimeoutMs: settings.stopTimeout,
        // A recreate stops the old container first (up to stopTimeout): say so before, not after.
        onPlan: (outcome, reason) => log.log(outcome === 'recreated' ? 'info' : 'debug', `${spec.name}: ${outcome === 'recreated' ? 'recreating' : outcome}: ${reason}`),
        beforeStart: async () => {
          const now = inputs();
          if (blocked && blocked.inputs.token === now.token && blocked.inputs.model === now.model) {
            throw new PrereqMissing({ id: 'hf-token', status: 'fail', detail: 'the HF token and model.id are still the ones Hugging Face refused', waitFor: blocked.waitFor });
          }
          const { results, facts } = await preflight({ config, engine, tokenSource: this.d.tokenSource });
          for (const r of results) if (r.status === 'warn') this.warnOnce(`${r.id}: ${r.detail}${r.fix ? `; ${r.fix}` : ''}`);
          encodings = encodingsFingerprint(facts.encodings?.files ?? []);
        },
      });
      // Adopted (nothing started): the files it runs with are, as far as anyone can tell, today's.
      encodings ??= encodingsFingerprint(await encodingFacts(config.paths.encodings, config.encodings.verify));
      const c = await engine.inspect(res.id || spec.name);
      const startedAt = c ? Date.parse(c.State.StartedAt) : this.now();
      this.dispatch({ type: 'reconciled', id: c?.Id ?? res.id, outcome: res.outcome, reason: res.reason, startedAt, inputs: inputs() });
    } catch (err) {
      if (err instanceof PrereqMissing) {
        const r = err.result;
        this.dispatch({ type: 'prereqMissing', waitFor: r.waitFor ?? 'config', message: r.detail, ...(r.fix ? { fix: r.fix } : {}) });
        return;
      }
      const kind = err instanceof EngineUnreachable ? 'engine' : err instanceof ImageMissing ? 'image' : 'docker';
      this.dispatch({ type: 'reconcileFailed', kind, message: (err as Error).message });
    }
  }

  private warnOnce(msg: string): void {
    if (this.warned.has(msg)) return;
    this.warned.add(msg);
    this.d.log.log('warn', `preflight: ${msg}`);
  }

  /** Pulls the image in the background (minutes): progress goes to the status line and, now and then, the log. */
  private async pull(image: string): Promise<void> {
    if (this.pullAbort) return;
    const ac = new AbortController();
    this.pullAbort = ac;
    const { engine, log, config } = this.d;
    const progress = new PullProgress();
    let lastDispatch = 0;
    let lastLayers = '';
    let lastLog = this.now();
    const auth = authFor(image, await readFile(config.container.registryAuth, 'utf8').catch(() => undefined));
    log.log('info', `pulling ${image}: it is not on this host${auth ? ` (credentials for ${auth['serveraddress']} from ${config.container.registryAuth})` : ''}`, { event: 'waiting' });
    try {
      await engine.pull(image, auth, (ev) => {
        progress.add(ev);
        const now = this.now();
        const sum = progress.summary();
        // Bytes move all the time: at most once a second; a layer found or finished: at once.
        const layers = `${sum.layers}/${sum.layersDone}`;
        if (now - lastDispatch < 1000 && layers === lastLayers) return;
        lastDispatch = now;
        lastLayers = layers;
        const text = describePull(sum);
        this.dispatch({ type: 'pullProgress', text });
        if (now - lastLog >= 15_000) {
          lastLog = now;
          log.log('info', `pulling ${image}: ${text}`);
        }
      }, ac.signal);
      this.pullAbort = undefined;
      this.dispatch({ type: 'pulled', summary: describePull(progress.summary()) });
    } catch (err) {
      this.pullAbort = undefined;
      if (err instanceof EngineUnreachable) {
        this.dispatch({ type: 'pullFailed', kind: 'aborted', message: err.message });
        this.dispatch({ type: 'engineLost', message: err.message });
        return;
      }
      const message = (err as Error).message;
      const kind = err instanceof PullFailed && err.aborted ? 'aborted' : classifyPullError(message);
      this.dispatch({ type: 'pullFailed', kind, message });
    }
  }

  /** Follows the tiktoken files: appearing, replaced, removed. */
  private async watchEncodings(): Promise<void> {
    await this.encodingsWatch?.stop();
    const dir = this.d.config.paths.encodings;
    this.encodingsWatch = new FileWatcher({
      files: ENCODINGS.map((e) => join(dir, e.file)),
      debounceMs: 200,
      onChange: () => void this.encodingsChanged(dir),
      onError: (msg) => this.d.log.log('warn', msg),
    });
    await this.encodingsWatch.start();
  }

  private async encodingsChanged(dir: string): Promise<void> {
    const { verify } = this.d.config.encodings;
    // Unverified files can be checked only by being still: a copy in progress keeps growing.
    if (!verify && !(await sizesSettled(ENCODINGS.map((e) => join(dir, e.file))))) {
      setTimeout(() => void this.encodingsChanged(dir), 300).unref();
      return;
    }
    const files = await encodingFacts(dir, verify);
    const r = checkEncodings({ dir, verify, files });
    const fingerprint = encodingsFingerprint(files);
    this.dispatch({ type: 'encodingsChanged', ok: r.status === 'pass', detail: r.detail, ...(fingerprint ? { fingerprint } : {}) });
  }

  private probe(kind: ProbeKind, timeout: number): Promise<ProbeResult & { detail?: string }> {
    const { probeHost: host, settings } = this.d;
    if (kind === 'deep') return deepProbe(host, settings.port, settings.servedName, timeout);
    if (kind === 'readiness') return probeModels(host, settings.port, settings.servedName, timeout);
    return probeHealth(host, settings.port, timeout);
  }
}

/** True when no file changed size over a short while (half a second). */
async function sizesSettled(paths: readonly string[]): Promise<boolean> {
  const sizes = () => Promise.all(paths.map((p) => stat(p).then((s) => s.size, () => -1)));
  const a = await sizes();
  await new Promise((r) => setTimeout(r, 500));
  const b = await sizes();
  return a.every((v, i) => v === b[i]);
}
