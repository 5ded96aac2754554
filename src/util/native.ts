// The small native addon (build/Release/unixdgram.node): AF_UNIX datagrams and page-cache eviction.
import { createRequire } from 'node:module';
import { constants } from 'node:os';

export interface Addon {
  send(path: Buffer, data: Buffer): number;
  dropCache(fd: number): number;
}

let addon: Addon | undefined;
let loadError: string | undefined;

export function loadAddon(): Addon | undefined {
  if (addon || loadError) return addon;
  const require = createRequire(import.meta.url);
  // dist/src/util/native.js -> <package>/build/Release/unixdgram.node
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

/** Why the addon cannot be used here, or undefined when it can. */
export function addonUnavailable(): string | undefined {
  return loadAddon()
    ? undefined
    : `native addon unixdgram.node not built (${loadError ?? 'unknown'}); run \`npm install\``;
}

const ERRNO_NAMES = new Map(Object.entries(constants.errno).map(([k, v]) => [v, k]));

/** An errno value as its name (ENOENT, EAGAIN, ...). */
export const errnoName = (err: number): string => ERRNO_NAMES.get(err) ?? `errno ${err}`;
