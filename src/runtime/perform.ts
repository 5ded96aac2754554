// The actions the state machine asks for, performed: container operations in the shell's queue,
// pulls, probes, the state file, log lines. What each means was decided; here it is only done.
import type { Upstream } from '../core/model/door.js';
import type { Action, Event, Persisted } from '../core/model/events.js';
import type { StatsLine } from '../core/rules/log-lines.js';
import type { StateStore } from '../state/store.js';
import { look, prepareSpec, reconcile, type EffectContext } from './effects/container.js';
import { lookAtEncodings } from './effects/encodings.js';
import { runProbe, type Prober } from './effects/probe.js';
import { Puller } from './effects/pull.js';

export interface PerformEnv extends EffectContext {
  dispatch: (ev: Event) => void;
  /** Runs `fn` in the queue of container operations. */
  op: (fn: () => Promise<void>) => void;
  store: StateStore | undefined;
  exit: (code: number) => void;
  /** vLLM's latest stats line (the engine probe's fallback). */
  stats: () => (StatsLine & { at: number }) | undefined;
  /** Where the running model answers (the probes' target). */
  upstream: () => Upstream;
  /** A planned stop: the gate lets what is in flight finish first (at once when there is no gate). */
  drain: (ms: number) => Promise<void>;
  prober?: Prober;
}

export class Effects {
  private readonly puller: Puller;
  /** state.json writes, in order, beside the container operations (a restart does not wait for an fsync). */
  private writes: Promise<void> = Promise.resolve();

  constructor(private readonly env: PerformEnv) {
    this.puller = new Puller(env.engine, env.log, env.dispatch);
  }

  /** Runs `fn` in the operation queue and dispatches the event it answers. */
  private queued(fn: () => Promise<Event>): void {
    this.env.op(async () => this.env.dispatch(await fn()));
  }

  perform(a: Action): void {
    const { env } = this;
    switch (a.type) {
      case 'observe':
        return this.queued(() => look(env));
      case 'reconcile':
        return this.queued(async () => {
          if (a.drain) await env.drain(a.drain);
          return reconcile(env, a);
        });
      case 'prepare':
        return this.queued(() => prepareSpec(env, a.spec));
      case 'stopContainer':
        return this.queued(async () => {
          if (a.drain) await env.drain(a.drain);
          await env.engine.stop(a.id, a.timeout).catch((err: unknown) => {
            env.log.log('warn', `stopping ${env.desired().spec.name}: ${(err as Error).message}`);
          });
          return { type: 'containerStopped' };
        });
      case 'killContainer':
        // At once, outside the queue: a reconcile or a stop under way must not hold it up.
        void env.engine.kill(a.id, 'SIGKILL').catch((err: unknown) => {
          env.log.log('error', `memory guard: killing ${env.desired().spec.name}: ${(err as Error).message}`);
        });
        return;
      case 'pull':
        return this.puller.start(a.image, env.desired().config.container.registryAuth);
      case 'abortPull':
        return this.puller.abort();
      case 'checkEncodings': {
        const c = env.desired().config;
        void lookAtEncodings(env.encodings, c.paths.encodings, c.encodings.verify).then(env.dispatch);
        return;
      }
      case 'probe':
        void runProbe(a, env.desired(), env.upstream(), env.stats, env.prober).then(env.dispatch);
        return;
      case 'persist':
        return this.persist(a.record);
      case 'log':
        return env.log.log(a.level, a.msg, { event: a.event, ...a.fields });
      case 'exit':
        return env.exit(a.code);
    }
  }

  /** state.json, in order; log tails and failure texts go into it: never a secret with them. */
  private persist(record: Persisted): void {
    const { store, log } = this.env;
    if (!store) return;
    const clean = JSON.parse(log.scrub(JSON.stringify(record))) as Persisted;
    const failed = (err: unknown) =>
      log.log('warn', `cannot save the restart count in ${store.file}: ${(err as Error).message}`);
    this.writes = this.writes.then(() => store.save(clean).catch(failed));
  }

  /** Supervision is over: a pull under way stops. */
  stop(): void {
    this.puller.abort();
  }

  /** Resolves once every state.json write asked for is done. */
  written(): Promise<void> {
    return this.writes;
  }
}
