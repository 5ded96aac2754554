// sd_notify(3) without a child process: READY, STATUS, WATCHDOG, RELOADING, STOPPING over $NOTIFY_SOCKET.
import { dgramUnavailable, sendDatagram } from '../util/dgram.js';

export interface Notifier {
  /** False outside systemd (no NOTIFY_SOCKET): every call is then a no-op. */
  readonly active: boolean;
  send(fields: Record<string, string | number>): string | undefined;
  /** Half of WATCHDOG_USEC in ms when systemd wants pings for this process, else undefined. */
  readonly watchdogIntervalMs: number | undefined;
}

/** One line per field; a value must not carry a newline (STATUS is one line). */
export function formatNotify(fields: Record<string, string | number>): Buffer {
  return Buffer.from(
    Object.entries(fields)
      .map(([k, v]) => `${k}=${String(v).replace(/\n/g, ' ')}`)
      .join('\n'),
  );
}

export function notifierFromEnv(env: NodeJS.ProcessEnv = process.env, pid = process.pid): Notifier {
  const socket = env['NOTIFY_SOCKET'];
  const usec = Number(env['WATCHDOG_USEC'] ?? '');
  const wpid = env['WATCHDOG_PID'];
  const watchdogIntervalMs =
    Number.isFinite(usec) && usec > 0 && (!wpid || Number(wpid) === pid) ? usec / 2000 : undefined;
  if (!socket) return { active: false, send: () => undefined, watchdogIntervalMs: undefined };
  return {
    active: true,
    watchdogIntervalMs,
    send: (fields) => sendDatagram(socket, formatNotify(fields)) ?? undefined,
  };
}

export { dgramUnavailable };
