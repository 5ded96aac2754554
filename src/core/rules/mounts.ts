// Host folders that may not be bind-mounted into the model container: judged on the path the config
// gives (the schema) and on where a symlinked path leads (the pre-start check).

/** `/vllm/../etc/` -> `/etc`: the folder a path names (POSIX rules, no file system). */
export function normalisePath(p: string): string {
  const abs = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length && out[out.length - 1] !== '..') out.pop();
      else if (!abs) out.push('..');
      continue;
    }
    out.push(part);
  }
  const joined = out.join('/');
  return abs ? `/${joined}` : joined || '.';
}

const SYSTEM = 'a system folder';

/** Refused by name only: what is below them may be a folder of the operator's own (/opt/vllm, /srv/models). */
const EXACT = new Set(['/', '/mnt', '/media', '/opt', '/srv', '/tmp', '/var', '/var/lib', '/var/tmp']);

/** Refused with everything below them, and what each is. */
const TREES: ReadonlyArray<readonly [string, string]> = [
  ...[
    '/bin',
    '/boot',
    '/dev',
    '/etc',
    '/lib',
    '/lib32',
    '/lib64',
    '/libx32',
    '/proc',
    '/run',
    '/sbin',
    '/sys',
    '/usr',
  ].map((t) => [t, SYSTEM] as const),
  ...['/var/run', '/var/lock', '/var/log', '/var/lib/systemd', '/var/lib/private', '/var/lib/dpkg', '/var/lib/apt'].map(
    (t) => [t, SYSTEM] as const,
  ),
  ['/home', 'in a home folder'],
  ['/root', "in root's home folder"],
  ['/var/spool', "in the system's spool (cron jobs, mail)"],
  ['/var/mail', "in the system's mail"],
  ['/var/backups', "in the system's backups (copies of /etc/shadow among them)"],
  ['/var/lib/gptoss-supervisor', "in the supervisor's own state"],
  ...['/var/lib/docker', '/var/lib/containerd', '/var/lib/containers', '/var/lib/kubelet'].map(
    (t) => [t, "in a container engine's state"] as const,
  ),
];

/**
 * What a folder is, when it may not be mounted: `/etc is a system folder`, `/home/alice is in a home
 * folder`; undefined when it may be. `..` is resolved first, symlinks are not (the pre-start check does).
 */
export function refusedFolder(p: string): string | undefined {
  const n = normalisePath(p);
  const named = n === p ? n : `${n} (${p} once normalised)`;
  const tree = TREES.find(([t]) => n === t || n.startsWith(`${t}/`));
  if (tree) return `${named} is ${tree[1]}`;
  return EXACT.has(n) ? `${named} is ${SYSTEM}` : undefined;
}

export const MOUNT_FIX = 'use a folder of its own such as /vllm/...';
