// Docker's pull stream folded into layers and bytes; and which stored credentials a pull sends.
import type { PullSummary } from '../core/model/events.js';

/** One record of Docker's pull stream (`docker pull`'s JSON lines). */
export interface PullEvent {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
}

const DONE = /^(Pull complete|Already exists|Download complete)$/;

/** Folds pull events into per-layer progress. Layer ids are the 12-hex ids Docker reports. */
export class PullProgress {
  private readonly layers = new Map<string, { current: number; total: number; done: boolean }>();

  add(ev: PullEvent): void {
    if (!ev.id || !/^[0-9a-f]{12}$/.test(ev.id)) return;
    const l = this.layers.get(ev.id) ?? { current: 0, total: 0, done: false };
    const status = ev.status ?? '';
    if (status === 'Downloading' && ev.progressDetail) {
      l.current = ev.progressDetail.current ?? l.current;
      l.total = ev.progressDetail.total ?? l.total;
    }
    if (DONE.test(status)) {
      l.done = status !== 'Download complete' || l.done;
      if (l.total) l.current = l.total;
    }
    this.layers.set(ev.id, l);
  }

  summary(): PullSummary {
    let bytes = 0;
    let totalBytes = 0;
    let layersDone = 0;
    for (const l of this.layers.values()) {
      bytes += l.current;
      totalBytes += l.total;
      if (l.done) layersDone++;
    }
    return { layers: this.layers.size, layersDone, bytes, totalBytes };
  }
}

/** The registry host of an image reference, as `docker login` keys it. */
export function registryOf(image: string): string {
  const first = image.split('/')[0] ?? '';
  const hasHost = image.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  return hasHost ? first : 'docker.io';
}

/**
 * The credentials `docker login` stored for the image's registry, in the form the Engine API
 * takes (X-Registry-Auth), from a docker config.json's text. Credential helpers (credsStore)
 * keep the secret elsewhere and are not read.
 */
export function authFor(image: string, configJson: string | undefined): Record<string, string> | undefined {
  if (!configJson) return undefined;
  let cfg: { auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }> };
  try {
    cfg = JSON.parse(configJson) as typeof cfg;
  } catch {
    return undefined;
  }
  const host = registryOf(image);
  const keys =
    host === 'docker.io'
      ? ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io']
      : [host, `https://${host}`, `http://${host}`];
  for (const [k, v] of Object.entries(cfg.auths ?? {})) {
    const bare = k.replace(/\/+$/, '').replace(/\/v[12]$/, '');
    if (!keys.includes(k) && !keys.includes(bare)) continue;
    if (v.identitytoken) return { identitytoken: v.identitytoken, serveraddress: host };
    let username = v.username;
    let password = v.password;
    if (v.auth) {
      const plain = Buffer.from(v.auth, 'base64').toString('utf8');
      const at = plain.indexOf(':');
      if (at > 0) {
        username = plain.slice(0, at);
        password = plain.slice(at + 1);
      }
    }
    if (username && password !== undefined) return { username, password, serveraddress: host };
  }
  return undefined;
}
