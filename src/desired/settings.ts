// A config, flattened into what the state machine reads (core/model/settings.ts); all durations in ms.
import { buildSpec } from '../container/spec.js';
import { tokenFingerprint } from '../container/token-env.js';
import type { Settings } from '../core/model/settings.js';
import type { Config } from '../config/schema.js';
import { PRESSURE_AUTO } from '../core/rules/memory-guard.js';

/** `file`: the config file it came from (the status line names it). */
export function settingsOf(c: Config, token?: string, file = '/etc/gptoss/config.yaml'): Settings {
  const { health: h, restart: r } = c;
  const specHash = buildSpec(c, undefined).hash;
  const t: Settings = {
    name: c.container.name,
    servedName: c.model.servedName,
    port: c.container.port,
    startupPeriod: h.startup.period,
    startupTimeout: h.startup.timeout,
    livenessPeriod: h.liveness.period,
    livenessTimeout: h.liveness.timeout,
    failureThreshold: h.liveness.failureThreshold,
    readinessPeriod: h.readiness.period,
    readinessTimeout: h.readiness.timeout,
    backoff: { initialDelay: r.initialDelay, multiplier: r.multiplier, maxDelay: r.maxDelay, jitter: r.jitter },
    resetAfter: r.resetAfter,
    crashLoopAfter: r.crashLoopAfter,
    stopTimeout: c.container.stopTimeout,
    stopOnExit: c.container.stopOnExit,
    recheck: c.waits.recheck,
    gpuRuntimeRecheck: c.waits.gpuRuntimeRecheck,
    pullRetry: c.waits.pullRetry,
    image: c.container.image,
    modelId: c.model.id,
    utilization: c.model.gpuMemoryUtilization,
    maxModelLen: c.model.maxModelLen,
    encodingsDir: c.paths.encodings,
    verifyEncodings: c.encodings.verify,
    restartOnEncodings: c.encodings.restartOnChange,
    jobs: { deepProbe: c.schedule.deepProbe.cron, maintenanceRestart: c.schedule.maintenanceRestart.cron },
    deepTimeout: c.schedule.deepProbe.timeout,
    deepFailureThreshold: c.schedule.deepProbe.failureThreshold,
    stallWindow: h.stall.enabled ? h.stall.window : 0,
    stallFailureThreshold: h.stall.failureThreshold,
    releaseTimeout: c.gpu.releaseTimeout,
    telemetryPeriod: c.gpu.telemetryPeriod ?? 0,
    throttleAlertAfter: c.gpu.throttleAlertAfter,
    gpus: c.container.gpus,
    envNames: Object.keys(c.container.env),
    specHash,
    configSpec: specHash,
    configFile: file,
    rollback: { ...c.rollback },
  };
  withOptions(c, t);
  const fp = tokenFingerprint(token);
  if (fp) t.tokenFingerprint = fp;
  return t;
}

/** The settings a config has only when it turns them on: the gate, the guard, slow, the budget. */
function withOptions(c: Config, t: Settings): void {
  const { health: h, restart: r } = c;
  if (c.gate.enabled) {
    const { holdTimeout, maxHeld, drainTimeout, maxBodySize, upstreamPort, apiKeyFile } = c.gate;
    const listen = { host: c.container.bindAddress || '0.0.0.0', port: c.container.port };
    t.gate = { listen, apiKeyFile, holdTimeout, maxHeld, drainTimeout, maxBodySize, upstreamPort };
  }
  if (h.startup.stallTimeout !== null) t.loadStallTimeout = h.startup.stallTimeout;
  const g = c.memoryGuard;
  if (g.enabled) {
    const pressure = g.pressure === 'off' ? null : g.pressure === 'auto' ? PRESSURE_AUTO : g.pressure;
    t.memoryGuard = { floor: g.floor, pressure, stuckThreshold: g.stuckThreshold };
  }
  if (h.slow.enabled) t.slow = { baseline: h.slow.baseline, window: h.slow.window, slower: h.slow.slower };
  if (r.budget) t.budget = { count: r.budget.count, window: r.budget.window };
}
