// The daemon against the real engine and the stand-in image: exits, health, backoff, signals, Docker restarts.
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import { join } from 'node:path';
import test from 'ava';
import { httpGet } from '../../src/health/probe.js';
import { postJson, startDaemon } from '../helpers/daemon.js';
import { brief, docker } from '../helpers/docker.js';
import { cleanup, setup, stopAll, track } from '../helpers/scenario.js';

test.afterEach.always(stopAll);

test('killed -> restarted, and serving again', async (t) => {
  const s = await setup('kill');
  try {
    await s.daemon.waitState('serving', 30_000);
    const before = await brief(s.name);
    const mark = s.daemon.mark;
    await docker(['kill', s.name]);
    const sched = await s.daemon.waitFor((r) => r.event === 'restart-scheduled', 10_000, mark);
    t.is(sched['exitCode'], 137);
    await s.daemon.waitState('serving', 30_000, s.daemon.after(sched));
    const after = await brief(s.name);
    t.is(after.Id, before.Id, 'restart means the same container, started again');
    t.not(after.StartedAt, before.StartedAt);
  } finally {
    await cleanup(s);
  }
});

test('exits at once repeatedly -> growing delays up to the cap, then the crash loop state', async (t) => {
  const s = await setup('loop', { container: { env: { STANDIN_FAIL: 'exit:3', STANDIN_LOAD_SECONDS: '0.2' } } });
  try {
    await s.daemon.waitFor(
      (r) => r.event === 'restart-scheduled' && r['restartCount'] === 5,
      30_000,
      0,
      'five restarts',
    );
    const sched = s.daemon.events('restart-scheduled');
    t.deepEqual(
      sched.slice(0, 5).map((r) => r['delayMs']),
      [200, 400, 800, 1600, 2000],
    );
    t.deepEqual(
      sched.slice(0, 5).map((r) => r['state']),
      ['backoff', 'backoff', 'crashloop', 'crashloop', 'crashloop'],
    );
    t.true(sched.every((r) => r['exitCode'] === 3));
    t.regex(sched[0]!.msg, /container exited \(exit 3\); restart 1 in 200ms; last log: .*STANDIN_FAIL=exit:3/);
    const status = await s.daemon.waitFor(
      (r) => r.msg.startsWith('status: crash loop: restart'),
      5_000,
      0,
      'crash loop status',
    );
    t.regex(status.msg, /^status: crash loop: restart \d+ in \d.*\(exit 3\)$/);
    // One warning/error line per restart, not a flood; the preflight's warnings (no nvidia-smi, no
    // token but a cached model) are said once, not at every start.
    const loud = s.daemon.records.filter((r) => r.level >= 40 && r.event !== 'restart-scheduled');
    const preflight = loud.filter((r) => r.msg.startsWith('preflight: '));
    t.deepEqual(
      loud.filter((r) => !preflight.includes(r)).map((r) => r.msg),
      [],
    );
    t.is(new Set(preflight.map((r) => r.msg)).size, preflight.length, 'each preflight warning once');
  } finally {
    await cleanup(s);
  }
});

test('the restart count survives a supervisor restart (state directory)', async (t) => {
  const s = await setup('persist', { container: { env: { STANDIN_FAIL: 'exit:3', STANDIN_LOAD_SECONDS: '0.2' } } });
  try {
    await s.daemon.waitFor((r) => r.event === 'restart-scheduled' && r['restartCount'] === 3, 30_000);
    // The record is written right after the log line; give it a moment, then kill without warning.
    let saved = { restarts: 0 };
    for (let i = 0; i < 50 && saved.restarts < 3; i++) {
      await new Promise((r) => setTimeout(r, 50));
      saved = JSON.parse(await readFile(join(s.stateDir, 'state.json'), 'utf8').catch(() => '{"restarts":0}')) as {
        restarts: number;
      };
    }
    await s.daemon.stop('SIGKILL');
    saved = JSON.parse(await readFile(join(s.stateDir, 'state.json'), 'utf8')) as { restarts: number };
    t.true(saved.restarts >= 3);
    const again = startDaemon(s.configFile, s.stateDir);
    track(again);
    const next = await again.waitFor((r) => r.event === 'restart-scheduled', 30_000);
    t.is(next['restartCount'], saved.restarts + 1);
    t.is(next['state'], 'crashloop');
    await again.stop('SIGKILL');
  } finally {
    await cleanup(s);
  }
});

test('the record of a run that served (its load by phase) is kept across a supervisor restart too', async (t) => {
  // crash-after: the load reaches serving (the record gets lastLoad, its phases without a download), then exits.
  const s = await setup('persist-served', { container: { env: { STANDIN_FAIL: 'crash-after:1' } } });
  try {
    await s.daemon.waitFor((r) => r.event === 'restart-scheduled' && r['restartCount'] === 1, 30_000);
    let saved: { restarts: number; lastLoad?: { phases: object } } = { restarts: 0 };
    for (let i = 0; i < 50 && !(saved.restarts >= 1 && saved.lastLoad); i++) {
      await new Promise((r) => setTimeout(r, 50));
      saved = JSON.parse(await readFile(join(s.stateDir, 'state.json'), 'utf8').catch(() => '{"restarts":0}')) as {
        restarts: number;
      };
    }
    await s.daemon.stop('SIGKILL');
    t.truthy(saved.lastLoad, 'the load that served is in the record');
    t.false('download' in (saved.lastLoad?.phases ?? {}), 'a load without a download');
    const again = track(startDaemon(s.configFile, s.stateDir));
    const next = await again.waitFor((r) => r.event === 'restart-scheduled', 30_000);
    t.deepEqual(
      again.records.filter((r) => /state record|state\.json/.test(r.msg)).map((r) => r.msg),
      [],
      'the record is read, not set aside',
    );
    t.is(next['restartCount'], saved.restarts + 1);
    await again.stop('SIGKILL');
  } finally {
    await cleanup(s);
  }
});

test('/health returns 500 -> restarted after the threshold', async (t) => {
  const s = await setup('h500');
  try {
    await s.daemon.waitState('serving', 30_000);
    const mark = s.daemon.mark;
    await postJson(s.port, '/standin/mode', { health: '500' });
    const fails = await s.daemon.waitFor((r) => r.event === 'restart-scheduled', 15_000, mark);
    t.regex(fails.msg, /liveness probe failed \(2 of 2\): HTTP 500; restarting the container/);
    t.is(s.daemon.events('health-failed', mark).length, 2);
    await s.daemon.waitState('serving', 30_000, s.daemon.after(fails));
    t.true((await httpGet('127.0.0.1', s.port, '/health', 2000)).status === 200, 'a fresh start serves /health again');
  } finally {
    await cleanup(s);
  }
});

test('/health hangs (connection accepted, no answer) -> restarted', async (t) => {
  const s = await setup('hang');
  try {
    await s.daemon.waitState('serving', 30_000);
    const mark = s.daemon.mark;
    await postJson(s.port, '/standin/mode', { health: 'hang' });
    const fails = await s.daemon.waitFor((r) => r.event === 'restart-scheduled', 15_000, mark);
    t.regex(fails.msg, /timeout after 500ms/);
    const restarting = await s.daemon.waitFor((r) => r.event === 'container-restarting', 10_000, mark);
    await s.daemon.waitState('serving', 30_000, s.daemon.after(restarting));
  } finally {
    await cleanup(s);
  }
});

test('slow start inside the startup budget -> not restarted', async (t) => {
  const s = await setup('slow', {
    container: { env: { STANDIN_LOAD_SECONDS: '5' } },
    health: { startup: { period: '300ms', timeout: '15s' } },
  });
  try {
    const ready = await s.daemon.waitFor((r) => r.event === 'container-ready', 30_000);
    t.regex(ready.msg, /serving gpt-oss-120b on port \d+ after [5-9]s/);
    t.is(s.daemon.events('restart-scheduled').length, 0);
    t.true(
      s.daemon.records.some((r) => /^status: loading gpt-oss-120b: .*; \ds of 15s$/.test(r.msg)),
      'the status counts the budget',
    );
  } finally {
    await cleanup(s);
  }
});

test('startup budget exceeded -> restarted', async (t) => {
  const s = await setup('budget', {
    container: { env: { STANDIN_LOAD_SECONDS: '60' } },
    health: { startup: { period: '300ms', timeout: '2s' } },
  });
  try {
    const r = await s.daemon.waitFor((x) => x.event === 'restart-scheduled', 20_000);
    t.regex(
      r.msg,
      /start-up took longer than health\.startup\.timeout \(2s, downloads left out\); last \/health: connection/,
    );
    await s.daemon.waitFor((x) => x.event === 'container-restarting', 10_000);
    const restarted = await s.daemon.waitFor(
      (x) => x.event === 'container-started' && /started/.test(x.msg),
      20_000,
      0,
      'the start after the stop',
    );
    t.truthy(restarted);
  } finally {
    await cleanup(s);
  }
});

test('supervisor SIGKILLed and started again -> container untouched', async (t) => {
  const s = await setup('sigkill');
  try {
    await s.daemon.waitState('serving', 30_000);
    const before = await brief(s.name);
    await s.daemon.stop('SIGKILL');
    t.true((await brief(s.name)).Running, 'the container outlives the supervisor');
    const again = startDaemon(s.configFile, s.stateDir);
    track(again);
    const started = await again.waitFor((r) => r.event === 'container-started', 15_000);
    t.regex(started.msg, /adopted/);
    await again.waitState('serving', 15_000);
    const after = await brief(s.name);
    t.is(after.StartedAt, before.StartedAt, 'not restarted');
    await again.stop('SIGKILL');
  } finally {
    await cleanup(s);
  }
});

test('SIGTERM -> container stopped gracefully within the timeout, exit 0', async (t) => {
  const s = await setup('term');
  try {
    await s.daemon.waitState('serving', 30_000);
    const { code } = await s.daemon.stop('SIGTERM');
    t.is(code, 0);
    const state = await docker(['inspect', '-f', '{{.State.Running}} {{.State.ExitCode}}', s.name]);
    t.is(state, 'false 0', 'stopped by SIGTERM, not killed');
    t.regex(await logsOf(s.name), /Shutting down/);
  } finally {
    await cleanup(s);
  }
});

async function logsOf(name: string): Promise<string> {
  return new Promise((resolve) => execFile('docker', ['logs', name], (_e, out, err) => resolve(`${out}${err}`)));
}

test('SIGTERM with stopOnExit: false -> the container keeps serving', async (t) => {
  const s = await setup('keep', { container: { stopOnExit: false } });
  try {
    await s.daemon.waitState('serving', 30_000);
    const { code } = await s.daemon.stop('SIGTERM');
    t.is(code, 0);
    t.true((await brief(s.name)).Running);
  } finally {
    await cleanup(s);
  }
});

test('container removed by hand -> recreated', async (t) => {
  const s = await setup('rm');
  try {
    await s.daemon.waitState('serving', 30_000);
    const before = await brief(s.name);
    const mark = s.daemon.mark;
    await docker(['rm', '-f', s.name]);
    const r = await s.daemon.waitFor((x) => x.event === 'restart-scheduled', 10_000, mark);
    t.regex(r.msg, /was removed|container exited \(exit 137\)/, 'seen as removed, or as killed on its way out');
    await s.daemon.waitState('serving', 30_000, s.daemon.after(r));
    t.not((await brief(s.name)).Id, before.Id);
  } finally {
    await cleanup(s);
  }
});

test('dockerd restarted under a running supervisor -> supervision resumes', async (t) => {
  const s = await setup('dockerd');
  try {
    await s.daemon.waitState('serving', 30_000);
    const mark = s.daemon.mark;
    await restartDockerd();
    await s.daemon.waitFor((r) => r.event === 'docker-lost', 30_000, mark);
    const back = await s.daemon.waitFor((r) => r.event === 'docker-back', 60_000, mark);
    await s.daemon.waitState('serving', 60_000, s.daemon.after(back));
    t.true((await brief(s.name)).Running);
  } finally {
    await cleanup(s);
  }
});

async function restartDockerd(): Promise<void> {
  const root = new URL('../../../', import.meta.url).pathname;
  await new Promise<void>((resolve, reject) =>
    execFile('bash', [join(root, 'scripts/docker-engine.sh'), '--restart'], { cwd: root }, (err, _o, e) =>
      err ? reject(new Error(e || err.message)) : resolve(),
    ),
  );
  // This suite runs in a TMPDIR of its own, removed when it ends: a dockerd that kept it could make no
  // runc exec file after that (every later healthcheck and docker exec failed so once).
  const pid = (await readFile('/var/run/docker.pid', 'utf8')).trim();
  const env = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0');
  const kept = env.find((v) => v.startsWith('TMPDIR='));
  if (kept) throw new Error(`dockerd was started with the suite's ${kept}`);
}

test('SIGTERM while a config edit is on its way: not applied after the stop; the process exits clean', async (t) => {
  const s = await setup('term-edit');
  try {
    await s.daemon.waitState('serving', 30_000);
    await writeFile(s.configFile, stringify({ ...s.raw, model: { maxModelLen: 16384 } }));
    const { code } = await s.daemon.stop('SIGTERM');
    t.is(code, 0);
    t.deepEqual(
      s.daemon.records.filter((r) => /still running .* after supervision stopped/.test(r.msg)).map((r) => r.msg),
      [],
      'nothing left open: the process ended by itself',
    );
    t.is(s.daemon.events('container-started').length, 1, 'no start after the stop');
  } finally {
    await cleanup(s);
  }
});
