// Sends one AF_UNIX datagram (abstract names included) through the small native addon.
import { createRequire } from 'node:module';
import { constants } from 'node:os';

interface Addon {
  send(path: Buffer, data: Buffer): number;
}

let addon: Addon | undefined;
let loadError: string | undefined;

function load(): Addon | undefined {
  if (addon || loadError) return addon;
  const require = createRequire(import.meta.url);
  // dist/src/systemd/dgram.js -> <package>/build/Release/unixdgram.node
  for (const rel of ['../../../build/Release/unixdgram.node', '../../build/Release/unixdgram.node']) {
    try {
      addon = require(rel) as Addon;
      return addon;
    } catch (err) {
      loadError = (err as Error).message;
    }
  }
  return undefined;
}

/** Why datagrams cannot be sent here, or undefined when they can. */
export function dgramUnavailable(): string | undefined {
  return load() ? undefined : `native addon unixdgram.node not built (${loadError ?? 'unknown'}); run \`npm install\``;
}

/** `@name` is an abstract socket name, as systemd writes it in $NOTIFY_SOCKET. */
export function socketAddress(path: string): Buffer {
  return path.startsWith('@') ? Buffer.concat([Buffer.from([0]), Buffer.from(path.slice(1))]) : Buffer.from(path);
}

const ERRNO_NAMES = new Map(Object.entries(constants.errno).map(([k, v]) => [v, k]));

/** Sends; returns undefined on success, else the errno name (ENOENT, EAGAIN, ...). */
export function sendDatagram(path: string, data: Buffer): string | undefined {
  const a = load();
  if (!a) return 'ENOSYS';
  const err = a.send(socketAddress(path), data);
  return err === 0 ? undefined : (ERRNO_NAMES.get(err) ?? `errno ${err}`);
}
