// `run`: the long-running daemon (the unit's ExecStart). Reconciles, then supervises until SIGTERM.
import { formatProblem, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { resolveToken, type Token } from '../config/token.js';
import { buildSpec } from '../container/spec.js';
import { Supervisor, type Desired } from '../daemon/supervisor.js';
import { Engine } from '../docker/engine.js';
import { probeHost } from '../health/probe.js';
import { createLogger, type Level, type LogFormat, type Logger } from '../log/logger.js';
import { resolveStateDir, StateStore } from '../state/store.js';
import { settingsOf, type State } from '../supervisor/machine.js';
import { extendDue, readyDue } from '../supervisor/ready.js';
import { dgramUnavailable, notifierFromEnv } from '../systemd/notify.js';
import { FileWatcher } from '../watch/watch.js';
import { propsOf, type Context } from '../dbus/props.js';
import { BusService } from '../dbus/service.js';
import type { Command } from './commands.js';
import { EXIT, UsageError } from './exit.js';
import { loadForCommand } from './load.js';

const LEVELS: readonly Level[] = ['debug', 'info', 'warn', 'error'];
const FORMATS: readonly LogFormat[] = ['auto', 'text', 'json', 'journal'];
/** How far each EXTEND_TIMEOUT_USEC pushes systemd's start timeout, and how often it is sent. */
const EXTEND_MS = 60_000;
const EXTEND_EVERY_MS = 20_000;
/** A burst of saves (an editor, a config tool) becomes one reload after this much quiet. */
const CONFIG_DEBOUNCE_MS = 300;

function contextOf(config: Config, file: string): Context {
  const host = probeHost(config.container.bindAddress);
  return {
    image: config.container.image,
    servedName: config.model.servedName,
    endpoint: `http://${host.includes(':') ? `[${host}]` : host}:${config.container.port}/v1`,
    configPath: file,
  };
}

function desiredOf(config: Config, token: Token | undefined): Desired {
  return {
    config,
    spec: buildSpec(config, token?.value),
    token: token?.value,
    tokenSource: token?.source,
    settings: settingsOf(config),
    probeHost: probeHost(config.container.bindAddress),
  };
}

export const runCommand: Command = {
  summary: 'supervise the container until stopped (what the systemd unit runs)',
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

  --state-dir DIR     where the restart count survives restarts of the supervisor
                      (default: $STATE_DIRECTORY, else /var/lib/gptoss-supervisor)
  --log-format F      auto (default: the journal under systemd, else text), text, json (pino) or journal
  --log-level L       debug, info (default), warn or error

Exit codes: 0 stopped on a signal, 1 invalid config at start, 64 usage error, 70 internal error,
75 handed over (SIGUSR2).
`,
  options: {
    'state-dir': { type: 'string' },
    'log-format': { type: 'string' },
    'log-level': { type: 'string' },
  },
  async run(values) {
    const format = (values['log-format'] ?? 'auto') as LogFormat;
    const level = (values['log-level'] ?? 'info') as Level;
    if (!FORMATS.includes(format)) throw new UsageError(`--log-format must be one of ${FORMATS.join(', ')}`);
    if (!LEVELS.includes(level)) throw new UsageError(`--log-level must be one of ${LEVELS.join(', ')}`);
    const loaded = await loadForCommand(values['config']);
    if (!loaded) return EXIT.config;
    const { config, file } = loaded;
    const log = createLogger({ format, level });
    // A library's stray rejection must not take the model's supervision down with it.
    const onStray = (err: unknown) => log.log('error', `internal error (unhandled rejection), carrying on: ${(err as Error)?.stack ?? String(err)}`);
    process.on('unhandledRejection', onStray);
    const token = await resolveToken(config.hfToken);
    log.secret(token?.value);
    const stateDir = resolveStateDir(values['state-dir'] as string | undefined);
    const notifier = notifierFromEnv();
    const bridge = new SystemdBridge(notifier, log, config.notify.ready);

    // What D-Bus shows besides the state: follows reloads.
    let shown: Context = contextOf(config, file);
    const bus = new BusService(log, {
      restart: () => sup.requestRestart('D-Bus Restart()'),
      reload: () => reload('signal'),
      dockerUnit: (state, active) => sup.dockerUnit(state, active),
    });
    const sup = new Supervisor({
      engine: new Engine(),
      ...desiredOf(config, token),
      log,
      store: new StateStore(stateDir),
      onStatus: (line, state) => bridge.status(line, state),
      onState: (state, line) => bus.update(propsOf(state, log.scrub(line), shown)),
    });
    bridge.readyMode = config.notify.ready;
    log.log('info', `supervising ${config.container.name} (${config.model.id} as ${config.model.servedName}, port ${config.container.port}); config ${file}; state ${stateDir}; HF token from ${token?.source ?? 'nowhere (none set)'}`, { event: 'supervisor-started' });
    if (notifier.active && dgramUnavailable()) log.log('warn', `cannot talk to systemd: ${dgramUnavailable()}`);

    // What was last applied: a watched save that changes nothing (same text, same token) is no reload.
    let applied = { text: loaded.text, token: token?.value, tokenFile: config.hfToken.file };
    let missingSaid = false;
    /** `why`: 'signal' (SIGHUP, systemctl reload) always reloads; 'watch' only on a real change. */
    const reload = async (why: 'signal' | 'watch') => {
      const res = await loadConfig(file);
      if (!res.ok && why === 'watch' && res.problems.length === 1 && /no such file/.test(res.problems[0]?.message ?? '')) {
        // Deleted (or between an editor's delete and create): keep the last good config, say so once.
        if (!missingSaid) log.log('warn', `config ${file} was deleted; still running on the last good config (restore the file to change it)`, { event: 'config-rejected' });
        missingSaid = true;
        return;
      }
      missingSaid = false;
      const t = res.ok ? await resolveToken(res.config.hfToken) : undefined;
      if (why === 'watch' && res.ok && res.text === applied.text && t?.value === applied.token) return;
      bridge.reloading();
      if (!res.ok) {
        const first = res.problems[0];
        const more = res.problems.length > 1 ? ` (and ${res.problems.length - 1} more)` : '';
        for (const p of res.problems) log.log('error', formatProblem(p), { event: 'config-rejected' });
        sup.reload({ error: `${first ? formatProblem(first) : file}${more}` }, () => bridge.reloaded());
        return;
      }
      log.secret(t?.value);
      bridge.readyMode = res.config.notify.ready;
      shown = contextOf(res.config, file);
      const onlyToken = res.text === applied.text;
      applied = { text: res.text, token: t?.value, tokenFile: res.config.hfToken.file };
      const what = onlyToken ? `HF token (${t?.source ?? 'removed'})` : undefined;
      sup.reload({ desired: desiredOf(res.config, t), file, ...(what ? { what } : {}) }, () => bridge.reloaded());
      // hfToken.file moved: watch the new one.
      if (watched.tokenFile !== applied.tokenFile) await watch();
    };
    // The config file (and a symlink's target), and the token file: edits apply by themselves.
    let watched: { tokenFile: string; w?: FileWatcher } = { tokenFile: applied.tokenFile };
    const watch = async () => {
      await watched.w?.stop();
      const w = new FileWatcher({
        files: [file, applied.tokenFile],
        debounceMs: CONFIG_DEBOUNCE_MS,
        onChange: () => void reload('watch'),
        onError: (msg) => log.log('warn', msg),
      });
      watched = { tokenFile: applied.tokenFile, w };
      await w.start();
    };
    await watch();

    let signals = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      signals++;
      if (signals > 1 && sig === 'SIGINT') {
        log.log('warn', 'second SIGINT: exiting now, the container is left as it is');
        process.exit(130);
      }
      // The container's graceful stop may outlast the unit's TimeoutStopSec: ask for what it needs.
      bridge.stopping(sup.stopBudgetMs());
      sup.shutdown(sig);
    };
    const onHup = () => void reload('signal');
    // SIGUSR2: exit 75 leaving the container running; the unit restarts the service (an upgrade).
    const onUsr2 = () => {
      bridge.stopping(0);
      sup.shutdown('SIGUSR2', true);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    process.on('SIGHUP', onHup);
    process.on('SIGUSR2', onUsr2);
    bridge.start(sup);
    bus.start();
    await sup.start();
    const code = await sup.done;
    await watched.w?.stop();
    bus.stop();
    bridge.stop();
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    process.off('SIGHUP', onHup);
    process.off('SIGUSR2', onUsr2);
    process.off('unhandledRejection', onStray);
    return code;
  },
};

/** Tells systemd what the supervisor is doing; a no-op outside systemd. */
class SystemdBridge {
  private readySent = false;
  private timers: NodeJS.Timeout[] = [];
  private sup: Supervisor | undefined;
  private failedOnce = false;

  constructor(
    private readonly n: ReturnType<typeof notifierFromEnv>,
    private readonly log: Logger,
    public readyMode: 'serving' | 'started',
  ) {}

  private send(fields: Record<string, string | number>): void {
    if (!this.n.active) return;
    const err = this.n.send(fields);
    if (err && !this.failedOnce) {
      this.failedOnce = true;
      this.log.log('warn', `sd_notify to $NOTIFY_SOCKET failed (${err})`);
    }
  }

  start(sup: Supervisor): void {
    this.sup = sup;
    if (!this.n.active) return;
    // The watchdog is fed from the event loop itself: a wedged loop stops feeding it.
    const every = this.n.watchdogIntervalMs;
    if (every) this.timers.push(setInterval(() => this.send({ WATCHDOG: 1 }), every));
    this.timers.push(setInterval(() => this.extend(), EXTEND_EVERY_MS));
    this.extend();
  }

  private extend(): void {
    if (this.readySent || !this.sup || !extendDue(this.sup.state.phase)) return;
    this.send({ EXTEND_TIMEOUT_USEC: EXTEND_MS * 1000 });
  }

  status(raw: string, state: State): void {
    const line = this.log.scrub(raw);
    this.log.log('debug', `status: ${line}`, { state: state.phase });
    if (!this.readySent && readyDue(this.readyMode, state.phase)) {
      this.readySent = true;
      this.send({ READY: 1, STATUS: line });
      return;
    }
    this.send({ STATUS: line });
  }

  reloading(): void {
    this.send({ RELOADING: 1, MONOTONIC_USEC: String(process.hrtime.bigint() / 1000n) });
  }

  reloaded(): void {
    // systemd waits for READY=1 after RELOADING=1; before the first READY, the start goes on.
    if (this.readySent) this.send({ READY: 1 });
  }

  /** `budgetMs`: how long the stop may take (0: quick); systemd's stop timeout is extended to it. */
  stopping(budgetMs: number): void {
    this.send(budgetMs > 0 ? { STOPPING: 1, EXTEND_TIMEOUT_USEC: budgetMs * 1000 } : { STOPPING: 1 });
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
  }
}
