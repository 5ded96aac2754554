// The watchers the state machine subscribes to (core/machine/subscriptions.ts), kept in step with
// its answer: started when asked for, stopped when no longer asked for, left alone otherwise.
import { subscriptionKey, type Subscription } from '../core/machine/subscriptions.js';
import type { RequestRecord } from '../core/model/door.js';
import type { Event } from '../core/model/events.js';
import type { StatsLine } from '../core/rules/log-lines.js';
import { ContainerEvents } from '../docker/events.js';
import { Jobs } from './cron.js';
import { exitFromEvent, look, type EffectContext } from './effects/container.js';
import { lookAtEncodings, watchEncodings } from './effects/encodings.js';
import { LogWatch } from './effects/engine-log.js';
import { memoryWatch, telemetryWatch } from './effects/host.js';
import { ApiKeys } from './api-keys.js';
import { GateLink } from './gate-link.js';

export interface Watcher {
  stop(): void | Promise<void>;
  /** Resolves once the watcher is in place (a file watcher's first scan); undefined: at once. */
  ready?: Promise<void>;
  /** vLLM's latest stats line, where the watcher follows the model's log. */
  stats?: (StatsLine & { at: number }) | undefined;
  /** The gate's control connection, where the watcher is the gate's. */
  link?: GateLink;
  /** The API keys' hashes, where the watcher is gate.apiKeyFile's. */
  keys?: () => string[];
}

export interface WatchEnv extends EffectContext {
  dispatch: (ev: Event) => void;
  /** Runs `fn` in the queue of container operations. */
  op: (fn: () => Promise<void>) => void;
  /** docker.service's state from systemd (D-Bus), to say why the engine went away. */
  dockerUnitState?: () => Promise<string | undefined>;
  /** Follow the model's log (tests without Docker turn it off). */
  followLogs: boolean;
  /** The gate's control socket under systemd; undefined: the gate runs as a child process. */
  gateControl?: string;
  /** The state directory (the child gate's control socket goes there). */
  stateDir?: string;
  onDoorRecords: (r: RequestRecord[]) => void;
  /** The API keys changed: tell the gate. */
  keysChanged: () => void;
}

/**
 * The event stream broke. When systemd is stopping docker.service, that is the reason to give (the
 * stream's own error, "aborted", says nothing), whichever of the two was heard first.
 */
async function engineLost(env: WatchEnv, message: string): Promise<void> {
  const unit = await env.dockerUnitState?.();
  const why = unit && unit !== 'active' ? `docker.service is ${unit} (systemctl stop or restart docker)` : message;
  env.dispatch({ type: 'engineLost', message: why });
}

/** The gate's control connection (and, outside systemd, the gate itself). */
function gateWatcher(sub: Extract<Subscription, { kind: 'gate' }>, env: WatchEnv): Watcher {
  const link = new GateLink({
    log: env.log,
    ...(env.gateControl ? { control: env.gateControl } : {}),
    ...(env.stateDir ? { childDir: env.stateDir } : {}),
    listen: { host: sub.host, port: sub.port },
    onReport: (report) => env.dispatch({ type: 'doorReport', report }),
    onRecords: env.onDoorRecords,
  });
  link.start();
  return { link, stop: () => link.stop() };
}

const NOTHING: Watcher = { stop: () => undefined };

/** Starts the watcher a subscription asks for. */
export function startWatcher(sub: Subscription, env: WatchEnv): Watcher {
  const warn = (msg: string) => env.log.log('warn', msg);
  switch (sub.kind) {
    case 'container-events': {
      const events = new ContainerEvents(
        env.engine,
        sub.name,
        {
          exited: (id, code, oom) => env.op(async () => env.dispatch(await exitFromEvent(env, id, code, oom))),
          changed: () => env.op(async () => env.dispatch(await look(env))),
          lost: (message) => void engineLost(env, message),
          back: () => env.dispatch({ type: 'engineBack' }),
        },
        undefined,
        env.now,
      );
      events.start();
      return { stop: () => events.stop() };
    }
    case 'container-log': {
      if (!env.followLogs) return NOTHING;
      const w = new LogWatch({
        engine: env.engine,
        id: sub.id,
        epoch: sub.epoch,
        sinceSec: sub.since / 1000,
        live: sub.live,
        dispatch: env.dispatch,
        warn,
        now: env.now,
      });
      void w.start();
      return w;
    }
    case 'encodings': {
      const changed = () => {
        env.encodings.forget();
        void lookAtEncodings(env.encodings, sub.dir, sub.verify).then(env.dispatch);
      };
      const w = watchEncodings(sub.dir, changed, warn);
      return { ready: w.start(), stop: () => w.stop() };
    }
    case 'jobs': {
      const jobs = new Jobs((job) => env.dispatch({ type: 'scheduled', job }), warn, env.now);
      jobs.set(sub);
      return { stop: () => jobs.stop() };
    }
    case 'gate':
      return gateWatcher(sub, env);
    case 'api-keys': {
      const keys = new ApiKeys(sub.file, env.keysChanged, (level, msg) => env.log.log(level, msg));
      return { keys: () => keys.hashes, ready: keys.start(), stop: () => keys.stop() };
    }
    case 'memory-sampler':
      return memoryWatch(sub, env.engine, env.dispatch);
    case 'gpu-telemetry':
      return telemetryWatch(sub, () => env.desired().config.gpu.nvidiaSmi, env.dispatch);
  }
}

export class Watchers {
  private readonly running = new Map<string, Watcher>();

  constructor(private readonly start: (sub: Subscription) => Watcher) {}

  /** Starts what is wanted and not running; stops what runs and is no longer wanted. */
  sync(wanted: readonly Subscription[]): void {
    const keys = new Map(wanted.map((s) => [subscriptionKey(s), s]));
    for (const [k, w] of this.running) {
      if (keys.has(k)) continue;
      this.running.delete(k);
      void w.stop();
    }
    for (const [k, s] of keys) if (!this.running.has(k)) this.running.set(k, this.start(s));
  }

  /** Resolves once every running watcher is in place. */
  async ready(): Promise<void> {
    for (const w of [...this.running.values()]) await w.ready;
  }

  /** vLLM's latest stats line, from the log watcher, when one runs and has seen it. */
  stats(): (StatsLine & { at: number }) | undefined {
    for (const w of this.running.values()) if (w.stats) return w.stats;
    return undefined;
  }

  /** The gate's control connection, when a gate runs. */
  gate(): GateLink | undefined {
    for (const w of this.running.values()) if (w.link) return w.link;
    return undefined;
  }

  /** The API keys' hashes (none when no key file is set). */
  apiKeys(): string[] {
    for (const w of this.running.values()) if (w.keys) return w.keys();
    return [];
  }

  /** What each running watcher is, by its key (tests and `status` of the shell). */
  names(): string[] {
    return [...this.running.keys()];
  }

  async stopAll(): Promise<void> {
    const all = [...this.running.values()];
    this.running.clear();
    await Promise.all(all.map(async (w) => w.stop()));
  }
}
