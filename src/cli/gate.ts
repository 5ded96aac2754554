// `gate`: the model's front door, its own process (gptoss-gate.service under systemd, with no
// privilege; a child of `run` elsewhere). It takes its orders from the supervisor.
import { Gate } from '../gate/serve.js';
import { createLogger, type Level, type LogFormat } from '../log/logger.js';
import { notifierFromEnv } from '../systemd/notify.js';
import type { Command } from './command.js';
import { EXIT, UsageError } from './exit.js';

/** Sockets systemd passed (socket activation): fd 3 on, named by FileDescriptorName=. */
export function passedSockets(env: NodeJS.ProcessEnv, pid: number): { http?: number; control?: number } {
  const n = Number(env['LISTEN_FDS'] ?? '0');
  if (!(n > 0) || Number(env['LISTEN_PID']) !== pid) return {};
  const names = (env['LISTEN_FDNAMES'] ?? '').split(':');
  const out: { http?: number; control?: number } = {};
  for (let i = 0; i < n; i++) {
    const name = names[i];
    if (name === 'http' || name === 'control') out[name] = 3 + i;
  }
  return out;
}

/** `HOST:PORT` or `[IPv6]:PORT`. */
export function parseHostPort(s: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(s);
  const port = Number(m?.[3]);
  if (!m || !(port >= 1 && port <= 65535)) return undefined;
  return { host: m[1] ?? m[2] ?? '', port };
}

/** What a gate left by its supervisor gives the requests in flight before it exits. */
const ORPHAN_GRACE_MS = 3000;

export const gateCommand: Command = {
  help: `Usage: gptoss-supervisor gate [--listen HOST:PORT] [--control PATH] [--log-format F] [--log-level L]

The model's front door: forwards requests to the model container while it serves, holds them
while it loads or restarts, drains before a planned stop, sends again what the model never
answered. It takes its orders from the supervisor over the control socket. Under systemd
(gptoss-gate.socket) both sockets come from systemd and no option is needed; \`run\` starts it
as a child process elsewhere. SIGTERM: no new connection, requests in flight finish, then exit.

  --listen HOST:PORT  where clients connect, when systemd passes no socket ($GPTOSS_GATE_LISTEN)
  --control PATH      the control socket, when systemd passes none
`,
  options: {
    listen: { type: 'string' },
    control: { type: 'string' },
    'log-format': { type: 'string' },
    'log-level': { type: 'string' },
  },
  async run(values) {
    const fds = passedSockets(process.env, process.pid);
    // Under systemd the address comes from install.sh's drop-in, for when its socket cannot be had.
    const given = (values['listen'] as string | undefined) ?? process.env['GPTOSS_GATE_LISTEN'];
    const listen = given === undefined ? undefined : parseHostPort(given);
    if (given !== undefined && !listen) throw new UsageError('--listen (or GPTOSS_GATE_LISTEN) must be HOST:PORT');
    if (fds.http === undefined && !listen) throw new UsageError('no socket from systemd: give --listen HOST:PORT');
    const control = values['control'] as string | undefined;
    if (fds.control === undefined && !control) throw new UsageError('no control socket from systemd: give --control');
    const log = createLogger({
      format: (values['log-format'] ?? 'auto') as LogFormat,
      level: (values['log-level'] ?? 'info') as Level,
    });
    const notifier = notifierFromEnv();
    const gate = new Gate({
      log,
      ...(listen ? { listen } : {}),
      ...(control ? { control } : {}),
      fds,
      onListening: () => notifier.send({ READY: 1, STATUS: 'listening' }),
    });
    await gate.start();
    await new Promise<void>((resolve) => {
      const stop = (graceMs?: number) => {
        notifier.send({ STOPPING: 1, STATUS: 'draining the requests in flight' });
        void gate.stop(graceMs).then(resolve);
      };
      process.once('SIGTERM', () => stop());
      process.once('SIGINT', () => stop());
      // A child of `run` goes when its parent goes (killed, it cannot ask for a drain): a short grace.
      process.once('disconnect', () => stop(ORPHAN_GRACE_MS));
    });
    // Nothing more to do: the IPC channel (a child of `run`) or a stray handle must not keep it alive.
    if (process.connected) process.disconnect();
    setTimeout(() => process.exit(EXIT.ok), 2000).unref();
    return EXIT.ok;
  },
};
