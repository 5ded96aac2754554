// The D-Bus API on a real dbus-daemon (system bus rules, our policy file): introspection, properties
// through a kill, Restart() as root and as another user, `status` in each state, the bus going away.
import { execFile } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import dbus from 'dbus-next';
import { BUS_NAME, SIGNATURES } from '../../src/dbus/props.js';
import { BusService } from '../../src/dbus/service.js';
import { createLogger } from '../../src/log/logger.js';
import { AS_NOBODY, makeBus, type TestBus } from '../helpers/bus.js';
import { DOCKER_UNIT_PATH, FakeSystemd } from '../helpers/fake-systemd.js';
import { CLI, startDaemon } from '../helpers/daemon.js';
import { brief, docker, removeContainer } from '../helpers/docker.js';
import { cleanup, setup, stopAll, track } from '../helpers/scenario.js';
import { writeGenuineEncodings } from '../helpers/tiktoken.js';

test.afterEach.always(stopAll);

const README = new URL('../../../README.md', import.meta.url).pathname;

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) =>
    execFile(cmd, args, { env: { ...process.env, ...env } }, (e, out, err) =>
      resolve({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, out, err }),
    ),
  );
}
const cli = (bus: TestBus, ...args: string[]) =>
  run(process.execPath, [CLI, ...args], { DBUS_SYSTEM_BUS_ADDRESS: bus.address });
/** The same, as the unprivileged user nobody. */
const cliAsNobody = (bus: TestBus, ...args: string[]) =>
  run('setpriv', [...AS_NOBODY, process.execPath, CLI, ...args], {
    DBUS_SYSTEM_BUS_ADDRESS: bus.address,
  });

async function withBus<T>(fn: (bus: TestBus) => Promise<T>, opts?: Parameters<typeof makeBus>[0]): Promise<T> {
  const bus = await makeBus(opts);
  await bus.start();
  try {
    return await fn(bus);
  } finally {
    await bus.stop();
  }
}

test('introspection: the documented interface, read-only properties, three methods', async (t) => {
  await withBus(async (bus) => {
    const s = await setup('dbus-intro', {}, { env: { DBUS_SYSTEM_BUS_ADDRESS: bus.address } });
    try {
      await s.daemon.waitFor((r) => r.msg === 'on the system bus as org.gptoss.Supervisor1', 15_000);
      const xml = (
        await run(
          'busctl',
          [
            '--address',
            bus.address,
            'call',
            'org.gptoss.Supervisor1',
            '/org/gptoss/Supervisor1',
            'org.freedesktop.DBus.Introspectable',
            'Introspect',
          ],
          {},
        )
      ).out;
      const props = [...xml.matchAll(/<property name=\\"(\w+)\\" type=\\"([^\\]+)\\" access=\\"(\w+)\\"/g)].map((m) => [
        m[1],
        m[2],
        m[3],
      ]);
      t.deepEqual(
        props,
        Object.entries(SIGNATURES).map(([k, v]) => [k, v, 'read']),
      );
      t.deepEqual(
        [...xml.matchAll(/<method name=\\"(\w+)\\"/g)]
          .map((m) => m[1])
          .filter((m) => m === 'Restart' || m === 'Reload' || m === 'Rollback')
          .sort(),
        ['Reload', 'Restart', 'Rollback'],
      );
      // The README documents the same interface, property by property.
      const readme = await readFile(README, 'utf8');
      for (const [k, v] of Object.entries(SIGNATURES))
        t.true(readme.includes(`| \`${k}\` | \`${v}\` |`), `README documents ${k} (${v})`);
      const ls = await run(
        'busctl',
        [
          '--address',
          bus.address,
          'introspect',
          'org.gptoss.Supervisor1',
          '/org/gptoss/Supervisor1',
          'org.gptoss.Supervisor1',
        ],
        {},
      );
      t.regex(ls.out, /\.State +property +s +"\w+"/);
    } finally {
      await cleanup(s);
    }
  });
});

test('properties follow the state machine through a kill and restart, with PropertiesChanged', async (t) => {
  await withBus(async (bus) => {
    const s = await setup('dbus-props', {}, { env: { DBUS_SYSTEM_BUS_ADDRESS: bus.address } });
    const client = dbus.sessionBus({ busAddress: bus.address });
    client.on('error', () => undefined);
    try {
      await s.daemon.waitState('serving', 30_000);
      await s.daemon.waitFor((r) => r.msg === 'on the system bus as org.gptoss.Supervisor1', 15_000);
      const obj = await client.getProxyObject('org.gptoss.Supervisor1', '/org/gptoss/Supervisor1');
      const props = obj.getInterface('org.freedesktop.DBus.Properties');
      const states: string[] = [];
      const seen: Record<string, unknown> = {};
      props.on('PropertiesChanged', (_iface: string, changed: Record<string, dbus.Variant>) => {
        for (const [k, v] of Object.entries(changed)) seen[k] = v.value;
        const st = changed['State']?.value as string | undefined;
        if (st && states.at(-1) !== st) states.push(st);
      });
      t.is(((await props['Get']?.('org.gptoss.Supervisor1', 'State')) as dbus.Variant).value, 'serving');
      await docker(['kill', s.name]);
      const end = Date.now() + 30_000;
      while (Date.now() < end && !(states.includes('loading') && states.at(-1) === 'serving'))
        await new Promise((r) => setTimeout(r, 100));
      // A liveness probe may fail before Docker's die event arrives (a busy machine): unhealthy first.
      const legitimate = states[0] === 'unhealthy' ? states.slice(1) : states;
      t.deepEqual(legitimate, ['backoff', 'starting', 'loading', 'serving'], states.join(' -> '));
      t.is(seen['LastExitCode'], 137);
      t.is(seen['RestartCount'], 1);
      t.is(seen['TotalRestarts'], 1);
      const all = (await props['GetAll']?.('org.gptoss.Supervisor1')) as Record<string, dbus.Variant>;
      t.is(all['ContainerId']?.value, (await brief(s.name)).Id);
      t.true((all['ServingSince']?.value as bigint) > 0n);
    } finally {
      client.disconnect();
      await cleanup(s);
    }
  });
});

test('Restart(): root restarts the container gracefully; another user is refused by the policy', async (t) => {
  await withBus(async (bus) => {
    const s = await setup('dbus-restart', {}, { env: { DBUS_SYSTEM_BUS_ADDRESS: bus.address } });
    try {
      await s.daemon.waitState('serving', 30_000);
      await s.daemon.waitFor((r) => r.msg === 'on the system bus as org.gptoss.Supervisor1', 15_000);
      const before = await brief(s.name);
      const nobody = await cliAsNobody(bus, 'restart');
      t.is(nobody.code, 5, nobody.err);
      t.regex(nobody.err, /refused: only root may do this \(run it with sudo\)/);
      const raw = await run(
        'setpriv',
        [
          ...AS_NOBODY,
          'busctl',
          '--address',
          bus.address,
          'call',
          'org.gptoss.Supervisor1',
          '/org/gptoss/Supervisor1',
          'org.gptoss.Supervisor1',
          'Restart',
        ],
        {},
      );
      t.regex(raw.err, /Access denied|AccessDenied|not allowed/i);
      t.is((await brief(s.name)).StartedAt, before.StartedAt, 'nothing happened');
      const mark = s.daemon.mark;
      const root = await cli(bus, 'restart');
      t.is(root.code, 0, root.err);
      const r = await s.daemon.waitFor((x) => x.event === 'container-restarting', 10_000, mark);
      t.regex(r.msg, /as asked by D-Bus Restart\(\) \(graceful stop first\)/);
      await s.daemon.waitState('serving', 30_000, s.daemon.after(r));
      const after = await brief(s.name);
      t.is(after.Id, before.Id, 'the same container');
      t.not(after.StartedAt, before.StartedAt);
      t.is(s.daemon.events('restart-scheduled', mark).length, 0, 'not a failure');
      const reload = await cli(bus, 'reload');
      t.is(reload.code, 0, reload.err);
      await s.daemon.waitFor((x) => x.event === 'config-reloaded', 5_000, mark);
      t.is((await cliAsNobody(bus, 'reload')).code, 5);
    } finally {
      await cleanup(s);
    }
  });
});

test('status --json and exit codes: 0 serving, 3 not serving, 4 no daemon; anyone may read it', async (t) => {
  await withBus(async (bus) => {
    const none = await cli(bus, 'status');
    t.is(none.code, 4, none.err);
    t.regex(none.err, /no gptoss-supervisor answers on unix:path=.*; is the service running\?/);
    const s = await setup('dbus-status', {}, { env: { DBUS_SYSTEM_BUS_ADDRESS: bus.address }, encodings: false });
    try {
      await s.daemon.waitFor((r) => r.msg.startsWith('status: waiting for encodings'), 15_000);
      await s.daemon.waitFor((r) => r.msg === 'on the system bus as org.gptoss.Supervisor1', 15_000);
      const waiting = await cliAsNobody(bus, 'status', '--json');
      t.is(waiting.code, 3, waiting.err);
      const w = JSON.parse(waiting.out) as Record<string, unknown>;
      t.is(w['state'], 'waiting');
      t.is(w['waitingFor'], 'encodings');
      t.regex(String(w['statusText']), /^waiting for encodings: /);
      t.is(w['servingSince'], null);
      await writeGenuineEncodings(s.dirs.encodings);
      await s.daemon.waitState('serving', 30_000);
      const serving = await cli(bus, 'status', '--json');
      t.is(serving.code, 0);
      const j = JSON.parse(serving.out) as Record<string, unknown>;
      t.deepEqual(Object.keys(j), [
        'state',
        'statusText',
        'stateSince',
        'waitingFor',
        'containerId',
        'image',
        'servedModel',
        'endpoint',
        'restartCount',
        'totalRestarts',
        'lastExitCode',
        'lastExitOomKilled',
        'diagnosis',
        'diagnosisSummary',
        'diagnosisRemedy',
        'servingSince',
        'configPath',
        'configError',
        'exposure',
        'lastDeepProbe',
        'engineLoad',
        'load',
        'lastLoad',
        'rollback',
        'knownGood',
        'gate',
        'gpu',
        'decodeSpeed',
        'requests',
      ]);
      t.is(j['state'], 'serving');
      t.is(j['rollback'], null);
      t.deepEqual(j['knownGood'], [], 'not yet through its canary window (10m)');
      t.regex(String(j['servingSince']), /^\d{4}-\d\d-\d\dT/);
      t.is(j['endpoint'], `http://127.0.0.1:${s.port}/v1`);
      const human = await cli(bus, 'status');
      t.is(human.code, 0);
      t.regex(human.out, /^gptoss-supervisor: serving gpt-oss-120b on port \d+ for /);
      t.regex(human.out, /^ {2}model: +gpt-oss-120b at http:\/\/127\.0\.0\.1:\d+\/v1, serving for /m);
    } finally {
      await cleanup(s);
    }
  });
});

test('the bus goes away: supervision goes on; it comes back: the service is there again', async (t) => {
  await withBus(async (bus) => {
    const s = await setup('dbus-gone', {}, { env: { DBUS_SYSTEM_BUS_ADDRESS: bus.address } });
    try {
      await s.daemon.waitState('serving', 30_000);
      await s.daemon.waitFor((r) => r.msg === 'on the system bus as org.gptoss.Supervisor1', 15_000);
      await bus.stop();
      const lost = await s.daemon.waitFor((r) => /lost the system bus/.test(r.msg), 10_000);
      t.is(lost.level, 40);
      const mark = s.daemon.mark;
      await docker(['kill', s.name]);
      const sched = await s.daemon.waitFor((r) => r.event === 'restart-scheduled', 10_000, mark);
      await s.daemon.waitState('serving', 30_000, s.daemon.after(sched));
      t.is(
        s.daemon.records.filter((r) => /system bus/.test(r.msg) && r.level >= 40).length,
        1,
        'one line, not one per retry',
      );
      await bus.start();
      await s.daemon.waitFor((r) => r.msg === 'on the system bus as org.gptoss.Supervisor1', 40_000, mark);
      const st = await cli(bus, 'status', '--json');
      t.is(st.code, 0, st.err);
      t.is((JSON.parse(st.out) as { totalRestarts: number }).totalRestarts, 1);
    } finally {
      await cleanup(s);
    }
  });
});

test('the name held by another process: each retry closes its own connection (none leaks)', async (t) => {
  await withBus(async (bus) => {
    const holder = dbus.sessionBus({ busAddress: bus.address });
    holder.on('error', () => undefined);
    const attempts: number[] = [];
    const log = createLogger({
      format: 'json',
      level: 'debug',
      write: (l) => {
        const n = /^D-Bus: attempt (\d+) failed/.exec((JSON.parse(l) as { msg: string }).msg)?.[1];
        if (n) attempts.push(Number(n));
      },
    });
    const svc = new BusService(
      log,
      { restart: () => undefined, reload: () => Promise.resolve(), rollback: () => undefined },
      { connect: () => dbus.sessionBus({ busAddress: bus.address }), retry: { first: 50, max: 50 } },
    );
    try {
      t.is(await holder.requestName(BUS_NAME, dbus.NameFlag.DO_NOT_QUEUE), dbus.RequestNameReply.PRIMARY_OWNER);
      svc.start();
      const end = Date.now() + 15_000;
      while ((attempts.at(-1) ?? 0) < 8) {
        if (Date.now() > end) return t.fail(`8 refused attempts expected; saw ${attempts.length}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const bo = await holder.getProxyObject('org.freedesktop.DBus', '/org/freedesktop/DBus');
      const names = (await bo.getInterface('org.freedesktop.DBus')['ListNames']?.()) as string[];
      const connections = names.filter((n) => n.startsWith(':'));
      // The holder, and at most the one attempt under way: not one per attempt.
      t.true(connections.length <= 2, `${connections.length} connections after ${attempts.length} attempts`);
    } finally {
      svc.stop();
      holder.disconnect();
    }
  });
});

test('a state file with wrong types: set aside, supervision starts clean, D-Bus properties read fine', async (t) => {
  await withBus(async (bus) => {
    const s = await setup('dbus-badstate', {}, { start: false });
    const bad = { restarts: -1, totalRestarts: 1.5, lastDeep: { at: 'yesterday', ok: true, detail: 'x' } };
    await writeFile(join(s.stateDir, 'state.json'), JSON.stringify(bad));
    const d = track(startDaemon(s.configFile, s.stateDir, { DBUS_SYSTEM_BUS_ADDRESS: bus.address }));
    try {
      const aside = await d.waitFor((r) => /does not hold a state record/.test(r.msg), 15_000, 0, 'the set-aside line');
      t.regex(aside.msg, /\(restarts: .*\); set aside as .*state\.json\.bad-.*; the restart count starts from zero/);
      t.is(aside.level, 40);
      await d.waitState('serving', 30_000);
      await d.waitFor((r) => r.msg === 'on the system bus as org.gptoss.Supervisor1', 15_000);
      const st = await cli(bus, 'status', '--json');
      t.is(st.code, 0, st.err);
      const json = JSON.parse(st.out) as { restartCount: number; lastDeepProbe: unknown };
      t.is(json.restartCount, 0);
      t.is(json.lastDeepProbe, null);
      t.true(
        (await readdir(s.stateDir)).some((f) => f.startsWith('state.json.bad-')),
        'kept, to be looked at',
      );
    } finally {
      await d.stop('SIGKILL');
      await removeContainer(s.name);
    }
  });
});

/** docker.service's ActiveState said in a PropertiesChanged signal, sent by `busctl emit` as `nobody`. */
const forgeAsNobody = (bus: TestBus, state: string, destination?: string) =>
  run(
    'setpriv',
    [
      ...AS_NOBODY,
      'busctl',
      '--address',
      bus.address,
      'emit',
      ...(destination ? [`--destination=${destination}`] : []),
      DOCKER_UNIT_PATH,
      'org.freedesktop.DBus.Properties',
      'PropertiesChanged',
      'sa{sv}as',
      'org.freedesktop.systemd1.Unit',
      '1',
      'ActiveState',
      's',
      state,
      '0',
    ],
    {},
  );

test('docker.service: only systemd signals count; one forged by another user is ignored', async (t) => {
  await withBus(
    async (bus) => {
      let systemd = await FakeSystemd.start(bus.address);
      const msgs: string[] = [];
      const log = createLogger({
        format: 'json',
        level: 'debug',
        write: (l) => void msgs.push((JSON.parse(l) as { msg: string }).msg),
      });
      const seen: string[] = [];
      const svc = new BusService(
        log,
        {
          restart: () => undefined,
          rollback: () => undefined,
          reload: () => Promise.resolve(),
          dockerUnit: (state, active) => void seen.push(`${state} ${active}`),
        },
        { connect: () => dbus.sessionBus({ busAddress: bus.address }) },
      );
      const until = async (what: string, ok: () => boolean | Promise<boolean>) => {
        const end = Date.now() + 10_000;
        while (!(await ok())) {
          if (Date.now() > end) throw new Error(`timed out waiting for ${what}; saw ${JSON.stringify(msgs.slice(-5))}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      };
      const ignored = () => msgs.filter((m) => /^ignored a signal about docker\.service from :/.test(m)).length;
      try {
        svc.start();
        await until('docker.service followed', async () => (await svc.dockerState()) === 'active');
        // Broadcast (no match rule of ours takes it), to the supervisor's name, to its unique name.
        const self = (await run('busctl', ['--address', bus.address, 'status', BUS_NAME, '--no-pager'], {})).out.match(
          /^UniqueName=(\S+)$/m,
        )?.[1];
        t.truthy(self);
        for (const dest of [undefined, BUS_NAME, self]) {
          const r = await forgeAsNobody(bus, 'failed', dest);
          t.is(r.code, 0, r.err);
        }
        // Then systemd's own word, which the bus delivers after them: it is the one believed.
        systemd.set('deactivating');
        await until('the real stop', () => seen.length > 0);
        t.deepEqual(seen, ['down deactivating'], 'the forged "failed" was not believed');
        t.is(ignored(), 2, 'both forged signals that reached it were ignored');
        t.regex(
          msgs.find((m) => m.startsWith('ignored a signal')) ?? '',
          new RegExp(`, which is not systemd \\(${systemd.uniqueName.replace('.', '\\.')}\\)`),
        );

        // systemd comes back on another connection (daemon-reexec): its signals are believed, others' still not.
        systemd.stop();
        systemd = await FakeSystemd.start(bus.address);
        await until('the new owner known', () => msgs.some((m) => m.includes(`bus is now ${systemd.uniqueName}`)));
        await until('its state read again', () => seen.length === 2);
        t.deepEqual(seen, ['down deactivating', 'up active']);
        await forgeAsNobody(bus, 'failed', BUS_NAME);
        await until('the forged one ignored', () => ignored() === 3);
        systemd.set('deactivating');
        await until('the real stop', () => seen.length === 3);
        t.deepEqual(seen, ['down deactivating', 'up active', 'down deactivating']);
        t.is(msgs.filter((m) => m.startsWith('ignored a signal')).length, 3);
      } finally {
        svc.stop();
        systemd.stop();
      }
    },
    { rootOwns: ['org.freedesktop.systemd1'] },
  );
});
