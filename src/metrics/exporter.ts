// /metrics for Prometheus (prom-client): the supervisor's state, restarts, probes, loads and the engine's load.
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import { BlockList, isIP, type Socket } from 'node:net';
import type { Settings } from '../core/model/settings.js';
import { parseListen } from '../config/schema-monitoring.js';
import { restartCause } from '../core/rules/alerts.js';
import { type Event, LOAD_PHASES } from '../core/model/events.js';
import { isRunning, PHASES, type State } from '../core/model/state.js';
import { THROTTLE_REASONS } from '../core/model/host.js';
import type { Logger } from '../log/logger.js';
import type { RequestRecord } from '../core/model/door.js';

type PromClient = typeof import('prom-client');

const P = 'gptoss_supervisor_';
/** Retried this often while the address is taken. */
const RETRY_LISTEN_MS = 30_000;

/**
 * What one client may hold: a scraper needs a connection or two, and a flood of idle ones (held until
 * the process ran out of file descriptors) is cut at `maxConnections` (more are closed at once) and
 * closed after `idleTimeoutMs` without a byte; a request must be in within the headers' and request's
 * timeouts (a trickle of bytes keeps no connection forever).
 */
export interface ServeLimits {
  maxConnections: number;
  idleTimeoutMs: number;
}
const LIMITS: ServeLimits = { maxConnections: 16, idleTimeoutMs: 5_000 };
const HEADERS_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 10_000;
/** Addresses whose refusal was said at warning (the rest at debug): a scanner cannot fill the journal. */
const REFUSALS_SAID = 16;

/** Who may connect: loopback, and the scrapers the config names (metrics.allowFrom: an IP or ADDRESS/BITS). */
export function allowList(allowFrom: readonly string[]): BlockList {
  const list = new BlockList();
  list.addSubnet('127.0.0.0', 8, 'ipv4');
  list.addAddress('::1', 'ipv6');
  for (const a of allowFrom) {
    const [ip = '', bits] = a.split('/');
    const type = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(ip, type);
    else list.addSubnet(ip, Number(bits), type);
  }
  return list;
}

/** A peer's address as the list knows it: an IPv4 client of an IPv6 socket arrives as ::ffff:a.b.c.d. */
export function peer(address: string | undefined): { ip: string; type: 'ipv4' | 'ipv6' } | undefined {
  if (!address) return undefined;
  const ip = address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
  const v = isIP(ip);
  return v === 0 ? undefined : { ip, type: v === 4 ? 'ipv4' : 'ipv6' };
}

export interface MetricsContext {
  image: string;
  model: string;
  servedName: string;
  container: string;
}

/** The GPUs' telemetry and the decode speed. */
function hostMetricsOf(g: (name: string, help: string, labelNames?: string[]) => InstanceType<PromClient['Gauge']>) {
  return {
    smClock: g('gpu_sm_clock_mhz', 'The GPU SM clock while the model serves (nvidia-smi clocks.sm).', ['gpu']),
    smClockMax: g('gpu_sm_clock_max_mhz', 'The GPU SM clock maximum (nvidia-smi clocks.max.sm).', ['gpu']),
    temperature: g('gpu_temperature_celsius', 'The GPU temperature (nvidia-smi temperature.gpu).', ['gpu']),
    power: g('gpu_power_watts', 'The power the GPU draws (nvidia-smi power.draw).', ['gpu']),
    throttled: g('gpu_throttled', "1 while a clock event (throttle) reason is active, by nvidia-smi's name for it.", [
      'gpu',
      'reason',
    ]),
    decode: g('decode_seconds_per_token', 'Decode time per token and request over health.slow.window.'),
    decodeBaseline: g('decode_baseline_seconds_per_token', "The spec's decode-speed baseline (health.slow)."),
  };
}

function metricsOf(c: PromClient, register: InstanceType<PromClient['Registry']>) {
  const g = (name: string, help: string, labelNames: string[] = []) =>
    new c.Gauge({ name: P + name, help, labelNames, registers: [register] });
  const n = (name: string, help: string, labelNames: string[] = []) =>
    new c.Counter({ name: P + name, help, labelNames, registers: [register] });
  return {
    state: g('state', 'The supervisor state: 1 for the current one, 0 for the others.', ['state']),
    servingSince: g('serving_since_seconds', 'When the model began serving (unix time), 0 when it does not serve.'),
    restartsInARow: g('restarts_in_a_row', 'Restarts in a row (reset after restart.resetAfter of serving).'),
    restarts: n('restarts_total', 'Restarts of the model container after a failure, by cause (diagnosis code).', [
      'cause',
    ]),
    lastExit: g('last_exit_code', 'The model container last exit code, -1 when none is known.'),
    rollbacks: n('rollbacks_total', 'Rollbacks to the last good spec, by the refused spec diagnosis code.', ['code']),
    rolledBack: g('rolled_back', '1 while a rollback is in force (the config spec refused, the last good one runs).'),
    info: g('info', 'The image and model supervised (value 1).', ['image', 'model', 'served_model', 'container']),
    configValid: g('config_valid', '1 when the config on disk is valid, 0 while a rejected edit waits to be fixed.'),
    configErrors: n('config_errors_total', 'Config edits refused for an error.'),
    probe: new c.Histogram({
      name: `${P}probe_duration_seconds`,
      help: 'Probes of the model by kind (startup, liveness, readiness, engine, deep) and result.',
      labelNames: ['kind', 'result'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [register],
    }),
    deepOk: g('deep_probe_success', 'The last scheduled deep probe: 1 passed, 0 failed (absent before the first).'),
    deepAt: g('deep_probe_timestamp_seconds', 'When the last scheduled deep probe ran (unix time).'),
    loadPhase: g('load_phase', 'The phase of the load in progress: 1 for the current one.', ['phase']),
    lastLoad: g('last_load_duration_seconds', 'How long the last load that reached serving took (downloads left out).'),
    lastLoadPhase: g('last_load_phase_duration_seconds', 'The last load that reached serving, by phase.', ['phase']),
    pullBytes: g('image_pull_bytes', 'Bytes of the image pull in progress (or the last one).'),
    pullTotal: g('image_pull_total_bytes', 'Size of the image pull in progress, as far as Docker knows it.'),
    pulls: n('image_pulls_total', 'Image pulls by result.', ['result']),
    running: g('engine_requests_running', "vLLM's requests running, as last sampled."),
    waiting: g('engine_requests_waiting', "vLLM's requests waiting, as last sampled."),
    kv: g('engine_kv_cache_usage_ratio', "vLLM's KV cache in use (0..1), as last sampled."),
    tokens: n('engine_generation_tokens_total', 'Tokens vLLM generated, as its counter grows (across its restarts).'),
    alerts: n('alerts_total', 'Alert deliveries by webhook and result.', ['webhook', 'result']),
    ...hostMetricsOf(g),
    requests: n('requests_total', 'Requests through the gate by how they ended for the client.', ['outcome']),
    inFlight: g('requests_in_flight', 'Requests the gate is forwarding to the model now.'),
    held: g('requests_held', 'Requests the gate holds until the model serves.'),
    duration: new c.Histogram({
      name: `${P}request_duration_seconds`,
      help: 'Requests through the gate: from arrival to the end of the answer (held time included).',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers: [register],
    }),
    ttft: new c.Histogram({
      name: `${P}time_to_first_token_seconds`,
      help: "Requests through the gate: from arrival to the answer's first byte (held time included).",
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120],
      registers: [register],
    }),
  };
}

/** The exporter: metrics kept up to date from the supervisor's states and events, served over HTTP. */
export class MetricsExporter {
  private server: Server | undefined;
  private retry: NodeJS.Timeout | undefined;
  private listen: string | null = null;
  private allowed = allowList([]);
  private readonly refused = new Set<string>();
  private lastTokens: number | undefined;
  private readonly register;
  private readonly m;

  private constructor(
    private readonly client: PromClient,
    private readonly log: Logger,
    private readonly limits: ServeLimits,
  ) {
    this.register = new client.Registry();
    // The event-loop delay sampled once a second, not every 10 ms (prom-client's default): a daemon that
    // mostly waits would spend most of its idle CPU sampling itself.
    client.collectDefaultMetrics({ register: this.register, prefix: P, eventLoopMonitoringPrecision: 1000 });
    // Gauges that prom-client names like counters (promtool refuses them): left out.
    for (const n of ['active_handles_total', 'active_requests_total', 'active_resources_total'])
      this.register.removeSingleMetric(`${P}nodejs_${n}`);
    this.m = metricsOf(client, this.register);
  }

  /** prom-client is loaded only when /metrics is on: an off switch costs nothing. */
  static create(log: Logger, limits: ServeLimits = LIMITS): MetricsExporter {
    const client = createRequire(import.meta.url)('prom-client') as PromClient;
    return new MetricsExporter(client, log, limits);
  }

  /**
   * Serves on `listen` (HOST:PORT), moving when it changes; null stops serving. Connections from
   * anywhere but loopback and `allowFrom` are closed unanswered (the unit's firewall says the same under
   * systemd; this holds wherever the daemon runs).
   */
  serve(listen: string | null, allowFrom: readonly string[] = []): void {
    this.allowed = allowList(allowFrom);
    if (listen === this.listen) return;
    this.close();
    this.listen = listen;
    if (listen) this.open(listen);
  }

  private open(listen: string): void {
    const at = parseListen(listen);
    if (!at) return;
    // node:http is loaded only when /metrics is on (an ESM import of it costs the daemon ~3 MiB).
    const { createServer } = createRequire(import.meta.url)('node:http') as typeof import('node:http');
    const server = createServer(
      {
        headersTimeout: HEADERS_TIMEOUT_MS,
        requestTimeout: REQUEST_TIMEOUT_MS,
        // How often those two are looked at (Node's default, 30 s, would let a trickle live that long).
        connectionsCheckingInterval: HEADERS_TIMEOUT_MS,
      },
      (req, res) => {
        if (req.method === 'GET' && (req.url === '/metrics' || req.url?.startsWith('/metrics?'))) {
          this.register.metrics().then(
            (body) => res.writeHead(200, { 'Content-Type': this.register.contentType }).end(body),
            (err: Error) => res.writeHead(500).end(err.message),
          );
          return;
        }
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('gptoss-supervisor: see /metrics\n');
      },
    );
    server.maxConnections = this.limits.maxConnections;
    server.on('connection', (s: Socket) => this.screen(s));
    // No 'timeout' listener: Node destroys a socket idle this long.
    server.setTimeout(this.limits.idleTimeoutMs);
    server.keepAliveTimeout = Math.min(server.keepAliveTimeout, this.limits.idleTimeoutMs);
    server.on('error', (err: NodeJS.ErrnoException) => {
      const why = `${err.code ?? err.message}${err.code === 'EADDRINUSE' ? ': the address is in use' : ''}`;
      this.log.log(
        'warn',
        `metrics.listen ${listen}: cannot listen (${why}); /metrics is off, tried again every ` +
          `${RETRY_LISTEN_MS / 1000}s; supervision goes on`,
      );
      server.close();
      if (this.server === server) this.server = undefined;
      this.retry = setTimeout(() => {
        if (this.listen === listen && !this.server) this.open(listen);
      }, RETRY_LISTEN_MS);
      this.retry.unref();
    });
    server.listen(at.port, at.host, () => this.log.log('info', `/metrics on http://${listen}/metrics`));
    this.server = server;
  }

  /** A connection from an address the config does not name: closed before a byte is read. */
  private screen(s: Socket): void {
    const p = peer(s.remoteAddress);
    if (p && this.allowed.check(p.ip, p.type)) return;
    s.destroy();
    const who = p?.ip ?? 'an unknown address';
    const first = !this.refused.has(who) && this.refused.size < REFUSALS_SAID;
    if (first) this.refused.add(who);
    this.log.log(
      first ? 'warn' : 'debug',
      `/metrics: refused a connection from ${who}: not loopback and not in metrics.allowFrom ` +
        '(add the scraper there to let it in)',
    );
  }

  close(): void {
    clearTimeout(this.retry);
    this.server?.close();
    this.server?.closeAllConnections();
    this.server = undefined;
  }

  /** The gauges that follow the state (called after every event and every second). */
  state(s: State, t: Settings, c: MetricsContext): void {
    const m = this.m;
    for (const p of PHASES) m.state.set({ state: p }, s.phase === p ? 1 : 0);
    const since = s.phase === 'serving' ? s.run.probes.servingSince : undefined;
    m.servingSince.set(since ? since / 1000 : 0);
    m.restartsInARow.set(s.history.restarts);
    m.rolledBack.set(s.history.rollback ? 1 : 0);
    m.lastExit.set(s.history.lastExit?.code ?? -1);
    m.info.reset();
    m.info.set({ image: c.image, model: c.model, served_model: c.servedName, container: c.container }, 1);
    m.configValid.set(s.configError ? 0 : 1);
    const phase = isRunning(s) && s.phase === 'loading' ? s.run.load?.phase : undefined;
    for (const p of LOAD_PHASES) m.loadPhase.set({ phase: p }, p === phase ? 1 : 0);
    const last = s.history.lastLoad;
    if (last?.spec === t.specHash) {
      m.lastLoad.set(last.took / 1000);
      for (const [p, ms] of Object.entries(last.phases)) m.lastLoadPhase.set({ phase: p }, ms / 1000);
    }
    const deep = s.history.lastDeep;
    if (deep) {
      m.deepOk.set(deep.ok ? 1 : 0);
      m.deepAt.set(deep.at / 1000);
    }
    m.inFlight.set(s.door?.inFlight ?? 0);
    m.held.set(s.door?.held ?? 0);
    this.host(s, t);
    const e = isRunning(s) ? s.run.engine?.last : undefined;
    if (e) {
      m.running.set(e.running);
      m.waiting.set(e.waiting);
      if (e.kvCache !== undefined) m.kv.set(e.kvCache);
    }
  }

  /** The GPUs' telemetry and the decode speed, while a run has them (absent otherwise). */
  private host(s: State, t: Settings): void {
    const m = this.m;
    for (const x of [m.smClock, m.smClockMax, m.temperature, m.power, m.throttled, m.decode]) x.reset();
    for (const gpu of (isRunning(s) && s.run.gpu?.gpus) || []) {
      const label = { gpu: String(gpu.index) };
      if (gpu.smMhz !== undefined) m.smClock.set(label, gpu.smMhz);
      if (gpu.smMaxMhz !== undefined) m.smClockMax.set(label, gpu.smMaxMhz);
      if (gpu.temperature !== undefined) m.temperature.set(label, gpu.temperature);
      if (gpu.powerW !== undefined) m.power.set(label, gpu.powerW);
      for (const reason of THROTTLE_REASONS)
        m.throttled.set({ ...label, reason }, gpu.reasons.includes(reason) ? 1 : 0);
    }
    const recent = isRunning(s) ? s.run.decode?.recent : undefined;
    if (recent !== undefined) m.decode.set(recent);
    const base = s.history.decode;
    if (base?.spec === t.specHash && base.secondsPerToken !== undefined) m.decodeBaseline.set(base.secondsPerToken);
  }

  /** The counters and histograms that follow events. */
  event(ev: Event, before: State, after: State): void {
    const m = this.m;
    if (after.history.totalRestarts > before.history.totalRestarts) m.restarts.inc({ cause: restartCause(after) });
    const rb = after.history.rollback;
    if (rb && rb.at !== before.history.rollback?.at) m.rollbacks.inc({ code: rb.code });
    switch (ev.type) {
      case 'probed':
        if (ev.ms !== undefined) m.probe.observe({ kind: ev.kind, result: ev.ok ? 'ok' : 'failed' }, ev.ms / 1000);
        if (ev.sample?.generated !== undefined) this.tokens(ev.sample.generated);
        return;
      case 'configRejected':
        m.configErrors.inc();
        return;
      case 'pullProgress':
        m.pullBytes.set(ev.summary.bytes);
        m.pullTotal.set(ev.summary.totalBytes);
        return;
      case 'pulled':
        m.pulls.inc({ result: 'ok' });
        return;
      case 'pullFailed':
        if (!ev.aborted) m.pulls.inc({ result: 'failed' });
        return;
      default:
        return;
    }
  }

  /** Requests that ended at the gate. */
  requests(records: readonly RequestRecord[]): void {
    const m = this.m;
    for (const r of records) {
      m.requests.inc({ outcome: r.outcome });
      m.duration.observe(r.ms / 1000);
      if (r.ttftMs !== undefined) m.ttft.observe(r.ttftMs / 1000);
    }
  }

  alert(webhook: string, ok: boolean): void {
    this.m.alerts.inc({ webhook, result: ok ? 'sent' : 'failed' });
  }

  /** vLLM's counter restarts with vLLM: what it gained since the last look, or all of it after a reset. */
  private tokens(n: number): void {
    const prev = this.lastTokens;
    this.lastTokens = n;
    const d = prev === undefined ? 0 : n >= prev ? n - prev : n;
    if (d > 0) this.m.tokens.inc(d);
  }

  /** The exposition, as a scrape would read it (alert-test and tests). */
  text(): Promise<string> {
    return this.register.metrics();
  }
}
