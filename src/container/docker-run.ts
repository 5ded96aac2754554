// The create body as a `docker run` command, one flag per line: what the operator reads is what runs.
import { CONTAINER_PORT, type ContainerSpec } from './spec.js';
import { isSecretEnvEntry, maskArgs } from '../config/vllm-flags.js';
import { isTokenEntry, tokenEntry } from './token-env.js';

export const MASK = '********';
const MASKED_TOKEN = tokenEntry(MASK);

/** Quotes a word for POSIX shells only when it needs it. */
export function shellQuote(word: string): string {
  if (word.includes(MASK)) return word; // shown as is: a mask to read, not a value to run
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** An IPv6 address in a port flag goes in brackets. */
const hostIp = (ip: string) => (ip.includes(':') ? `[${ip}]` : ip);

function gpuFlag(spec: ContainerSpec): string[] {
  const req = spec.body.HostConfig.DeviceRequests[0];
  if (!req) return [];
  if (req.DeviceIDs && req.DeviceIDs.length) return ['--gpus', `"device=${req.DeviceIDs.join(',')}"`];
  return ['--gpus', req.Count === -1 ? 'all' : String(req.Count)];
}

/**
 * Renders the spec. The token's value never appears: it is shown as `HF_TOKEN=********`
 * (or noted as absent), whatever the spec was built with.
 */
export function renderDockerRun(spec: ContainerSpec, tokenSource?: string): string {
  const b = spec.body;
  const h = b.HostConfig;
  const flags: string[][] = [['--name', spec.name]];
  const gpus = gpuFlag(spec);
  if (gpus.length) flags.push([gpus[0] ?? '', gpus[1] ?? '']);
  flags.push([`--ipc=${h.IpcMode}`]);
  for (const u of h.Ulimits)
    flags.push(['--ulimit', `${u.Name}=${u.Soft === u.Hard ? u.Soft : `${u.Soft}:${u.Hard}`}`]);
  for (const [cport, binds] of Object.entries(h.PortBindings)) {
    const inner = cport === `${CONTAINER_PORT}/tcp` ? String(CONTAINER_PORT) : cport;
    for (const bind of binds)
      flags.push(['-p', `${bind.HostIp ? `${hostIp(bind.HostIp)}:` : ''}${bind.HostPort}:${inner}`]);
  }
  for (const e of b.Env) {
    const name = e.split('=')[0] ?? '';
    const secret = isSecretEnvEntry(name, e.slice(name.length + 1));
    flags.push(['-e', isTokenEntry(e) ? MASKED_TOKEN : secret ? `${name}=${MASK}` : e]);
  }
  for (const v of h.Binds) flags.push(['-v', v]);
  for (const [k, v] of Object.entries(b.Labels)) flags.push(['--label', `${k}=${v}`]);
  const lines = ['docker run -d', ...flags.map((f) => `  ${f.map(shellQuote).join(' ')}`)];
  lines.push(`  ${shellQuote(b.Image)}`);
  const [exe, sub, model, ...rest] = b.Cmd;
  // The values of secret flags (--api-key) are shown masked, as the token is.
  const args = maskArgs(rest, MASK);
  lines.push(
    `  ${[exe, sub, model]
      .filter((w): w is string => w !== undefined)
      .map(shellQuote)
      .join(' ')}`,
  );
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    const next = args[i + 1];
    if (a.startsWith('-') && !a.includes('=') && next !== undefined && !next.startsWith('-')) {
      lines.push(`  ${shellQuote(a)} ${shellQuote(next)}`);
      i++;
    } else lines.push(`  ${shellQuote(a)}`);
  }
  const head = [
    `# ${spec.name}: the container gptoss-supervisor keeps running (spec ${spec.hash.slice(0, 12)})`,
    `# HF_TOKEN: ${tokenSource ? `from ${tokenSource}, value hidden` : 'none found (set hfToken; see config.yaml)'}`,
  ];
  return `${head.join('\n')}\n${lines.join(' \\\n')}\n`;
}
