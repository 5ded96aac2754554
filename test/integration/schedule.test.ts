// Scheduled jobs against the stand-in: the deep probe (health, models, a chat completion) and the
// planned maintenance restart. Crons with a seconds field make them come quickly.
import test from 'ava';
import { postJson } from '../helpers/daemon.js';
import { brief } from '../helpers/docker.js';
import { cleanup, setup, stopAll } from '../helpers/scenario.js';

test.afterEach.always(stopAll);

test('deep probe: passes on a healthy model; never runs while it loads', async (t) => {
  const s = await setup('deep-ok', {
    container: { env: { STANDIN_LOAD_SECONDS: '3' } },
    schedule: { deepProbe: { cron: '* * * * * *', timeout: '5s', failureThreshold: 2 } },
  });
  try {
    const skipped = await s.daemon.waitFor((r) => r.event === 'job-skipped', 10_000);
    t.regex(skipped.msg, /^deepProbe skipped: the model is (loading|starting), not serving$/);
    await s.daemon.waitState('serving', 30_000);
    const ok = await s.daemon.waitFor((r) => r.event === 'deep-probe', 10_000);
    t.regex(ok.msg, /^deep probe passed: health, models and a chat completion answered in \d/);
    t.is(s.daemon.events('health-failed').length, 0);
  } finally {
    await cleanup(s);
  }
});

test('deep probe: /health fine but chat completions fail -> restarted after the threshold', async (t) => {
  const s = await setup('deep-fail', {
    schedule: { deepProbe: { cron: '* * * * * *', timeout: '2s', failureThreshold: 2 } },
  });
  try {
    await s.daemon.waitState('serving', 30_000);
    const before = await brief(s.name);
    const mark = s.daemon.mark;
    await postJson(s.port, '/standin/mode', { chat: '500' });
    const first = await s.daemon.waitFor((r) => r.event === 'health-failed' && r['deepFailures'] === 1, 10_000, mark);
    t.regex(first.msg, /^deep probe failed \(1 of 2\): chat completion: HTTP 500$/);
    const sched = await s.daemon.waitFor((r) => r.event === 'restart-scheduled', 10_000, mark);
    t.regex(sched.msg, /deep probe failed \(2 of 2\): chat completion: HTTP 500; restarting the container/);
    t.is(
      s.daemon.events('health-failed', mark).filter((r) => r.msg.startsWith('liveness')).length,
      0,
      '/health never failed',
    );
    await s.daemon.waitState('serving', 30_000, s.daemon.after(sched));
    t.not((await brief(s.name)).StartedAt, before.StartedAt);
  } finally {
    await cleanup(s);
  }
});

test('deep probe: a hung completion counts as a failure within the timeout', async (t) => {
  const s = await setup('deep-hang', {
    schedule: { deepProbe: { cron: '*/2 * * * * *', timeout: '1s', failureThreshold: 3 } },
  });
  try {
    await s.daemon.waitState('serving', 30_000);
    const mark = s.daemon.mark;
    await postJson(s.port, '/standin/mode', { chat: 'hang' });
    const f = await s.daemon.waitFor((r) => r.event === 'health-failed' && r['deepFailures'] === 1, 10_000, mark);
    t.regex(f.msg, /chat completion: timeout after/);
  } finally {
    await cleanup(s);
  }
});

test('maintenance restart: a planned graceful restart, then none again within a day', async (t) => {
  const s = await setup('maint', {
    schedule: { deepProbe: { cron: '' }, maintenanceRestart: { cron: '*/2 * * * * *' } },
  });
  try {
    await s.daemon.waitState('serving', 30_000);
    const before = await brief(s.name);
    const r = await s.daemon.waitFor((x) => x.event === 'container-restarting', 10_000);
    t.regex(r.msg, /^planned maintenance restart of .* \(schedule\.maintenanceRestart; graceful stop first\)$/);
    await s.daemon.waitState('serving', 30_000, s.daemon.after(r));
    const after = await brief(s.name);
    t.is(after.Id, before.Id);
    t.not(after.StartedAt, before.StartedAt);
    const skip = await s.daemon.waitFor(
      (x) =>
        x.event === 'job-skipped' &&
        /maintenanceRestart skipped: the last one was .* ago \(at most one a day\)/.test(x.msg),
      10_000,
      s.daemon.after(r),
    );
    t.truthy(skip);
    t.is(s.daemon.events('container-restarting').length, 1);
    t.is(s.daemon.events('restart-scheduled').length, 0, 'not a failure');
  } finally {
    await cleanup(s);
  }
});
