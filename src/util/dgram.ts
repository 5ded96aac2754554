// Sends one AF_UNIX datagram (abstract names included) through the small native addon.
import { addonUnavailable, errnoName, loadAddon } from './native.js';

/** Why datagrams cannot be sent here, or undefined when they can. */
export const dgramUnavailable = addonUnavailable;

/** `@name` is an abstract socket name, as systemd writes it in $NOTIFY_SOCKET. */
export function socketAddress(path: string): Buffer {
  return path.startsWith('@') ? Buffer.concat([Buffer.from([0]), Buffer.from(path.slice(1))]) : Buffer.from(path);
}

/** Sends; returns undefined on success, else the errno name (ENOENT, EAGAIN, ...). */
export function sendDatagram(path: string, data: Buffer): string | undefined {
  const a = loadAddon();
  if (!a) return 'ENOSYS';
  const err = a.send(socketAddress(path), data);
  return err === 0 ? undefined : errnoName(err);
}
