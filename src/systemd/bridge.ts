// Tells systemd what the supervisor is doing (READY, STATUS, WATCHDOG, RELOADING, STOPPING); a no-op outside systemd.
import { readyDue, type ReadyMode } from '../core/machine/ready.js';
import type { Phase } from '../core/model/state.js';
import type { Logger } from '../log/logger.js';
import type { Notifier } from './notify.js';

/** How often EXTEND_TIMEOUT_USEC is sent while a load goes on (how far: `extendFor`). */
const EXTEND_EVERY_MS = 20_000;

export class SystemdBridge {
  private readySent = false;
  private timers: NodeJS.Timeout[] = [];
  private extendFor: () => number | undefined = () => undefined;
  private failedOnce = false;

  constructor(
    private readonly n: Notifier,
    private readonly log: Logger,
    public readyMode: ReadyMode,
  ) {}

  private send(fields: Record<string, string | number>): void {
    if (!this.n.active) return;
    const err = this.n.send(fields);
    if (err && !this.failedOnce) {
      this.failedOnce = true;
      this.log.log('warn', `sd_notify to $NOTIFY_SOCKET failed (${err})`);
    }
  }

  /** `extendFor` says how far to extend systemd's start timeout now (undefined: not at all). */
  start(extendFor: () => number | undefined): void {
    this.extendFor = extendFor;
    if (!this.n.active) return;
    // The watchdog is fed from the event loop itself: a wedged loop stops feeding it.
    const every = this.n.watchdogIntervalMs;
    if (every) this.timers.push(setInterval(() => this.send({ WATCHDOG: 1 }), every));
    this.timers.push(setInterval(() => this.extend(), EXTEND_EVERY_MS));
    this.extend();
  }

  private extend(): void {
    if (this.readySent) return;
    const ms = this.extendFor();
    if (ms !== undefined) this.send({ EXTEND_TIMEOUT_USEC: Math.round(ms * 1000) });
  }

  status(raw: string, phase: Phase): void {
    const line = this.log.scrub(raw);
    this.log.log('debug', `status: ${line}`, { state: phase });
    if (!this.readySent && readyDue(this.readyMode, phase)) {
      this.readySent = true;
      this.send({ READY: 1, STATUS: line });
      return;
    }
    this.send({ STATUS: line });
  }

  reloading(): void {
    this.send({ RELOADING: 1, MONOTONIC_USEC: String(process.hrtime.bigint() / 1000n) });
  }

  reloaded(): void {
    // systemd waits for READY=1 after RELOADING=1; before the first READY, the start goes on.
    if (this.readySent) this.send({ READY: 1 });
  }

  /** `budgetMs`: how long the stop may take (0: quick); systemd's stop timeout is extended to it. */
  stopping(budgetMs: number): void {
    this.send(budgetMs > 0 ? { STOPPING: 1, EXTEND_TIMEOUT_USEC: budgetMs * 1000 } : { STOPPING: 1 });
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
  }
}
