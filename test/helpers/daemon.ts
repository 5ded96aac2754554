// Runs `gptoss-supervisor run` as a child process and reads its JSON log, as an operator's tools would.
import { spawn, type ChildProcess } from 'node:child_process';
import { request, type ClientRequest } from 'node:http';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { DAEMON_NODE_FLAGS } from '../../src/cli/node-flags.js';
import { scratchDir } from './temp.js';

export const CLI = new URL('../../src/cli/main.js', import.meta.url).pathname;

export interface Record {
  level: number;
  msg: string;
  event?: string;
  state?: string;
  [k: string]: unknown;
}

export class Daemon {
  readonly records: Record[] = [];
  readonly stderr: string[] = [];
  private waiters: Array<() => void> = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly child: ChildProcess) {
    let buf = '';
    child.stderr?.on('data', (c: Buffer) => {
      buf += c.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        this.stderr.push(line);
        try {
          this.records.push(JSON.parse(line) as Record);
        } catch {
          /* not a record: kept in stderr */
        }
        for (const w of this.waiters.splice(0)) w();
      }
    });
    this.exited = new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        resolve({ code, signal });
        for (const w of this.waiters.splice(0)) w();
      }),
    );
  }

  /** Resolves with the first record (from `from` on) that matches; rejects after `ms`. */
  async waitFor(pred: (r: Record) => boolean, ms: number, from = 0, what = 'a matching record'): Promise<Record> {
    const deadline = Date.now() + ms;
    let i = from;
    for (;;) {
      for (; i < this.records.length; i++) if (pred(this.records[i]!)) return this.records[i]!;
      if (this.child.exitCode !== null || this.child.signalCode !== null)
        throw new Error(`daemon exited while waiting for ${what}\n${this.tail()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${ms}ms waiting for ${what}\n${this.tail()}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Waits for the status line to reach a state (the debug `status:` records carry it). */
  waitState(state: string, ms: number, from = 0): Promise<Record> {
    return this.waitFor((r) => r.msg.startsWith('status: ') && r.state === state, ms, from, `state ${state}`);
  }

  /** The index just after a record: where to look for what came after it. */
  after(r: Record): number {
    return this.records.indexOf(r) + 1;
  }

  events(name: string, from = 0): Record[] {
    return this.records.slice(from).filter((r) => r.event === name);
  }

  get mark(): number {
    return this.records.length;
  }

  tail(n = 40): string {
    return this.stderr.slice(-n).join('\n');
  }

  /**
   * SIGTERM: the daemon itself (it stops its gate as it exits). SIGKILL: its whole process group, the
   * gate with it, as systemd's KillMode=control-group would.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      if (signal === 'SIGKILL' && this.child.pid) {
        try {
          process.kill(-this.child.pid, 'SIGKILL');
        } catch {
          this.child.kill(signal);
        }
      } else this.child.kill(signal);
    }
    return this.exited;
  }
}

export async function writeConfig(config: unknown): Promise<string> {
  const dir = await scratchDir('gptoss-cfg-');
  const file = join(dir, 'config.yaml');
  await writeFile(file, stringify(config));
  return file;
}

export function startDaemon(
  configFile: string,
  stateDir: string,
  env: NodeJS.ProcessEnv = {},
  level: 'debug' | 'info' = 'debug',
): Daemon {
  const child = spawn(
    process.execPath,
    // As installed: the daemon's V8 flags (src/cli/node-flags.ts).
    [
      ...DAEMON_NODE_FLAGS,
      CLI,
      'run',
      '--config',
      configFile,
      '--state-dir',
      stateDir,
      '--log-format',
      'json',
      '--log-level',
      level,
    ],
    {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
      // A process group of its own: a kill reaches the gate it runs as a child, too.
      detached: true,
    },
  );
  return new Daemon(child);
}

/** POSTs JSON to the stand-in on the host's published port (its /standin/* controls). */
export function postJson(port: number, path: string, body: unknown): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: 'POST', headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve());
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** A chat request to the stand-in that is left open (a stalled engine never answers it); destroy it when done. */
export function openChat(port: number): ClientRequest {
  const req = request({
    host: '127.0.0.1',
    port,
    path: '/v1/chat/completions',
    method: 'POST',
    headers: { 'content-type': 'application/json' },
  });
  req.on('error', () => undefined);
  req.end(JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }));
  return req;
}
