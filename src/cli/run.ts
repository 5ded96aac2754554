// `run`: the long-running daemon (the unit's ExecStart). Reconciles, then supervises until SIGTERM.
import { resolveToken } from '../config/token.js';
import { buildSpec } from '../container/spec.js';
import { Supervisor } from '../daemon/supervisor.js';
import { Engine } from '../docker/engine.js';
import { probeHost } from '../health/probe.js';
import { createLogger, type Level, type LogFormat } from '../log/logger.js';
import { resolveStateDir, StateStore } from '../state/store.js';
import { settingsOf } from '../supervisor/machine.js';
import type { Command } from './commands.js';
import { EXIT, UsageError } from './exit.js';
import { loadForCommand } from './load.js';

const LEVELS: readonly Level[] = ['debug', 'info', 'warn', 'error'];
const FORMATS: readonly LogFormat[] = ['text', 'json'];

export const runCommand: Command = {
  summary: 'supervise the container until stopped (what the systemd unit runs)',
  help: `Usage: gptoss-supervisor run [--config PATH] [--state-dir DIR] [--log-format text|json] [--log-level LEVEL]

Reconciles the container once (a healthy one is adopted, not restarted), then keeps it serving:
restarts it when it exits, is removed, or fails its health checks (health.* in the config),
with backoff (restart.*). Follows Docker's event stream; when Docker goes away it waits and
resumes. SIGTERM or SIGINT stops the container gracefully (container.stopTimeout) and exits 0,
or leaves it running when container.stopOnExit is false. A second SIGINT exits at once.

  --state-dir DIR     where the restart count survives restarts of the supervisor
                      (default: $STATE_DIRECTORY, else /var/lib/gptoss-supervisor)
  --log-format F      text (default) or json (pino)
  --log-level L       debug, info (default), warn or error

Exit codes: 0 stopped on a signal, 1 invalid config at start, 64 usage error, 70 internal error.
`,
  options: {
    'state-dir': { type: 'string' },
    'log-format': { type: 'string' },
    'log-level': { type: 'string' },
  },
  async run(values) {
    const format = (values['log-format'] ?? 'text') as LogFormat;
    const level = (values['log-level'] ?? 'info') as Level;
    if (!FORMATS.includes(format)) throw new UsageError(`--log-format must be one of ${FORMATS.join(', ')}`);
    if (!LEVELS.includes(level)) throw new UsageError(`--log-level must be one of ${LEVELS.join(', ')}`);
    const loaded = await loadForCommand(values['config']);
    if (!loaded) return EXIT.config;
    const { config, file } = loaded;
    const log = createLogger({ format, level });
    const token = await resolveToken(config.hfToken);
    log.secret(token?.value);
    const spec = buildSpec(config, token?.value);
    const stateDir = resolveStateDir(values['state-dir'] as string | undefined);
    const settings = settingsOf(config);
    const sup = new Supervisor({
      engine: new Engine(),
      spec,
      token: token?.value,
      settings,
      log,
      store: new StateStore(stateDir),
      probeHost: probeHost(config.container.bindAddress),
      onStatus: (line, state) => log.log('debug', `status: ${line}`, { state: state.phase }),
    });
    log.log('info', `supervising ${spec.name} (${config.model.id} as ${config.model.servedName}, port ${config.container.port}); config ${file}; state ${stateDir}; HF token from ${token?.source ?? 'nowhere (none set)'}`, { event: 'supervisor-started' });
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      signals++;
      if (signals > 1 && sig === 'SIGINT') {
        log.log('warn', 'second SIGINT: exiting now, the container is left as it is');
        process.exit(130);
      }
      sup.shutdown(sig);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    await sup.start();
    const code = await sup.done;
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    return code;
  },
};
