// The supervisor and the gate talk over a unix socket, one JSON object a line. The gate listens
// (its folder is its own, so only root and the gate reach it); the supervisor connects and gives
// orders; the gate answers drains and reports requests.
import type { Socket } from 'node:net';
import type { DoorReport, DoorView, RequestRecord } from '../core/model/door.js';

export type ToGate = { t: 'view'; view: DoorView } | { t: 'drain'; id: number; timeout: number } | { t: 'resume' };

export type FromGate =
  | { t: 'hello'; pid: number; version: number }
  | { t: 'report'; report: DoorReport }
  | { t: 'records'; records: RequestRecord[] }
  | { t: 'drained'; id: number; finished: number; replayed: number; cut: number };

/** The protocol's version: a supervisor and a gate of different versions still talk (unknown fields are ignored). */
export const CONTROL_VERSION = 1;

/** A message is a few KiB at most (a view with many key hashes); more is not ours. */
const MAX_LINE = 1024 * 1024;

/** Reads JSON lines from `socket`; a line that is not JSON, or too long, closes it. */
export function onLines(socket: Socket, handle: (msg: unknown) => void): void {
  let buf = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buf += chunk;
    if (buf.length > MAX_LINE && !buf.includes('\n')) return void socket.destroy();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (!line.trim()) continue;
      try {
        handle(JSON.parse(line));
      } catch {
        socket.destroy();
        return;
      }
    }
  });
}

export function send(socket: Socket | undefined, msg: ToGate | FromGate): void {
  if (!socket || socket.destroyed || !socket.writable) return;
  socket.write(`${JSON.stringify(msg)}\n`);
}
