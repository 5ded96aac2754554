// `run`: the long-running daemon (the unit's ExecStart). Wiring only: each piece lives in its own room.
import { probeHost } from '../health/probe.js';
import { propsOf, scrubProps, type Context } from '../dbus/props.js';
import { BusService, type ServiceHandlers } from '../dbus/service.js';
import { Engine } from '../docker/engine.js';
import { createLogger, type Level, type LogFormat, type Logger } from '../log/logger.js';
import { DesiredConfig } from '../runtime/desired.js';
import type { Desired } from '../desired/desired.js';
import { extendFor } from '../core/machine/ready.js';
import { cannotRollback } from '../core/machine/rollback.js';
import { exposureWarning } from '../core/rules/exposure.js';
import { exposureOf } from '../preflight/gather.js';
import { Monitor } from '../runtime/monitor.js';
import { Supervisor } from '../runtime/supervisor.js';
import { resolveStateDir, StateStore } from '../state/store.js';
import { SystemdBridge } from '../systemd/bridge.js';
import { dgramUnavailable, notifierFromEnv } from '../systemd/notify.js';
import { readConfigIsolated } from '../reader/isolated.js';
import { resolveToken } from '../config/token.js';
import type { Command } from './command.js';
import { loadForCommand, type Loaded } from './config-arg.js';
import { EXIT, UsageError } from './exit.js';
import { handleSignals } from './signals.js';

const LEVELS: readonly Level[] = ['debug', 'info', 'warn', 'error'];
const FORMATS: readonly LogFormat[] = ['auto', 'text', 'json', 'journal'];

/** What D-Bus shows besides the state. */
function contextOf(d: Desired): Context {
  const host = probeHost(d.config.container.bindAddress);
  return {
    image: d.config.container.image,
    servedName: d.config.model.servedName,
    endpoint: `http://${host.includes(':') ? `[${host}]` : host}:${d.config.container.port}/v1`,
    configPath: d.file,
    specHash: d.settings.specHash,
    exposure: exposureWarning(exposureOf(d.config)) ?? '',
  };
}

export const runCommand: Command = {
  help: `Usage: gptoss-supervisor run [--config PATH] [--state-dir DIR] [--log-format F] [--log-level LEVEL]

Reconciles the container once (a healthy one is adopted, not restarted), then keeps it serving:
restarts it when it exits, is removed, or fails its health checks (health.* in the config),
with backoff (restart.*). Follows Docker's event stream; when Docker goes away it waits and
resumes. SIGHUP re-reads the config: an invalid one is refused and the last good one runs on; a
changed container spec recreates the container; other changes apply in place. SIGTERM or SIGINT
stops the container gracefully (container.stopTimeout) and exits 0, or leaves it running when
container.stopOnExit is false. A second SIGINT exits at once. SIGUSR2 exits with status 75 and
leaves the container running for the next supervisor to adopt (install.sh uses it to upgrade).

Under systemd (Type=notify) it sends READY=1 (see notify.ready), STATUS= lines, WATCHDOG=1,
RELOADING=1 and STOPPING=1, and writes structured records to the journal.

  --gate-control PATH the control socket of gptoss-gate.service ($GPTOSS_GATE_CONTROL, which
                      install.sh sets); without it the gate (gate.enabled) runs as a child process
  --state-dir DIR     where the restart count survives restarts of the supervisor
                      (default: $STATE_DIRECTORY, else /var/lib/gptoss-supervisor)
  --log-format F      auto (default: the journal under systemd, else text), text, json (pino) or journal
  --log-level L       debug, info (default), warn or error

Exit codes: 0 stopped on a signal, 1 invalid config at start, 64 usage error, 70 internal error,
75 handed over (SIGUSR2), 130 a second SIGINT.
`,
  options: {
    'state-dir': { type: 'string' },
    'gate-control': { type: 'string' },
    'log-format': { type: 'string' },
    'log-level': { type: 'string' },
  },
  async run(values) {
    const format = (values['log-format'] ?? 'auto') as LogFormat;
    const level = (values['log-level'] ?? 'info') as Level;
    if (!FORMATS.includes(format)) throw new UsageError(`--log-format must be one of ${FORMATS.join(', ')}`);
    if (!LEVELS.includes(level)) throw new UsageError(`--log-level must be one of ${LEVELS.join(', ')}`);
    const loaded = await loadForCommand(values['config'], readConfigIsolated);
    if (!loaded) return EXIT.config;
    const log = createLogger({ format, level });
    // A library's stray rejection must not take the model's supervision down with it.
    const onStray = (err: unknown) =>
      log.log('error', `internal error (unhandled rejection), carrying on: ${(err as Error)?.stack ?? String(err)}`);
    process.on('unhandledRejection', onStray);
    try {
      const stateDir = resolveStateDir(values['state-dir'] as string | undefined);
      const gate = (values['gate-control'] as string | undefined) ?? process.env['GPTOSS_GATE_CONTROL'];
      return await supervise(loaded, log, stateDir, gate || undefined);
    } finally {
      process.off('unhandledRejection', onStray);
    }
  },
};

function startLine({ config: c, file }: Loaded, stateDir: string, tokenSource: string | undefined): string {
  const what = `${c.container.name} (${c.model.id} as ${c.model.servedName}, port ${c.container.port})`;
  return `supervising ${what}; config ${file}; state ${stateDir}; HF token from ${tokenSource ?? 'nowhere (none set)'}`;
}

/**
 * Supervision is over: a handle something left open (a bug) must not keep the process, and the
 * unit, in "deactivating" until systemd kills it. Say what was open, then exit anyway.
 */
function exitAnyway(log: Logger, code: number): void {
  setTimeout(() => {
    const open = (process as unknown as { _getActiveHandles(): object[] })._getActiveHandles().map(describeHandle);
    log.log('warn', `still running 2s after supervision stopped (left open: ${open.join(', ')}); exiting now`);
    process.exit(code);
  }, 2000).unref();
}

/** A handle for a bug report: its kind, and where it leads when it is a socket or a timer. */
function describeHandle(h: object): string {
  const x = h as {
    constructor: { name: string };
    remoteAddress?: string;
    _idleTimeout?: number;
    _httpMessage?: { method?: string; path?: string };
    _host?: string;
  };
  const req = x._httpMessage ? `${x._httpMessage.method} ${x._httpMessage.path}` : undefined;
  const where = x.remoteAddress ?? req ?? x._host ?? (x._idleTimeout !== undefined ? `${x._idleTimeout}ms` : '');
  return `${x.constructor.name}${where ? ` ${where}` : ''}`;
}

/**
 * SIGTERM/SIGINT stop, SIGHUP reloads, SIGUSR2 hands over. A SIGTERM that is systemd restarting this
 * unit (`systemctl restart gptoss-supervisor`) hands over too: the model keeps serving and the next
 * supervisor adopts it; only a stop stops the model (container.stopOnExit).
 */
function signalsFor(log: Logger, bridge: SystemdBridge, sup: Supervisor, bus: BusService, reload: () => void) {
  return handleSignals({
    log,
    // The container's graceful stop may outlast the unit's TimeoutStopSec: ask for what it needs.
    stop: (sig) =>
      void (sig === 'SIGTERM' ? bus.ownJob() : Promise.resolve(undefined)).then((job) => {
        if (job === 'restart') {
          log.log('info', 'systemd is restarting this unit: handing the model over to the next supervisor');
          bridge.stopping(0);
          return sup.shutdown('SIGTERM (systemctl restart)', true);
        }
        bridge.stopping(sup.stopBudgetMs());
        sup.shutdown(sig);
      }),
    reload,
    // SIGUSR2: exit 75 leaving the container running; the unit restarts the service (an upgrade).
    handover: () => {
      bridge.stopping(0);
      sup.shutdown('SIGUSR2', true);
    },
  });
}

/** What the D-Bus methods do, and docker.service's state changes. */
function busHandlers(sup: () => Supervisor, desired: DesiredConfig): ServiceHandlers {
  return {
    restart: () => sup().request({ type: 'restartRequested', by: 'D-Bus Restart()' }),
    rollback: () => {
      const no = cannotRollback(sup().state, sup().desired.settings);
      if (!no) sup().request({ type: 'rollbackRequested', by: 'D-Bus Rollback()' });
      return no;
    },
    reload: () => desired.reload('signal'),
    dockerUnit: (state, active) => sup().dockerUnit(state, active),
  };
}

/** The daemon's pieces, wired: the desired config, the supervisor, systemd, D-Bus, signals. */
async function supervise(loaded: Loaded, log: Logger, stateDir: string, gateControl?: string): Promise<number> {
  const notifier = notifierFromEnv();
  const bridge = new SystemdBridge(notifier, log, loaded.config.notify.ready);
  const token = await resolveToken(loaded.config.hfToken);
  const desired = new DesiredConfig({
    ...loaded,
    token,
    log,
    apply: async (change) => {
      bridge.reloading();
      if (!('error' in change)) {
        bridge.readyMode = change.desired.config.notify.ready;
        monitor.apply(change.desired);
      }
      await sup.reload(change);
      bridge.reloaded();
    },
  });
  // What D-Bus shows of the desired config in force (a rollback's shows the image it runs, by digest).
  let shown = { for: desired.current, context: contextOf(desired.current) };
  const monitor = new Monitor(log, desired.current);
  const bus = new BusService(
    log,
    busHandlers(() => sup, desired),
  );
  const sup: Supervisor = new Supervisor({
    engine: new Engine(),
    desired: desired.current,
    log,
    store: new StateStore(stateDir),
    onStatus: (line, state) => bridge.status(line, state.phase),
    onState: (state, line, now) => {
      const figures = monitor.requests.summary(now);
      if (sup.desired !== shown.for) shown = { for: sup.desired, context: contextOf(sup.desired) };
      bus.update(scrubProps(propsOf(state, line, shown.context, now, figures), (text) => log.scrub(text)));
      monitor.state(state, line, now);
    },
    onEvent: (ev, before, after) => monitor.event(ev, before, after),
    onDoorRecords: (records) => monitor.records(records, sup.now()),
    dockerUnitState: () => bus.dockerState(),
    ...(gateControl ? { gateControl } : {}),
  });
  log.log('info', startLine(loaded, stateDir, token?.source), { event: 'supervisor-started' });
  if (notifier.active && dgramUnavailable()) log.log('warn', `cannot talk to systemd: ${dgramUnavailable()}`);
  await desired.start();
  const signals = signalsFor(log, bridge, sup, bus, () => void desired.reload('signal'));
  bridge.start(() => extendFor(sup.state, sup.now(), desired.current.settings));
  bus.start();
  await sup.start();
  const code = await sup.done;
  await desired.stop();
  monitor.stop();
  bus.stop();
  bridge.stop();
  signals.off();
  exitAnyway(log, code);
  return code;
}
