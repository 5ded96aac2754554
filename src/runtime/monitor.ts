// Telling the operator: /metrics and the alert webhooks, fed from the supervisor's events and states.
import { Alerts } from '../alerts/webhooks.js';
import type { Config } from '../config/schema.js';
import { alertsOf } from '../core/rules/alerts.js';
import { RequestStats, sloAlert } from '../core/rules/requests.js';
import type { RequestRecord } from '../core/model/door.js';
import type { Event } from '../core/model/events.js';
import type { State } from '../core/model/state.js';
import type { Logger } from '../log/logger.js';
import { MetricsExporter } from '../metrics/exporter.js';
import type { Desired } from '../desired/desired.js';

export class Monitor {
  private metrics: MetricsExporter | undefined;
  private alerts: Alerts | undefined;
  private d: Desired;
  /** What clients experienced at the gate over the last hour (status, D-Bus, the `slo` alert). */
  readonly requests = new RequestStats();

  constructor(
    private readonly log: Logger,
    d: Desired,
  ) {
    this.d = d;
    this.apply(d);
  }

  /** The config's metrics and alerts sections, applied (at start and on every reload). */
  apply(d: Desired): void {
    this.d = d;
    const c: Config = d.config;
    if (c.metrics.listen) this.metrics ??= MetricsExporter.create(this.log);
    this.metrics?.serve(c.metrics.listen, c.metrics.allowRemote ? c.metrics.allowFrom : []);
    const a = c.alerts;
    if (a.webhooks.length && !this.alerts)
      this.alerts = new Alerts(
        { log: this.log, retries: a.retries, rateLimit: a.rateLimit, onResult: (w, ok) => this.metrics?.alert(w, ok) },
        a.webhooks,
      );
    else this.alerts?.configure(a.webhooks, a);
  }

  event(ev: Event, before: State, after: State): void {
    this.metrics?.event(ev, before, after);
    if (!this.alerts || before === after) return;
    for (const a of alertsOf(ev, before, after, this.d.config.model.servedName)) this.alerts.raise(a);
  }

  state(s: State, line: string, now: number): void {
    const c = this.d.config;
    this.metrics?.state(s, this.d.settings, {
      image: c.container.image,
      model: c.model.id,
      servedName: c.model.servedName,
      container: c.container.name,
    });
    this.alerts?.waiting(s, now, c.model.servedName, line);
    this.alerts?.throttled(s, now, c.gpu.throttleAlertAfter, c.model.servedName);
  }

  /** Requests that ended at the gate: metrics, the last hour's figures, and the `slo` alert. */
  records(rs: readonly RequestRecord[], now: number): void {
    this.metrics?.requests(rs);
    this.requests.add(rs);
    const slo = this.d.config.alerts.slo;
    const a = sloAlert(this.requests.summary(now, slo.window), slo, now, this.d.config.model.servedName);
    if (a) this.alerts?.raise(a, now);
  }

  stop(): void {
    this.metrics?.close();
  }
}
