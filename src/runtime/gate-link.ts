// The supervisor's end of the gate's control socket: the door's orders out, its reports and records in.
// Under systemd the gate is its own unit (gptoss-gate.service); elsewhere it is a child process.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DoorReport, DoorView, RequestRecord } from '../core/model/door.js';
import { onLines, send, type FromGate } from '../gate/control.js';
import type { Logger } from '../log/logger.js';

export interface GateLinkOptions {
  log: Logger;
  /** The gate's control socket (systemd's gptoss-gate); undefined: run the gate as a child process. */
  control?: string;
  /**
   * The child gate's control socket goes in this folder (the state directory): a supervisor killed
   * outright leaves one socket file there, taken over by the next, not a folder in /tmp per run.
   * Undefined, or a path too long for a socket: a folder of its own in the temp directory.
   */
  childDir?: string;
  /** Where the child gate listens for clients. */
  listen: { host: string; port: number };
  onReport(r: DoorReport): void;
  onRecords(r: RequestRecord[]): void;
}

/** Reconnects after a broken control connection: first soon, then at most this often. */
const RECONNECT_MS = [100, 250, 500, 1000, 2000];
/** A drain is answered within its timeout; past this much more, the stop goes on without the answer. */
const DRAIN_SLACK_MS = 5000;
/** A Unix socket's path is at most 107 bytes (sun_path). */
const SOCKET_PATH_MAX = 107;

export class GateLink {
  private socket: Socket | undefined;
  private child: ChildProcess | undefined;
  private dir: string | undefined;
  private path: string | undefined;
  private view: DoorView | undefined;
  private sentView = '';
  private tries = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private nextId = 1;
  private readonly drains = new Map<number, () => void>();

  constructor(private readonly o: GateLinkOptions) {}

  start(): void {
    void this.begin();
  }

  private async begin(): Promise<void> {
    if (this.o.control) this.path = this.o.control;
    else {
      const inState = await this.stateSocket();
      if (inState) this.path = inState;
      else {
        this.dir = await mkdtemp(join(tmpdir(), 'gptoss-gate-'));
        this.path = join(this.dir, 'control.sock');
      }
      this.spawnChild();
    }
    this.connect();
  }

  /** The child gate's control socket in the state directory (made if it is not there yet), if it can be. */
  private async stateSocket(): Promise<string | undefined> {
    const dir = this.o.childDir;
    const path = dir && join(dir, 'gate-control.sock');
    if (!dir || !path || Buffer.byteLength(path) > SOCKET_PATH_MAX) return undefined;
    return mkdir(dir, { recursive: true, mode: 0o755 }).then(
      () => path,
      () => undefined,
    );
  }

  /** The door's orders; sent when they change (and again after every reconnect). */
  update(view: DoorView): void {
    this.view = view;
    const text = JSON.stringify(view);
    if (text === this.sentView || !this.socket) return;
    this.sentView = text;
    send(this.socket, { t: 'view', view });
  }

  /** A planned stop: resolves once the gate has drained (or cannot be asked, or took too long). */
  drain(timeoutMs: number): Promise<void> {
    const s = this.socket;
    if (!s) return Promise.resolve();
    const id = this.nextId++;
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.drains.delete(id);
        resolve();
      };
      const t = setTimeout(done, timeoutMs + DRAIN_SLACK_MS);
      this.drains.set(id, done);
      send(s, { t: 'drain', id, timeout: timeoutMs });
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.socket?.end();
    for (const d of [...this.drains.values()]) d();
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      // It drains what it has in flight first; one that does not go in time is killed.
      const late = setTimeout(() => child.kill('SIGKILL'), (this.view?.drainTimeout ?? 60_000) + 10_000);
      await exited;
      clearTimeout(late);
    }
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }

  private spawnChild(): void {
    const main = process.argv[1] ?? '';
    const { host, port } = this.o.listen;
    const args = [main, 'gate', '--listen', `${host.includes(':') ? `[${host}]` : host}:${port}`];
    args.push('--control', this.path ?? '', '--log-format', this.o.log.format);
    // An IPC channel: the child sees its parent go (disconnect) and stops with it.
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child = child;
    child.on('exit', (code, signal) => {
      if (this.stopped) return;
      this.o.log.log('error', `the gate (pid ${child.pid}) exited (${signal ?? `code ${code}`}); starting it again`);
      this.child = undefined;
      this.timer = setTimeout(() => this.spawnChild(), 1000);
    });
  }

  private connect(): void {
    if (this.stopped || !this.path) return;
    const s = connect(this.path);
    s.on('connect', () => {
      this.tries = 0;
      this.socket = s;
      this.sentView = '';
      if (this.view) this.update(this.view);
    });
    onLines(s, (m) => this.heard(m as FromGate));
    s.on('error', () => undefined);
    s.on('close', () => {
      if (this.socket === s) this.socket = undefined;
      for (const d of [...this.drains.values()]) d();
      if (this.stopped) return;
      const delay = RECONNECT_MS[Math.min(this.tries++, RECONNECT_MS.length - 1)] ?? 2000;
      this.timer = setTimeout(() => this.connect(), delay);
    });
  }

  private heard(m: FromGate): void {
    switch (m.t) {
      case 'hello':
        this.o.log.log('debug', `gate (pid ${m.pid}) connected`);
        return;
      case 'report':
        return this.o.onReport(m.report);
      case 'records':
        return this.o.onRecords(m.records);
      case 'drained':
        this.o.log.log(
          'info',
          `gate drained: ${m.finished} requests finished, ${m.replayed} kept to send again, ${m.cut} cut`,
        );
        this.drains.get(m.id)?.();
    }
  }
}
