// The gate's process: the door on its listening socket (systemd's, or its own), the control socket
// the supervisor connects to, and the records and reports it sends back.
import { createServer, type Server, type Socket } from 'node:net';
import { chmod, rm } from 'node:fs/promises';
import type { DoorReport, RequestRecord } from '../core/model/door.js';
import type { Logger } from '../log/logger.js';
import { CONTROL_VERSION, onLines, send, type ToGate } from './control.js';
import { Door } from './door.js';

export interface GateOptions {
  log: Logger;
  /** Where to listen for clients when systemd passes no socket: `HOST:PORT`. */
  listen?: { host: string; port: number };
  /** The control socket's path when systemd passes none. */
  control?: string;
  /** Sockets systemd passed (LISTEN_FDS), by name: `http`, `control`. */
  fds?: { http?: number; control?: number };
  /** Told once the door listens (READY=1). */
  onListening?: () => void;
}

/** Records are sent in batches, this often. */
const FLUSH_MS = 250;
/** Records kept while no supervisor listens; the oldest go first. */
const MAX_RECORDS = 10_000;
/** A port taken by another process is tried again this often. */
const RETRY_LISTEN_MS = 1000;

export class Gate {
  readonly door: Door;
  private supervisor: Socket | undefined;
  private control: Server | undefined;
  private records: RequestRecord[] = [];
  private report: DoorReport = { held: 0, inFlight: 0, listening: false };
  private flushTimer: NodeJS.Timeout | undefined;
  private listenTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private drainTimeout = 60_000;

  constructor(private readonly o: GateOptions) {
    this.door = new Door({
      onRecord: (r) => {
        this.records.push(r);
        if (this.records.length > MAX_RECORDS) this.records.splice(0, this.records.length - MAX_RECORDS);
      },
      onReport: (r) => {
        this.report = r;
        send(this.supervisor, { t: 'report', report: r });
      },
      log: (level, msg) => o.log.log(level, msg),
    });
  }

  async start(): Promise<void> {
    await this.listenControl();
    this.listenHttp();
    this.flushTimer = setInterval(() => this.flush(), FLUSH_MS);
    this.flushTimer.unref();
  }

  /**
   * SIGTERM: no new connection, what is in flight finishes (up to the drain timeout), then exit.
   * `graceMs` shortens that (a child whose supervisor is gone has no one to drain for).
   */
  async stop(graceMs = this.drainTimeout): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.listenTimer);
    await this.door.close(Math.min(graceMs, this.drainTimeout));
    this.flush();
    clearInterval(this.flushTimer);
    this.supervisor?.end();
    this.control?.close();
    if (!this.o.fds?.control && this.o.control) await rm(this.o.control, { force: true });
  }

  private listenHttp(): void {
    const server = this.door.server;
    const fd = this.o.fds?.http;
    const listening = () => {
      this.door.setListening(true);
      this.o.log.log(
        'info',
        `gate listening on ${fd !== undefined ? `systemd's socket (fd ${fd})` : show(this.o.listen)}`,
      );
      this.o.onListening?.();
    };
    if (fd !== undefined) return void server.listen({ fd }, listening);
    const at = this.o.listen;
    if (!at) throw new Error('no socket from systemd and no --listen address');
    server.once('listening', listening);
    server.on('error', (err: NodeJS.ErrnoException) => {
      if (this.stopped || server.listening) return;
      const why =
        err.code === 'EADDRINUSE'
          ? `port ${at.port} is in use (by a container that publishes it itself, until its next planned recreate?)`
          : `${err.code ?? ''} ${err.message}`.trim();
      this.door.setListening(false, why);
      this.listenTimer = setTimeout(() => server.listen(at.port, at.host), RETRY_LISTEN_MS);
    });
    server.listen(at.port, at.host);
  }

  private async listenControl(): Promise<void> {
    const server = createServer((s) => this.accept(s));
    this.control = server;
    const fd = this.o.fds?.control;
    if (fd !== undefined) return new Promise((r) => server.listen({ fd }, r));
    const path = this.o.control;
    if (!path) throw new Error('no control socket from systemd and no --control path');
    await rm(path, { force: true });
    await new Promise<void>((r, j) => {
      server.once('error', j);
      server.listen(path, () => r());
    });
    // Only root (the supervisor) and this process's user may give orders.
    await chmod(path, 0o600);
  }

  /** The supervisor connected: it is the one that gives orders from now on. */
  private accept(s: Socket): void {
    this.supervisor?.destroy();
    this.supervisor = s;
    s.on('error', () => undefined);
    s.on('close', () => {
      if (this.supervisor === s) this.supervisor = undefined;
    });
    send(s, { t: 'hello', pid: process.pid, version: CONTROL_VERSION });
    send(s, { t: 'report', report: this.report });
    onLines(s, (m) => void this.order(s, m as ToGate));
  }

  private async order(s: Socket, m: ToGate): Promise<void> {
    if (s !== this.supervisor) return;
    switch (m.t) {
      case 'view':
        this.drainTimeout = m.view.drainTimeout;
        this.door.update(m.view);
        return;
      case 'drain': {
        const r = await this.door.drain(m.timeout);
        this.o.log.log('info', `drained: ${r.finished} finished, ${r.replayed} kept to send again, ${r.cut} cut`);
        send(this.supervisor, { t: 'drained', id: m.id, ...r });
        return;
      }
      case 'resume':
        this.door.resume();
        return;
    }
  }

  private flush(): void {
    if (!this.supervisor || this.records.length === 0) return;
    send(this.supervisor, { t: 'records', records: this.records.splice(0) });
  }
}

const show = (a: { host: string; port: number } | undefined) =>
  a ? `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}` : '?';
