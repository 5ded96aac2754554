// The model's front door: an HTTP proxy that forwards while the model serves, holds requests while it
// does not, drains before a planned stop and replays what was never answered. What to do with each
// request is the core's (core/rules/door.ts); this file only does it.
import http from 'node:http';
import type { Socket } from 'node:net';
import type { DoorReport, DoorView, RequestOutcome, RequestRecord } from '../core/model/door.js';
import { admit, apiError, holdExpired, unauthorized, type Admission } from '../core/rules/door.js';
import { authorized, endToEnd, goingAway, readBody, type Pending } from './request.js';
import { Server as NetServer } from 'node:net';

/** Before the supervisor has said anything, a request waits this long for it. */
const UNTOLD_HOLD_MS = 30_000;
/** A refused connection to an open upstream is tried again after this, doubling up to the max. */
const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 2000;
/** A drain whose stop never came ends this long after its deadline. */
const RESUME_AFTER_MS = 60_000;

export interface DoorOptions {
  now?: () => number;
  /** Each finished request (metrics, success rate, time to first token). */
  onRecord(r: RequestRecord): void;
  /** Held and in-flight counts changed. */
  onReport(r: DoorReport): void;
  log(level: 'debug' | 'info' | 'warn' | 'error', msg: string): void;
}

export interface DrainResult {
  finished: number;
  replayed: number;
  cut: number;
}

export class Door {
  readonly server: http.Server;
  private view: DoorView | undefined;
  private readonly held: Pending[] = [];
  private readonly flying = new Set<Pending>();
  private agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 256 });
  private agentRun: string | undefined;
  private readonly retired = new Set<http.Agent>();
  /** A planned stop of this run is draining: nothing more is sent to it. */
  private drainedRun: string | undefined;
  private closing = false;
  private retryAt = 0;
  private retryDelay = RETRY_FIRST_MS;
  private retryTimer: NodeJS.Timeout | undefined;
  private listening = false;
  private why: string | undefined;
  private lastReport = '';
  private readonly sockets = new Set<Socket>();
  private readonly now: () => number;

  constructor(private readonly o: DoorOptions) {
    this.now = o.now ?? Date.now;
    this.server = http.createServer((req, res) => void this.onRequest(req, res));
    // SSE chunks go out as they come; no Nagle delay on the client side either.
    this.server.on('connection', (s: Socket) => {
      s.setNoDelay(true);
      this.sockets.add(s);
      s.on('close', () => {
        this.sockets.delete(s);
        this.wake();
      });
    });
    this.server.keepAliveTimeout = 5000;
    this.server.headersTimeout = 60_000;
    this.server.requestTimeout = 0;
  }

  /** The supervisor's orders. */
  update(view: DoorView): void {
    const runChanged = view.run !== this.view?.run;
    // Said when the keys in force change (how many, never which): the moment an edit of
    // gate.apiKeyFile takes effect at the door.
    if (this.view && view.keys.join() !== this.view.keys.join())
      this.o.log('info', `gate: ${view.keys.length} API key(s) in force`);
    this.view = view;
    if (view.open && view.run !== this.agentRun) {
      // A new run is a new server: pooled connections to the old one are dead. What is still in flight
      // on them (a drain under way) finishes on them; the old pool goes once that is done.
      this.retire(this.agent);
      this.agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 256 });
      this.agentRun = view.run;
    }
    if (runChanged) this.resetRetry();
    if (view.open && view.run !== this.drainedRun) this.drainedRun = undefined;
    this.reconsider();
    this.pump();
  }

  /**
   * Held requests under new orders: one held before the supervisor had said anything gets the hold
   * the view allows from its arrival; one the model will not be back for in time (its ETA, an
   * operator's wait) is answered now rather than at its deadline.
   */
  private reconsider(): void {
    const v = this.view;
    if (!v || v.open) return;
    const now = this.now();
    for (const p of [...this.held]) {
      const a = admit(v, now, 0);
      if (a.kind === 'answer') {
        this.held.splice(this.held.indexOf(p), 1);
        this.answer(p, a, 'refused');
      } else if (a.kind === 'hold' && p.untold) {
        p.untold = false;
        this.hold(p, p.arrived + v.holdTimeout, false);
      }
    }
  }

  /** Whether the door listens, and why not (for the supervisor's status line). */
  setListening(listening: boolean, why?: string): void {
    this.listening = listening;
    this.why = why;
    this.report();
  }

  /**
   * A planned stop: nothing more is sent to the model; requests in flight get `timeoutMs` to finish.
   * Then a request with no answer yet is taken back (and sent again to the next run); a stream that
   * already answered gets a final error event.
   */
  async drain(timeoutMs: number): Promise<DrainResult> {
    const run = this.view?.run ?? '';
    this.drainedRun = run;
    // The stop that was to follow never came (the supervisor went away): the same run is open again.
    setTimeout(() => this.resume(run), timeoutMs + RESUME_AFTER_MS).unref();
    const before = this.flying.size;
    const deadline = this.now() + timeoutMs;
    while (this.flying.size > 0 && this.now() < deadline) await this.settled(deadline - this.now());
    let replayed = 0;
    let cut = 0;
    for (const p of [...this.flying]) {
      if (!p.sent && !p.overflow) {
        replayed++;
        p.detached = true;
        p.upstream?.destroy();
      } else {
        cut++;
        this.cut(p, 'the model is restarting (a planned restart) and this answer ran past the drain deadline');
      }
    }
    return { finished: before - replayed - cut, replayed, cut };
  }

  /** An agent no longer used for new requests: gone now if idle, else once its last request ends. */
  private retire(agent: http.Agent): void {
    const busy = [...this.flying].some((p) => p.agent === agent);
    if (!busy) return agent.destroy();
    this.retired.add(agent);
  }

  /** Sends to `run` again: its planned stop is off. */
  resume(run?: string): void {
    if (this.drainedRun === undefined || (run !== undefined && run !== this.drainedRun)) return;
    this.drainedRun = undefined;
    this.pump();
  }

  /**
   * The gate itself stops (an upgrade): it accepts no new connection (systemd keeps the socket for the
   * next gate), answers what arrives on the connections it has (with Connection: close), lets requests
   * in flight finish, and waits for idle connections to time out (clients stop reusing them a second
   * before keepAliveTimeout), all within `timeoutMs`.
   */
  async close(timeoutMs: number): Promise<void> {
    this.closing = true;
    // The listener only (http.Server.close would also cut idle keep-alive connections a client may be using).
    if (this.server.listening) await new Promise((r) => NetServer.prototype.close.call(this.server, r));
    for (const p of this.held.splice(0)) this.answer(p, goingAway(), 'refused');
    const deadline = this.now() + timeoutMs;
    while ((this.flying.size > 0 || this.sockets.size > 0) && this.now() < deadline)
      await this.settled(Math.min(deadline - this.now(), 500));
    for (const p of [...this.flying]) this.cut(p, 'the gate is restarting and this answer ran past its drain deadline');
    this.agent.destroy();
    clearTimeout(this.retryTimer);
    this.server.closeAllConnections();
  }

  private flights: Array<() => void> = [];
  /** Resolves when a request in flight ends, or after `ms`. */
  private settled(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, Math.max(1, ms));
      this.flights.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const p: Pending = {
      req,
      res,
      arrived: this.now(),
      body: [],
      overflow: false,
      sent: false,
      sse: false,
      replayed: false,
      detached: false,
      done: false,
    };
    if (this.closing) res.shouldKeepAlive = false;
    res.on('close', () => this.clientGone(p));
    const health = req.method === 'GET' && (req.url === '/health' || req.url?.startsWith('/health?'));
    const v = this.view;
    if (v && v.keys.length > 0 && !health && !authorized(req.headers.authorization, v.keys)) {
      req.resume();
      return this.answer(p, unauthorized(), 'client_error');
    }
    await readBody(p, v?.maxBodySize ?? 8 * 1024 * 1024);
    if (p.done) return;
    if (health && !v?.open) {
      const a = v ? admit({ ...v, holdable: false }, this.now(), 0) : holdExpired(undefined, this.now());
      return this.answer(p, a, 'refused');
    }
    this.admit(p);
  }

  private admit(p: Pending): void {
    const v = this.view;
    const now = this.now();
    // Open, but this run is draining (a planned stop): held for the next one, like any closed door.
    const a: Admission = !v
      ? { kind: 'hold', until: now + UNTOLD_HOLD_MS }
      : this.drainedRun !== undefined && v.open
        ? admit({ ...v, open: false }, now, this.held.length)
        : admit(v, now, this.held.length);
    if (a.kind === 'answer') return this.answer(p, a, 'refused');
    if (a.kind === 'forward' && this.canForward()) return this.forward(p);
    if (this.closing) return this.answer(p, goingAway(), 'refused');
    if (!v) p.untold = true;
    this.hold(p, a.kind === 'hold' ? a.until : now + (v?.holdTimeout ?? UNTOLD_HOLD_MS));
  }

  private canForward(): boolean {
    const v = this.view;
    return !!v?.open && this.drainedRun === undefined && this.now() >= this.retryAt;
  }

  private hold(p: Pending, until: number, queue = true): void {
    p.until = until;
    clearTimeout(p.timer);
    p.timer = setTimeout(() => this.expire(p), Math.max(0, until - this.now()));
    if (queue) this.held.push(p);
    this.report();
  }

  private expire(p: Pending): void {
    const i = this.held.indexOf(p);
    if (i < 0) return;
    this.held.splice(i, 1);
    this.answer(p, holdExpired(this.view, this.now()), 'held_timeout');
  }

  /** Sends what is held, in order, while the door is open. */
  private pump(): void {
    while (this.held.length > 0 && this.canForward()) {
      const p = this.held.shift() as Pending;
      clearTimeout(p.timer);
      this.forward(p);
    }
    this.report();
    if (this.held.length > 0 && this.view?.open && this.now() < this.retryAt && !this.retryTimer) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.pump();
      }, this.retryAt - this.now());
    }
  }

  private resetRetry(): void {
    this.retryAt = 0;
    this.retryDelay = RETRY_FIRST_MS;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private forward(p: Pending): void {
    const v = this.view as DoorView;
    const up = v.upstream ?? { host: '127.0.0.1', port: 0 };
    const headers = endToEnd(p.req.headers);
    const r = http.request({
      host: up.host,
      port: up.port,
      method: p.req.method,
      path: p.req.url,
      headers,
      agent: this.agent,
    });
    p.upstream = r;
    p.agent = this.agent;
    p.detached = false;
    this.flying.add(p);
    this.report();
    r.on('response', (ur) => this.relay(p, r, ur));
    r.on('error', (e) => this.broke(p, r, e.message));
    for (const c of p.body) r.write(c);
    if (p.overflow) {
      p.req.pipe(r);
      p.req.resume();
    } else r.end();
  }

  /**
   * The model's answer, to the client as it comes. The headers wait for the first byte of the body:
   * until then the request can still be sent again.
   */
  private relay(p: Pending, r: http.ClientRequest, ur: http.IncomingMessage): void {
    const start = () => {
      if (p.sent) return;
      p.sent = true;
      p.firstByteAt = this.now();
      p.sse = /text\/event-stream/i.test(String(ur.headers['content-type'] ?? ''));
      const headers = endToEnd(ur.headers);
      const heldMs = (p.firstByteAt ?? 0) - p.arrived;
      if (p.replayed) headers['x-gptoss-replayed'] = '1';
      if (heldMs >= 1000) headers['x-gptoss-waited-ms'] = String(heldMs);
      if (this.closing) headers['connection'] = 'close';
      p.res.writeHead(ur.statusCode ?? 502, headers);
    };
    ur.on('data', (c: Buffer) => {
      if (p.done || p.detached) return;
      start();
      if (!p.res.write(c)) {
        ur.pause();
        p.res.once('drain', () => ur.resume());
      }
    });
    ur.on('end', () => {
      if (p.done || p.detached) return;
      start();
      this.resetRetry();
      p.res.end();
      const s = ur.statusCode ?? 502;
      this.finish(p, s >= 500 ? 'engine_error' : s >= 400 ? 'client_error' : p.replayed ? 'replayed' : 'ok');
    });
    ur.on('error', (e) => this.broke(p, r, e.message));
    ur.on('close', () => {
      if (!ur.complete) this.broke(p, r, 'the model closed the connection mid-answer');
    });
  }

  /** The model went away under a request: send it again later if no byte of it was answered, else end it honestly. */
  private broke(p: Pending, r: http.ClientRequest, why: string): void {
    if (p.done || p.upstream !== r) return;
    this.flying.delete(p);
    this.wake();
    if (!p.sent && !p.overflow && !p.res.destroyed) {
      p.replayed = true;
      if (!p.detached) {
        // Nothing answers where the door was told the model serves: look again shortly.
        this.retryAt = this.now() + this.retryDelay;
        this.retryDelay = Math.min(RETRY_MAX_MS, this.retryDelay * 2);
      }
      const hold = this.view?.holdTimeout ?? UNTOLD_HOLD_MS;
      this.hold(p, Math.max(p.until ?? 0, this.now() + hold));
      this.pump();
      return;
    }
    this.cut(p, `the model stopped while answering (${why})`);
  }

  /** An answer that cannot be finished: a stream gets a last error event; anything else is closed. */
  private cut(p: Pending, message: string): void {
    if (p.done) return;
    p.upstream?.destroy();
    if (p.sent && p.sse) {
      const err = apiError(message, 'service_unavailable', 'model_restarted');
      p.res.end(`data: ${JSON.stringify(err)}\n\n`);
    } else if (!p.sent && !p.res.headersSent) {
      const err = apiError(`${message}; send it again`, 'service_unavailable', 'model_restarted');
      p.res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '5' });
      p.res.end(JSON.stringify(err));
    } else p.res.destroy();
    this.finish(p, 'cut');
  }

  private answer(p: Pending, a: Admission, outcome: RequestOutcome): void {
    if (a.kind !== 'answer' || p.done) return;
    const body = JSON.stringify(a.body);
    const headers: http.OutgoingHttpHeaders = {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    };
    if (a.retryAfter !== undefined) headers['retry-after'] = String(a.retryAfter);
    // Held before this answer: how long the client waited for it.
    if (p.until !== undefined) headers['x-gptoss-waited-ms'] = String(this.now() - p.arrived);
    if (this.closing) headers['connection'] = 'close';
    p.res.writeHead(a.status, headers);
    p.res.end(body);
    this.finish(p, outcome);
  }

  private finish(p: Pending, outcome: RequestOutcome): void {
    if (p.done) return;
    p.done = true;
    clearTimeout(p.timer);
    this.flying.delete(p);
    const i = this.held.indexOf(p);
    if (i >= 0) this.held.splice(i, 1);
    const at = this.now();
    this.o.onRecord({
      outcome,
      ms: at - p.arrived,
      ...(p.firstByteAt !== undefined ? { ttftMs: p.firstByteAt - p.arrived } : {}),
      at,
    });
    this.wake();
    this.report();
  }

  /** The client went away: its request to the model is cancelled, its place in the queue freed. */
  private clientGone(p: Pending): void {
    if (p.done || p.res.writableFinished) return;
    p.upstream?.destroy();
    this.finish(p, 'client_error');
  }

  private wake(): void {
    for (const a of [...this.retired]) {
      if ([...this.flying].some((p) => p.agent === a)) continue;
      this.retired.delete(a);
      a.destroy();
    }
    for (const f of this.flights.splice(0)) f();
  }

  private report(): void {
    const r: DoorReport = {
      held: this.held.length,
      inFlight: this.flying.size,
      listening: this.listening,
      ...(this.why ? { why: this.why } : {}),
    };
    const key = JSON.stringify(r);
    if (key === this.lastReport) return;
    this.lastReport = key;
    this.o.onReport(r);
  }
}
