// The deployment as a Docker Compose file: the same container, and a healthcheck like the supervisor's probes.
import { stringify } from 'yaml';
import type { Deployment } from './deployment.js';
import { header, seconds } from './deployment.js';

/** /health from inside the container: curl where the image has it (NGC's), else busybox wget. */
export const HEALTH_CMD =
  'curl -fsS -o /dev/null http://127.0.0.1:8000/health || wget -q -O /dev/null http://127.0.0.1:8000/health';

function gpuDevices(d: Deployment): Record<string, unknown>[] {
  if (d.gpus === 'none') return [];
  const base = { capabilities: ['gpu'] };
  if (d.gpus === 'all') return [{ ...base, count: 'all' }];
  if (typeof d.gpus === 'number') return [{ ...base, count: d.gpus }];
  return [{ ...base, device_ids: d.gpus.map(String) }];
}

export function composeOf(d: Deployment, file: string): string {
  const h = d.health;
  const live = { interval: seconds(h.liveness.period), timeout: seconds(h.liveness.timeout) };
  const start = seconds(h.startup.timeout);
  const dropped = [
    'compose does not restart a container whose healthcheck fails (it is only marked unhealthy); the ' +
      'supervisor restarts it after health.liveness.failureThreshold failures',
    `health.startup.period (${h.startup.period} ms): start_interval needs Compose 2.20 and Docker 25; the ` +
      `liveness interval is used during start-up too`,
    ...(live.interval.rounded || live.timeout.rounded || start.rounded
      ? ['sub-second probe durations are rounded up to whole seconds']
      : []),
  ];
  const env: Record<string, string> = Object.fromEntries(d.env);
  for (const s of d.secrets)
    env[s.name] = `\${${s.name}:?set ${s.name} in the environment (it comes from ${s.hostSource})}`;
  const service: Record<string, unknown> = {
    image: d.image,
    container_name: d.name,
    command: d.args,
    environment: env,
    ...(d.ipcHost ? { ipc: 'host' } : {}),
    ulimits: Object.fromEntries(d.ulimits.map((u) => [u.Name, { soft: u.Soft, hard: u.Hard }])),
    ports: [`${d.port.bind ? `${d.port.bind}:` : ''}${d.port.host}:${d.port.container}`],
    volumes: d.mounts.map((m) => `${m.host}:${m.container}${m.readOnly ? ':ro' : ''}`),
    // The default bridge network, as `docker run` (and the supervisor) use: not a project network.
    network_mode: 'bridge',
    stop_grace_period: `${d.stopTimeoutS}s`,
    restart: 'unless-stopped',
    healthcheck: {
      test: ['CMD-SHELL', HEALTH_CMD],
      interval: `${live.interval.s}s`,
      timeout: `${live.timeout.s}s`,
      retries: h.liveness.failureThreshold,
      start_period: `${start.s}s`,
    },
  };
  const devices = gpuDevices(d);
  if (devices.length) service['deploy'] = { resources: { reservations: { devices } } };
  const doc = { services: { [d.name]: service } };
  const yaml = stringify(doc, { lineWidth: 0, aliasDuplicateObjects: false });
  return `${header('#', file, 'compose', d, dropped)}\n${yaml}`;
}
