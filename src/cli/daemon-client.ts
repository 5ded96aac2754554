// `status`, `restart`, `reload`: ask the running daemon over the system bus.
import dbus from 'dbus-next';
import { formatDuration } from '../core/rules/duration.js';
import { BUS_NAME, INTERFACE, jsonOf, OBJECT_PATH, SIGNATURES, type Props } from '../dbus/props.js';
import { withDeadline } from '../util/deadline.js';
import type { Command } from './command.js';
import { EXIT } from './exit.js';

const TIMEOUT_MS = 5000;

class NoDaemon extends Error {}

function within<T>(p: Promise<T>, what: string): Promise<T> {
  return withDeadline(p, TIMEOUT_MS, () => new NoDaemon(`no answer to ${what} within ${TIMEOUT_MS / 1000}s`));
}

const where = () => process.env['DBUS_SYSTEM_BUS_ADDRESS'] ?? 'the system bus';

/** Runs `fn` against the daemon's object; translates "nobody there" into NoDaemon. */
async function withDaemon<T>(fn: (obj: dbus.ProxyObject) => Promise<T>): Promise<T> {
  let bus: dbus.MessageBus | undefined;
  try {
    bus = dbus.systemBus();
    const b = bus;
    await within(
      new Promise<void>((resolve, reject) => {
        b.once('connect', resolve);
        b.once('error', reject);
      }),
      'connecting to the bus',
    );
    b.on('error', () => undefined);
    const obj = await within(b.getProxyObject(BUS_NAME, OBJECT_PATH), `${BUS_NAME}`);
    return await within(fn(obj), BUS_NAME);
  } catch (err) {
    if (err instanceof NoDaemon) throw err;
    const e = err as dbus.DBusError & { code?: string };
    if (
      e.type === 'org.freedesktop.DBus.Error.ServiceUnknown' ||
      e.type === 'org.freedesktop.DBus.Error.NameHasNoOwner' ||
      e.code === 'ENOENT' ||
      e.code === 'ECONNREFUSED'
    ) {
      throw new NoDaemon(`no gptoss-supervisor answers on ${where()} (${e.text ?? e.code ?? e.message})`);
    }
    throw err;
  } finally {
    bus?.disconnect();
  }
}

export async function readProps(): Promise<Props> {
  return withDaemon(async (obj) => {
    const all = (await obj.getInterface('org.freedesktop.DBus.Properties')['GetAll']?.(INTERFACE)) as Record<
      string,
      dbus.Variant
    >;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(SIGNATURES)) out[k] = all[k]?.value;
    return out as unknown as Props;
  });
}

const ago = (us: bigint) => formatDuration(Math.max(0, Date.now() - Number(us / 1000n)));
const at = (us: bigint) =>
  new Date(Number(us / 1000n))
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');

export function humanStatus(p: Props): string {
  const lines = [`gptoss-supervisor: ${p.StatusText}`];
  const row = (k: string, v: string) => lines.push(`  ${`${k}:`.padEnd(12)}${v}`);
  row(
    'state',
    `${p.State}${p.WaitingFor ? ` (for ${p.WaitingFor})` : ''} since ${at(p.StateSince)} (${ago(p.StateSince)})`,
  );
  row('model', `${p.ServedModel} at ${p.Endpoint}${p.ServingSince ? `, serving for ${ago(p.ServingSince)}` : ''}`);
  if (p.Exposure) row('WARNING', p.Exposure);
  row('container', `${p.ContainerId ? p.ContainerId.slice(0, 12) : '(none)'}, image ${p.Image}`);
  row('restarts', `${p.RestartCount} in a row, ${p.TotalRestarts} in all`);
  if (p.LastExitCode !== -1) row('last exit', `${p.LastExitCode}${p.LastExitOomKilled ? ', OOM-killed' : ''}`);
  if (p.Diagnosis) {
    row('diagnosis', `${p.Diagnosis}: ${p.DiagnosisSummary}`);
    row('fix', p.DiagnosisRemedy);
  }
  const [deepAt, deepOk, deepDetail] = p.LastDeepProbe;
  if (deepAt !== 0n) row('deep probe', `${deepOk ? 'passed' : 'FAILED'} ${ago(deepAt)} ago: ${deepDetail}`);
  const [engAt, running, waiting, kv, rate] = p.EngineLoad ?? [0n, 0, 0, -1, -1];
  if (engAt !== 0n) {
    const kvText = kv >= 0 ? `, KV cache ${(kv * 100).toFixed(1)}%` : '';
    const extra = `${kvText}${rate >= 0 ? `, ${rate.toFixed(1)} tok/s` : ''}`;
    row('engine', `${running} running, ${waiting} waiting${extra} (${ago(engAt)} ago)`);
  }
  if (p.LoadPhase) {
    const eta = p.LoadEta
      ? `, ready in about ${formatDuration(Math.max(0, Number(p.LoadEta / 1000n) - Date.now()))}`
      : '';
    row('load', `${p.LoadPhase}${p.LoadProgress ? ` ${p.LoadProgress}` : ''} for ${ago(p.LoadPhaseSince)}${eta}`);
  }
  const phases = Object.entries(p.LastLoadPhases ?? {});
  if (p.LastLoadDuration) {
    row('last load', `${formatDuration(Number(p.LastLoadDuration / 1000n))} in all`);
    for (const [phase, us] of phases) lines.push(`    ${phase.padEnd(10)}${formatDuration(Number(us / 1000n))}`);
  }
  if (p.Gate) {
    const rate = p.RequestSuccessRate >= 0 ? `${(p.RequestSuccessRate * 100).toFixed(2)}% answered` : 'no requests';
    const ttft = p.TimeToFirstTokenP95 >= 0 ? `, first token p95 ${p.TimeToFirstTokenP95.toFixed(2)}s` : '';
    row('gate', `${p.Gate}; ${p.RequestsInFlight} in flight, ${p.RequestsHeld} held`);
    row('last hour', `${rate}${ttft}`);
  }
  row('config', `${p.ConfigPath}${p.ConfigError ? `: INVALID, running on the last good one: ${p.ConfigError}` : ''}`);
  return `${lines.join('\n')}\n`;
}

function failed(err: unknown, what: string): number {
  if (err instanceof NoDaemon) {
    process.stderr.write(
      `gptoss-supervisor ${what}: ${err.message}; is the service running? (systemctl status gptoss-supervisor)\n`,
    );
    return EXIT.noDaemon;
  }
  const e = err as dbus.DBusError;
  if (e.type === 'org.freedesktop.DBus.Error.AccessDenied') {
    process.stderr.write(`gptoss-supervisor ${what}: refused: only root may do this (run it with sudo)\n`);
    return EXIT.failed;
  }
  process.stderr.write(`gptoss-supervisor ${what}: ${e.text ?? e.message ?? String(err)}\n`);
  return EXIT.failed;
}

export const statusCommand: Command = {
  help: `Usage: gptoss-supervisor status [--json]

Asks the running supervisor (org.gptoss.Supervisor1 on the system bus, or the bus at
$DBUS_SYSTEM_BUS_ADDRESS) what it is doing: state and for how long, the served model and its
endpoint, restarts, the last exit and its diagnosis, the last deep probe, config problems.
Anyone may read it. --json prints the same as one JSON object (keys: state, statusText,
stateSince, waitingFor, containerId, image, servedModel, endpoint, restartCount, totalRestarts,
lastExitCode, lastExitOomKilled, diagnosis, diagnosisSummary, diagnosisRemedy, servingSince,
configPath, configError, exposure, lastDeepProbe, engineLoad {at, running, waiting, kvCacheUsage,
tokensPerSecond}, load {phase, since, progress, eta}, lastLoad {seconds, phases {PHASE: seconds}};
times in ISO 8601, null when none).

Exit codes (as systemctl is-active): 0 serving, 3 running but not serving, 4 no daemon answers,
5 failed (restart.budget spent: the supervisor has stopped restarting the model).
`,
  options: { json: { type: 'boolean' } },
  async run(values) {
    let p: Props;
    try {
      p = await readProps();
    } catch (err) {
      return failed(err, 'status');
    }
    process.stdout.write(values['json'] ? `${JSON.stringify(jsonOf(p), null, 2)}\n` : humanStatus(p));
    if (p.State === 'failed') return EXIT.failed;
    return p.State === 'serving' ? EXIT.ok : EXIT.notServing;
  },
};

function callCommand(method: 'Restart' | 'Reload', help: string): Command {
  return {
    help,
    options: {},
    async run() {
      try {
        await withDaemon(async (obj) => {
          await obj.getInterface(INTERFACE)[method]?.();
        });
      } catch (err) {
        return failed(err, method.toLowerCase());
      }
      process.stdout.write(
        method === 'Restart'
          ? 'restart asked; follow it with: gptoss-supervisor status, journalctl -fu gptoss-supervisor\n'
          : 'config reloaded (see gptoss-supervisor status for problems)\n',
      );
      return EXIT.ok;
    },
  };
}

export const restartCommand = callCommand(
  'Restart',
  `Usage: gptoss-supervisor restart

Asks the running supervisor to restart the model container now, through the same graceful path
as any restart (docker stop -t container.stopTimeout, then start). Not counted as a failure.
Only root may ask (the D-Bus policy). Exit codes: 0 asked, 4 no daemon answers, 5 refused.
`,
);

export const reloadCommand = callCommand(
  'Reload',
  `Usage: gptoss-supervisor reload

Asks the running supervisor to re-read its config, as \`systemctl reload gptoss-supervisor\` does.
Only root may ask (the D-Bus policy). Exit codes: 0 done, 4 no daemon answers, 5 refused.
`,
);
