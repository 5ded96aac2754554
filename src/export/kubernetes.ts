// The deployment as a Kubernetes Deployment and Service, with probes equal to the supervisor's.
import { stringify } from 'yaml';
import type { Deployment } from './deployment.js';
import { header, seconds } from './deployment.js';

/** A value the target cannot express and that would run a different container: the export refuses it. */
export class CannotExpress extends Error {
  override name = 'CannotExpress';
}

/** The Secret the HF token (and any other secret variable) is read from. */
export const SECRET_NAME = 'gptoss-secrets';

function gpuLimit(d: Deployment): { count?: number; note?: string } {
  if (d.gpus === 'none') return {};
  if (d.gpus === 'all')
    return {
      count: 1,
      note: 'container.gpus all: Kubernetes requests GPUs by count; 1 is requested (set container.gpus to a count)',
    };
  if (typeof d.gpus === 'number') return { count: d.gpus };
  throw new CannotExpress(
    `container.gpus lists device ids (${d.gpus.join(', ')}): Kubernetes schedules GPUs by count, not by id; set ` +
      'container.gpus to a count for this export',
  );
}

/** What Kubernetes cannot say of this deployment, for the header. */
function droppedOf(d: Deployment, gpuNote: string | undefined, rounded: boolean): string[] {
  const ulimits = d.ulimits.map((u) => `${u.Name}=${u.Soft}`).join(', ') || 'none';
  return [
    ...(gpuNote ? [gpuNote] : []),
    `container.ulimits (${ulimits}): a Pod cannot set ulimits; they come from the node's container runtime (set ` +
      'memlock unlimited there)',
    `container.port ${d.port.host} and bindAddress "${d.port.bind}": the Service below exposes port ` +
      `${d.port.container} inside the cluster; publish it with your ingress or a NodePort`,
    `container.name ${d.name}: Pods are named by Kubernetes; it is the Deployment's name here`,
    ...(rounded ? ['sub-second probe durations are rounded up to whole seconds'] : []),
  ];
}

/** The probes, equal to health.*: the start-up budget as failureThreshold x period. */
function probesOf(d: Deployment) {
  const h = d.health;
  const startPeriod = seconds(h.startup.period);
  const live = { period: seconds(h.liveness.period), timeout: seconds(h.liveness.timeout) };
  const ready = { period: seconds(h.readiness.period), timeout: seconds(h.readiness.timeout) };
  const httpGet = (path: string) => ({ path, port: d.port.container });
  const rounded = [startPeriod, live.period, live.timeout, ready.period, ready.timeout].some((x) => x.rounded);
  return {
    rounded,
    probes: {
      startupProbe: {
        httpGet: httpGet('/health'),
        periodSeconds: startPeriod.s,
        timeoutSeconds: live.timeout.s,
        failureThreshold: Math.max(1, Math.ceil(h.startup.timeout / (startPeriod.s * 1000))),
      },
      livenessProbe: {
        httpGet: httpGet('/health'),
        periodSeconds: live.period.s,
        timeoutSeconds: live.timeout.s,
        failureThreshold: h.liveness.failureThreshold,
      },
      readinessProbe: {
        httpGet: httpGet('/v1/models'),
        periodSeconds: ready.period.s,
        timeoutSeconds: ready.timeout.s,
      },
    },
  };
}

function containerOf(d: Deployment, gpuCount: number | undefined, probes: object) {
  const env = [
    ...d.env.map(([name, value]) => ({ name, value })),
    ...d.secrets.map((s) => ({ name: s.name, valueFrom: { secretKeyRef: { name: SECRET_NAME, key: s.name } } })),
  ];
  return {
    name: 'vllm',
    image: d.image,
    // args, not command: the NGC image's entrypoint sets up CUDA before running them.
    args: d.args,
    env,
    ports: [{ name: 'http', containerPort: d.port.container }],
    ...(gpuCount !== undefined ? { resources: { limits: { 'nvidia.com/gpu': gpuCount } } } : {}),
    volumeMounts: d.mounts.map((m, i) => ({ name: `vol${i}`, mountPath: m.container, readOnly: m.readOnly })),
    ...probes,
  };
}

export function kubernetesOf(d: Deployment, file: string): string {
  const gpu = gpuLimit(d);
  const { rounded, probes } = probesOf(d);
  const labels = { app: d.name };
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: d.name, labels },
    spec: {
      replicas: 1,
      // One model per GPU: the old Pod goes before the new one starts.
      strategy: { type: 'Recreate' },
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          ...(d.ipcHost ? { hostIPC: true } : {}),
          terminationGracePeriodSeconds: d.stopTimeoutS,
          containers: [containerOf(d, gpu.count, probes)],
          volumes: d.mounts.map((m, i) => ({
            name: `vol${i}`,
            hostPath: { path: m.host, type: m.readOnly ? 'Directory' : 'DirectoryOrCreate' },
          })),
        },
      },
    },
  };
  const service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: d.name, labels },
    spec: { selector: labels, ports: [{ name: 'http', port: d.port.container, targetPort: 'http' }] },
  };
  const from = d.secrets.map(
    (s) => `--from-file=${s.name}=${s.name === 'HF_TOKEN' ? s.hostSource : `<${s.name} file>`}`,
  );
  const opts = { lineWidth: 0, aliasDuplicateObjects: false };
  return (
    `${header('#', file, 'kubernetes', d, droppedOf(d, gpu.note, rounded))}` +
    `# The secret variables come from the Secret ${SECRET_NAME}: kubectl create secret generic ${SECRET_NAME} ` +
    `${from.join(' ')}\n---\n${stringify(deployment, opts)}---\n${stringify(service, opts)}`
  );
}
