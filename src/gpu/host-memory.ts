// The host's memory as the memory guard samples it: /proc/meminfo's MemAvailable and MemTotal, PSI's
// `full avg10` (/proc/pressure/memory, where the kernel has it), and what the model container's cgroup
// holds. A sample is one positioned read of each file, kept open, into one buffer: a few microseconds,
// nothing kept between samples but the numbers.
import { closeSync, constants, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import type { MemorySample } from '../core/model/host.js';

/** MemTotal, MemFree and MemAvailable are meminfo's first three lines (Linux 3.14 on): 256 bytes hold them. */
const HEAD = 256;

/** A number after `key` in `text` (`MemAvailable:   23697440 kB` -> 23697440), or undefined. */
function numberAfter(text: string, key: string): number | undefined {
  const at = text.indexOf(key);
  if (at < 0) return undefined;
  const n = Number.parseFloat(text.slice(at + key.length, at + key.length + 24).trimStart());
  return Number.isFinite(n) ? n : undefined;
}

/** MemAvailable and MemTotal, bytes, from meminfo's text. */
export function parseMemHead(text: string): { available: number; total: number } | undefined {
  const total = numberAfter(text, 'MemTotal:');
  const available = numberAfter(text, 'MemAvailable:');
  return total === undefined || available === undefined
    ? undefined
    : { total: total * 1024, available: available * 1024 };
}

/** PSI's `full avg10` from /proc/pressure/memory's text (`full avg10=1.23 ...`). */
export const parseFullAvg10 = (text: string): number | undefined => numberAfter(text, 'full avg10=');

/**
 * Where a container's cgroup keeps what it holds, by how the host lays cgroups out: v2 (`memory.current`)
 * or v1 (`memory.usage_in_bytes` under the memory controller's hierarchy), with Docker's cgroupfs driver
 * (`docker/ID`) or its systemd driver (`system.slice/docker-ID.scope`). This host and the e2e box (which
 * mounts the host's /sys/fs/cgroup) run v1 with cgroupfs; DGX OS runs v2 with systemd.
 */
export function cgroupCandidates(id: string, root = '/sys/fs/cgroup'): string[] {
  const v2 = existsSync(`${root}/cgroup.controllers`);
  const dirs = [`docker/${id}`, `system.slice/docker-${id}.scope`];
  return v2
    ? dirs.map((d) => `${root}/${d}/memory.current`)
    : dirs.map((d) => `${root}/memory/${d}/memory.usage_in_bytes`);
}

/** The same file found from a process of the container (its /proc/PID/cgroup), for other layouts. */
export function cgroupOfPid(pid: number, root = '/sys/fs/cgroup', proc = '/proc'): string | undefined {
  let text: string;
  try {
    text = readFileSync(`${proc}/${pid}/cgroup`, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (path === undefined) continue;
    if (controllers?.split(',').includes('memory')) return `${root}/memory${path}/memory.usage_in_bytes`;
    if (controllers === '' && existsSync(`${root}/cgroup.controllers`)) return `${root}${path}/memory.current`;
  }
  return undefined;
}

/** The first candidate that can be read. */
export function firstReadable(files: readonly string[]): string | undefined {
  return files.find((f) => {
    try {
      readFileSync(f);
      return true;
    } catch {
      return false;
    }
  });
}

function openOrNot(path: string): number | undefined {
  try {
    return openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
}

export class MemorySampler {
  private readonly buf = Buffer.allocUnsafe(HEAD);
  private meminfo: number | undefined;
  private psi: number | undefined;
  private cgroup: number | undefined;

  constructor(paths: { meminfo?: string; psi?: string } = {}) {
    this.meminfo = openOrNot(paths.meminfo ?? '/proc/meminfo');
    this.psi = openOrNot(paths.psi ?? '/proc/pressure/memory');
  }

  /** The container's cgroup file, once found (samples before that carry no cgroup figure). */
  watchCgroup(file: string): void {
    this.cgroup = openOrNot(file);
  }

  private text(fd: number | undefined, len: number): string | undefined {
    if (fd === undefined) return undefined;
    try {
      const n = readSync(fd, this.buf, 0, len, 0);
      return this.buf.toString('latin1', 0, n);
    } catch {
      return undefined;
    }
  }

  /** One sample; undefined when /proc/meminfo cannot be read. */
  read(): MemorySample | undefined {
    const head = parseMemHead(this.text(this.meminfo, HEAD) ?? '');
    if (!head) return undefined;
    const pressure = this.psi === undefined ? undefined : parseFullAvg10(this.text(this.psi, 128) ?? '');
    const held = this.cgroup === undefined ? undefined : Number.parseInt(this.text(this.cgroup, 32) ?? '', 10);
    return {
      ...head,
      ...(pressure === undefined ? {} : { pressure }),
      ...(held === undefined || !Number.isFinite(held) ? {} : { cgroup: held }),
    };
  }

  close(): void {
    for (const fd of [this.meminfo, this.psi, this.cgroup]) {
      if (fd === undefined) continue;
      try {
        closeSync(fd);
      } catch {
        /* closed */
      }
    }
    this.meminfo = this.psi = this.cgroup = undefined;
  }
}

/** MemAvailable now (bytes), read once: what a start is measured against. */
export function memAvailableNow(): number | undefined {
  const s = new MemorySampler({ psi: '/dev/null/none' });
  try {
    return s.read()?.available;
  } finally {
    s.close();
  }
}
