// Is this existing container the one we want? One answer for adopt, drift and tests alike.
import type { Comparison } from '../core/rules/plan.js';
import {
  CACHE_MOUNTS,
  CONTAINER_PORT,
  LABEL_HASH,
  type ContainerSpec,
  type DeviceRequest,
  type UlimitEntry,
} from './spec.js';
import { isSecretEnvEntry, maskArgs } from '../config/vllm-flags.js';
import { isTokenEntry, tokenIn } from './token-env.js';

/** The fields of `docker inspect` that matter here (a subset of the Engine API's ContainerInspect). */
export interface Inspected {
  Id: string;
  Name: string;
  Image: string;
  State: {
    Status: string;
    Running: boolean;
    ExitCode: number;
    OOMKilled: boolean;
    StartedAt: string;
    FinishedAt: string;
    Error?: string;
    /** The main process's PID on the host (0 when not running). */
    Pid?: number;
  };
  Config: { Image: string; Cmd: string[] | null; Env: string[] | null; Labels: Record<string, string> | null };
  /** What Docker actually published (a port it picked, where none was asked for), while it runs. */
  NetworkSettings?: { Ports?: Record<string, { HostIp: string; HostPort: string }[] | null> | null };
  HostConfig: {
    IpcMode?: string;
    Ulimits?: UlimitEntry[] | null;
    PortBindings?: Record<string, { HostIp: string; HostPort: string }[] | null> | null;
    Binds?: string[] | null;
    DeviceRequests?: Partial<DeviceRequest>[] | null;
  };
}

/**
 * Compares the desired spec with an inspected container. `imageEnv` is the environment the
 * container's image sets (it appears in the container's Env without being asked for); `wantImageId`
 * the ID of the image the spec names.
 * The token's value is not compared here: see `sameToken`.
 */
export function sameSpec(
  spec: ContainerSpec,
  c: Inspected,
  imageEnv: readonly string[] = [],
  wantImageId?: string,
): Comparison {
  if (c.Config.Labels?.[LABEL_HASH] === spec.hash) return { same: true, differences: [], byLabel: true };
  const want = spec.body;
  const d: string[] = [];
  // The image the spec names, by what it is (its ID): a container made from a digest runs the tag's
  // image, if the tag points there.
  const sameImage = c.Config.Image === want.Image || (wantImageId !== undefined && c.Image === wantImageId);
  if (!sameImage) d.push(`image: ${c.Config.Image} (want ${want.Image})`);
  d.push(...diffCmd(c.Config.Cmd ?? [], want.Cmd));
  d.push(...diffEnv(c.Config.Env ?? [], want.Env, imageEnv));
  if ((c.HostConfig.IpcMode ?? '') !== want.HostConfig.IpcMode)
    d.push(`ipc: ${c.HostConfig.IpcMode || 'private'} (want ${want.HostConfig.IpcMode})`);
  d.push(...diffSet('ulimit', (c.HostConfig.Ulimits ?? []).map(showUlimit), want.HostConfig.Ulimits.map(showUlimit)));
  const ports = diffSet('port', showPorts(c.HostConfig.PortBindings ?? {}), showPorts(want.HostConfig.PortBindings));
  const deferred = directPort(spec, c) ? ports : [];
  d.push(...ports.filter((p) => !deferred.includes(p)));
  const binds = (c.HostConfig.Binds ?? []).map(normBind);
  const volumes = diffSet('volume', binds, want.HostConfig.Binds.map(normBind));
  deferred.push(...volumes.filter((v) => CACHE_MOUNTS.some((m) => v.endsWith(`:${m.container} missing`))));
  d.push(...volumes.filter((v) => !deferred.includes(v)));
  d.push(
    ...diffSet(
      'gpus',
      (c.HostConfig.DeviceRequests ?? []).map(showDevices),
      want.HostConfig.DeviceRequests.map(showDevices),
    ),
  );
  return { same: d.length === 0, differences: d, byLabel: false, ...(deferred.length ? { deferred } : {}) };
}

/**
 * With the gate on, a container that publishes the guide's own port (made by hand, or before the gate)
 * and nothing else: it keeps serving there until its next planned recreate.
 */
function directPort(spec: ContainerSpec, c: Inspected): boolean {
  if (!spec.direct) return false;
  const have = showPorts(c.HostConfig.PortBindings ?? {});
  const direct = showPorts({ [`${CONTAINER_PORT}/tcp`]: [spec.direct] });
  return have.length === 1 && have[0] === direct[0];
}

/**
 * Where the container answers on the host: the address Docker published for the model's port (what
 * it picked, where the spec left the port to it), else the binding the container asked for.
 */
export function publishedOf(c: Inspected): { host: string; port: number } | undefined {
  const key = `${CONTAINER_PORT}/tcp`;
  for (const b of [c.NetworkSettings?.Ports?.[key]?.[0], c.HostConfig.PortBindings?.[key]?.[0]]) {
    const port = Number(b?.HostPort);
    if (b && Number.isInteger(port) && port > 0) return { host: b.HostIp || '0.0.0.0', port };
  }
  return undefined;
}

/** Whether the container carries the token we would give it now (only matters when it must be started). */
export function sameToken(c: Inspected, token: string | undefined): boolean {
  return tokenIn(c.Config.Env) === token;
}

/** Numbers compare by value, so a hand-typed `0.80` matches the rendered `0.8`. */
function sameArg(a: string, b: string): boolean {
  if (a === b) return true;
  const na = Number(a);
  const nb = Number(b);
  return a.trim() !== '' && b.trim() !== '' && Number.isFinite(na) && na === nb;
}

function diffCmd(have: string[], want: string[]): string[] {
  if (have.length === want.length && have.every((a, i) => sameArg(a, want[i] ?? ''))) return [];
  // Drift is logged: the values of secret flags (--api-key) are not.
  const show = (args: string[]) => maskArgs(args, '(hidden)').join(' ');
  return [`command: ${show(have)} (want ${show(want)})`];
}

function diffEnv(have: string[], want: string[], imageEnv: readonly string[]): string[] {
  const image = new Set(imageEnv);
  const wantSet = new Set(want.filter((e) => !isTokenEntry(e)));
  // A variable exactly as the image sets it is the image's, not an extra.
  const haveOwn = have.filter((e) => !isTokenEntry(e) && (!image.has(e) || wantSet.has(e)));
  return diffSet('env', haveOwn.map(hideValueOfSecretish), [...wantSet].map(hideValueOfSecretish));
}

/** Env differences are logged: show names only, values could be secrets. */
function hideValueOfSecretish(e: string): string {
  const [name = ''] = e.split('=');
  return isSecretEnvEntry(name, e.slice(name.length + 1)) ? `${name}=(hidden)` : e;
}

function diffSet(what: string, have: string[], want: string[]): string[] {
  const h = new Set(have);
  const w = new Set(want);
  return [
    ...[...w].filter((x) => !h.has(x)).map((x) => `${what} ${x} missing`),
    ...[...h].filter((x) => !w.has(x)).map((x) => `${what} ${x} not wanted`),
  ];
}

const showUlimit = (u: UlimitEntry) => (u.Soft === u.Hard ? `${u.Name}=${u.Soft}` : `${u.Name}=${u.Soft}:${u.Hard}`);

function showPorts(pb: Record<string, { HostIp: string; HostPort: string }[] | null>): string[] {
  const all = (ip: string) => (ip === '' || ip === '0.0.0.0' || ip === '::' ? '' : ip);
  return Object.entries(pb).flatMap(([cport, binds]) =>
    (binds ?? []).map((b) => `${all(b.HostIp) ? `${all(b.HostIp)}:` : ''}${b.HostPort}:${cport.replace(/\/tcp$/, '')}`),
  );
}

/** `/a:/b` and `/a:/b:rw` are the same mount. */
function normBind(b: string): string {
  const parts = b.split(':');
  if (parts.length === 3) {
    const opts = (parts[2] ?? '')
      .split(',')
      .filter((o) => o !== 'rw')
      .sort();
    return [parts[0], parts[1], ...(opts.length ? [opts.join(',')] : [])].join(':');
  }
  return b;
}

function showDevices(r: Partial<DeviceRequest>): string {
  const caps = (r.Capabilities ?? [])
    .map((c) => [...c].sort().join('+'))
    .sort()
    .join(',');
  const ids = r.DeviceIDs && r.DeviceIDs.length ? `ids=${r.DeviceIDs.join(',')}` : `count=${r.Count ?? 0}`;
  return `${r.Driver || 'auto'}/${caps}/${ids}`;
}
