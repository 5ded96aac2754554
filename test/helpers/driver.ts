// Drives the pure state machine through timed events, for the core's unit tests.
import { defaultConfig } from '../../src/config/schema.js';
import { settingsOf } from '../../src/desired/settings.js';
import type { Upstream } from '../../src/core/model/door.js';
import type { Settings } from '../../src/core/model/settings.js';
import type { Action, Event, Persisted, RunInputs, Seen } from '../../src/core/model/events.js';
import { recogniseLoadLine } from '../../src/core/rules/load-phases.js';
import { initialState, isRunning, type State } from '../../src/core/model/state.js';
import { step } from '../../src/core/machine/step.js';
import { statusLine } from '../../src/core/machine/status-line.js';

/** The defaults, without the wait for a run's memory (tests of it turn it on): actions stay short. */
export const S: Settings = { ...settingsOf(defaultConfig()), releaseTimeout: 0 };
export const SEC = 1000;
export const MIN = 60 * SEC;

/** Drives the machine through timed events; keeps every action for inspection. */
export class Driver {
  state: State;
  now = 0;
  actions: Action[] = [];
  /** `start`: the clock's reading when the supervisor starts (tests of wall-clock fields use a real one). */
  constructor(
    public t: Settings = S,
    start = 0,
  ) {
    this.state = initialState(start);
    this.now = start;
  }
  at(ms: number): this {
    this.now = ms;
    return this;
  }
  send(ev: Event, random = 0.5): Action[] {
    const r = step(this.state, ev, { now: this.now, random, settings: this.t });
    this.state = r.state;
    this.actions.push(...r.actions);
    return r.actions;
  }
  /**
   * A config reload that applies: the settings in `this.t` are the new ones; `specChanged` says whether
   * the container's spec moved (a new hash), `renamed` whether its name did.
   */
  reload(o: { specChanged: boolean; renamed?: boolean; file?: string; what?: string }): Action[] {
    const previous = {
      name: o.renamed ? `${this.t.name}-before` : this.t.name,
      specHash: o.specChanged || o.renamed ? `${this.t.specHash}-before` : this.t.specHash,
    };
    return this.send({
      type: 'configApplied',
      file: o.file ?? '/etc/gptoss/config.yaml',
      previous,
      ...(o.what ? { what: o.what } : {}),
    });
  }
  tick(): Action[] {
    return this.send({ type: 'tick' });
  }
  /** The state's facts under the names these tests use, wherever the phase keeps them. */
  get v() {
    const s = this.state;
    const h = s.history;
    const restart = s.phase === 'backoff' || s.phase === 'crashloop' ? s.restart : undefined;
    const wait = s.phase === 'waiting' ? s.wait : undefined;
    return {
      ...h,
      restartAt: restart?.at,
      stopFirst: restart?.stopFirst,
      startedAt: isRunning(s) ? s.run.startedAt : undefined,
      waitingFor: wait?.reason,
      blocked: wait?.blocked,
      resync: s.phase === 'starting' ? s.resync : (wait?.resync ?? false),
      configError: s.configError,
    };
  }
  status(): string {
    return statusLine(this.state, this.now, this.t);
  }
  /**
   * Boot (carrying on from `persisted`, a state record, when given) and look at Docker: nothing there, unless
   * `seen` says what was. With nothing there the machine is starting, its reconcile asked for.
   */
  looked(o: { persisted?: Persisted; seen?: Seen } = {}): this {
    this.send({ type: 'boot', ...(o.persisted ? { persisted: o.persisted } : {}) });
    this.send({ type: 'observed', seen: o.seen ?? { kind: 'absent' } });
    return this;
  }
  /**
   * Boot, find nothing, create: loading from `now`. Options say what a test needs otherwise: `outcome: 'adopted'`
   * finds the container already running (since `startedAt`) and adopts it; `inputs` are what the run was made
   * from (token fingerprint, model, encodings); `startedAt` is when Docker says it started (default `now`).
   */
  booted(
    id = 'c1',
    o: { outcome?: 'created' | 'adopted'; inputs?: RunInputs; startedAt?: number; upstream?: Upstream } = {},
  ): this {
    const outcome = o.outcome ?? 'created';
    const startedAt = o.startedAt ?? this.now;
    this.looked({ seen: outcome === 'adopted' ? { kind: 'running', id, startedAt } : { kind: 'absent' } });
    const reason = outcome === 'adopted' ? 'spec hash matches' : 'no container';
    const extra = { ...(o.inputs ? { inputs: o.inputs } : {}), ...(o.upstream ? { upstream: o.upstream } : {}) };
    this.send({ type: 'reconciled', id, outcome, reason, startedAt, ...extra });
    return this;
  }
  probe(kind: 'startup' | 'liveness' | 'readiness' | 'engine' | 'warmup', ok: boolean, error?: string): Action[] {
    return this.send({ type: 'probed', kind, epoch: this.state.epoch, ok, ...(error ? { error } : {}) });
  }
  /** A start-up line of vLLM's, as the log watch reports one the phase table knows. */
  line(text: string): Action[] {
    const l = recogniseLoadLine(text);
    if (!l) throw new Error(`not a start-up line the table knows: ${text}`);
    const { took: _t, ...said } = l;
    return this.send({ type: 'loadLine', epoch: this.state.epoch, line: text, ...said });
  }
  /** Through start-up, readiness and the first completion (the warm-up) to serving. */
  serving(): this {
    this.tick();
    this.probe('startup', true);
    this.tick();
    this.probe('readiness', true);
    this.tick();
    this.probe('warmup', true);
    return this;
  }
}
