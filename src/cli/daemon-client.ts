// `status`, `history`, `restart`, `reload`, `rollback`: ask the running daemon over the system bus.
import dbus from 'dbus-next';
import { formatDuration } from '../core/rules/duration.js';
import { BUS_NAME, INTERFACE, jsonOf, knownGoodJson, OBJECT_PATH, SIGNATURES, type Props } from '../dbus/props.js';
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
  for (const line of hostRows(p)) row(line[0], line[1]);
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
  if (p.RolledBackTo) {
    row('rolled back', `${ago(p.RolledBackAt)} ago to ${p.RolledBackTo.slice(0, 12)}: ${p.RolledBackBecause}`);
    row('refused', `${p.RolledBackFrom.slice(0, 12)} (the config's spec, until the config changes)`);
  }
  row('config', `${p.ConfigPath}${p.ConfigError ? `: INVALID, running on the last good one: ${p.ConfigError}` : ''}`);
  return `${lines.join('\n')}\n`;
}

/** The GPUs (clocks, temperature, power, throttling) and the decode speed, when the daemon has them. */
function hostRows(p: Props): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const [gpuAt, gpus] = p.GpuTelemetry ?? [0n, []];
  const known = (x: number, unit: string) => (x >= 0 ? `${x}${unit}` : '?');
  if (gpuAt !== 0n)
    for (const [index, sm, max, temp, power, reasons] of gpus) {
      const throttled = reasons.length
        ? `; throttled (${reasons.join(', ')})${p.GpuThrottledSince ? ` for ${ago(p.GpuThrottledSince)}` : ''}`
        : '';
      const figures = `SM ${known(sm, '')} of ${known(max, ' MHz')}, ${known(temp, ' C')}, ${known(power, ' W')}`;
      out.push([`gpu ${index}`, `${figures}${throttled} (${ago(gpuAt)} ago)`]);
    }
  const [recent, usual] = p.DecodeSpeed ?? [-1, -1];
  if (recent >= 0 || usual >= 0)
    out.push([
      'decode',
      `${recent >= 0 ? recent.toFixed(1) : '?'} tok/s a request, ` +
        `usually ${usual >= 0 ? usual.toFixed(1) : 'not known yet'}`,
    ]);
  return out;
}

/** The daemon's properties, or the exit code of not reading them (said on stderr as `failed` says). */
async function propsOr(what: string): Promise<Props | number> {
  try {
    return await readProps();
  } catch (err) {
    return failed(err, what);
  }
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
configPath, configError, exposure, lastDeepProbe, engineLoad {at, running, waiting,
kvCacheUsage, tokensPerSecond}, load {phase, since, progress, eta}, lastLoad {seconds, phases {PHASE: seconds}},
rollback {from, to, because, at}, knownGood [...] (as \`history --json\`), gate, requests, gpu {at,
throttledSince, gpus [{index, smClockMhz, smClockMaxMhz, temperatureCelsius, powerWatts,
throttleReasons}]}, decodeSpeed {tokensPerSecondPerRequest, usual}; times in ISO 8601, null when none).

Exit codes (as systemctl is-active): 0 serving, 3 running but not serving, 4 no daemon answers,
5 failed (restart.budget spent: the supervisor has stopped restarting the model).
`,
  options: { json: { type: 'boolean' } },
  async run(values) {
    const p = await propsOr('status');
    if (typeof p === 'number') return p;
    process.stdout.write(values['json'] ? `${JSON.stringify(jsonOf(p), null, 2)}\n` : humanStatus(p));
    if (p.State === 'failed') return EXIT.failed;
    return p.State === 'serving' ? EXIT.ok : EXIT.notServing;
  },
};

const DONE = {
  Restart: 'restart asked; follow it with: gptoss-supervisor status, journalctl -fu gptoss-supervisor\n',
  Reload: 'config reloaded (see gptoss-supervisor status for problems)\n',
  Rollback: 'rollback asked; follow it with: gptoss-supervisor status, journalctl -fu gptoss-supervisor\n',
};

function callCommand(method: keyof typeof DONE, help: string): Command {
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
      process.stdout.write(DONE[method]);
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

export const rollbackCommand = callCommand(
  'Rollback',
  `Usage: gptoss-supervisor rollback

Asks the running supervisor to go back to the last known good spec now: the newest spec that
served through rollback.canaryWindow other than the one in force (\`gptoss-supervisor history\`
lists them), recreated by its image's digest, the requests in flight drained first. The config
file is not touched: the rollback holds until the config changes, and that edit is tried as usual.
Only root may ask (the D-Bus policy). Exit codes: 0 asked, 4 no daemon answers, 5 refused or not
possible now (no other good spec, already rolled back, waiting for Docker).
`,
);

export const historyCommand: Command = {
  help: `Usage: gptoss-supervisor history [--json]

The specs that served through rollback.canaryWindow, newest first (the last known good, where a
rollback goes): the spec's hash, its image as the config named it and by digest (what a rollback
runs), when it first served and was proven, and how its last run ended. Anyone may read it.
`,
  options: { json: { type: 'boolean' } },
  async run(values) {
    const p = await propsOr('history');
    if (typeof p === 'number') return p;
    const iso = (us: bigint) => (us === 0n ? null : new Date(Number(us / 1000n)).toISOString());
    if (values['json']) {
      process.stdout.write(`${JSON.stringify(knownGoodJson(p.KnownGood, iso), null, 2)}\n`);
      return EXIT.ok;
    }
    if (!p.KnownGood.length) {
      process.stdout.write(
        'no spec has served through its canary window yet (rollback.canaryWindow): nothing to go back to\n',
      );
      return EXIT.ok;
    }
    const lines: string[] = [];
    for (const [hash, image, imageId, digest, servedAt, provenAt, endedAt, how] of p.KnownGood) {
      const now = p.RolledBackTo === hash ? ' (serving: rolled back to it)' : endedAt === 0n ? ' (serving)' : '';
      lines.push(`${hash.slice(0, 12)}  ${image}${now}`);
      lines.push(`    image       ${digest || imageId}`);
      lines.push(`    served      since ${at(servedAt)}, proven ${at(provenAt)}`);
      if (endedAt !== 0n) lines.push(`    ended       ${at(endedAt)}: ${how}`);
    }
    if (p.RolledBackFrom)
      lines.push('', `refused: ${p.RolledBackFrom.slice(0, 12)} (the config's spec): ${p.RolledBackBecause}`);
    process.stdout.write(`${lines.join('\n')}\n`);
    return EXIT.ok;
  },
};
