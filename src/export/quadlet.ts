// The deployment as a Podman Quadlet .container unit: the guide's flags, health checks, Notify=healthy.
import { HEALTH_CMD } from './compose.js';
import type { Deployment } from './deployment.js';
import { header, seconds } from './deployment.js';

// eslint-disable-next-line no-control-regex -- control characters are what it escapes
const CONTROL = /[\x00-\x1f\x7f]/g;

/** `%` starts a systemd specifier (`%n`, `%h`) in almost every setting: `%%` is a literal one. */
const literal = (s: string) => s.replace(/%/g, '%%');

/** C escapes systemd (and Quadlet's parser) read inside a quoted word: a control character stays in it. */
const C_ESCAPES: Readonly<Record<string, string>> = { '\n': '\\n', '\t': '\\t', '\r': '\\r' };
const cEscape = (c: string) => C_ESCAPES[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;

/**
 * One word as systemd reads it in Exec= and Environment= (systemd.syntax, systemd.service "Command
 * lines"): `%` doubled, quoted when it must be, and within the quotes `\`, `"`, `$` and control
 * characters escaped, so a newline never ends the line.
 */
export function unitWord(w: string): string {
  const s = literal(w);
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  const inner = s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$/g, '$$$$').replace(CONTROL, cEscape);
  return `"${inner}"`;
}

/** Text on one line: a control character shown as its escape, never a line break. */
const oneLine = (s: string) => s.replace(CONTROL, cEscape);

/** Free text in a setting's value (Description=, Volume=): one line, `%` literal. */
export const unitText = (s: string) => literal(oneLine(s));

/** The Podman secret a variable is read from: `podman secret create gptoss-hf-token /etc/gptoss/hf_token`. */
export const secretName = (env: string) => `gptoss-${env.toLowerCase().replace(/_/g, '-')}`;

function devices(d: Deployment): string[] {
  if (d.gpus === 'none') return [];
  if (d.gpus === 'all') return ['AddDevice=nvidia.com/gpu=all'];
  if (typeof d.gpus === 'number') return Array.from({ length: d.gpus }, (_, i) => `AddDevice=nvidia.com/gpu=${i}`);
  return d.gpus.map((g) => `AddDevice=nvidia.com/gpu=${g}`);
}

export function quadletOf(d: Deployment, file: string): string {
  const h = d.health;
  const live = { interval: seconds(h.liveness.period), timeout: seconds(h.liveness.timeout) };
  const start = seconds(h.startup.period);
  const startupRetries = Math.max(1, Math.ceil(h.startup.timeout / (start.s * 1000)));
  const dropped = [
    ...(typeof d.gpus === 'number'
      ? [`container.gpus ${d.gpus}: CDI names GPUs by index; the first ${d.gpus} are given (nvidia-ctk cdi generate)`]
      : []),
    ...(live.interval.rounded || live.timeout.rounded || start.rounded
      ? ['sub-second probe durations are rounded up to whole seconds']
      : []),
  ];
  const secretHow = d.secrets.map((s) => {
    const from = s.name === 'HF_TOKEN' ? oneLine(s.hostSource) : `<${s.name} file>`;
    return `podman secret create ${secretName(s.name)} ${from}`;
  });
  const lines = [
    header('#', oneLine(file), 'quadlet', d, dropped).trimEnd(),
    `# Save as /etc/containers/systemd/${d.name}.container; the secrets first: ${secretHow.join('; ')}`,
    '',
    '[Unit]',
    `Description=${unitText(d.servedName)} on vLLM (exported from gptoss-supervisor)`,
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Container]',
    `ContainerName=${d.name}`,
    `Image=${d.image}`,
    `Exec=${d.args.map(unitWord).join(' ')}`,
    ...d.env.map(([k, v]) => `Environment=${unitWord(`${k}=${v}`)}`),
    ...d.secrets.map((s) => `Secret=${secretName(s.name)},type=env,target=${s.name}`),
    ...(d.ipcHost ? ['PodmanArgs=--ipc=host'] : []),
    ...d.ulimits.map((u) => `Ulimit=${u.Name}=${u.Soft}:${u.Hard}`),
    `PublishPort=${d.port.bind ? `${d.port.bind}:` : ''}${d.port.host}:${d.port.container}`,
    ...d.mounts.map((m) => `Volume=${unitText(m.host)}:${m.container}${m.readOnly ? ':ro' : ''}`),
    ...devices(d),
    // The start-up budget: HealthStartupRetries x HealthStartupInterval (health.startup.timeout).
    `HealthStartupCmd=${HEALTH_CMD}`,
    `HealthStartupInterval=${start.s}s`,
    `HealthStartupTimeout=${live.timeout.s}s`,
    `HealthStartupRetries=${startupRetries}`,
    `HealthCmd=${HEALTH_CMD}`,
    `HealthInterval=${live.interval.s}s`,
    `HealthTimeout=${live.timeout.s}s`,
    `HealthRetries=${h.liveness.failureThreshold}`,
    // Failed liveness: the container is killed and systemd's Restart= starts it again.
    'HealthOnFailure=kill',
    // systemd's start waits until the first health check passes: the model serves.
    'Notify=healthy',
    `StopTimeout=${d.stopTimeoutS}`,
    '',
    '[Service]',
    'Restart=always',
    `TimeoutStartSec=${Math.ceil(h.startup.timeout / 1000) + 60}`,
    `TimeoutStopSec=${d.stopTimeoutS + 30}`,
    '',
    '[Install]',
    'WantedBy=multi-user.target default.target',
  ];
  return `${lines.join('\n')}\n`;
}
