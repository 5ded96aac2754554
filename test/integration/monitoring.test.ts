// Telling the operator, with real parts: Debian's Prometheus scraping /metrics, promtool on the
// exposition, webhook targets as local HTTP servers (one down, one slow), the restart budget.
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import test from 'ava';
import { stringify } from 'yaml';
import { docker, freePort } from '../helpers/docker.js';
import { startPrometheus } from '../helpers/prometheus.js';
import { hook, said, type Hook } from '../helpers/webhook.js';
import type { Record as Rec } from '../helpers/daemon.js';
import { cleanup, setup, stopAll, track, type Setup } from '../helpers/scenario.js';

test.afterEach.always(stopAll);

const TOKEN = 'hf_monitoringTestTokenThatMustNeverLeak0123';
const DASHBOARD = new URL('../../../etc/grafana/gptoss-supervisor.json', import.meta.url).pathname;

async function edit(s: Setup, over: (raw: Record<string, unknown>) => void): Promise<void> {
  over(s.raw);
  await writeFile(s.configFile, stringify(s.raw));
}

/**
 * Asks `fn` until it has an answer (a state only reachable by asking: Prometheus's API); the deadline
 * fails with the last thing it said, or threw.
 */
async function poll<T>(what: string, ms: number, fn: () => Promise<{ hit?: T; seen: unknown }>): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const r = await fn();
      if (r.hit !== undefined) return r.hit;
      last = r.seen;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end)
      throw new Error(
        `timed out after ${ms}ms waiting for ${what}; last seen: ${JSON.stringify(last) ?? String(last)}`,
      );
    await new Promise((r) => setTimeout(r, 250));
  }
}

function run(cmd: string, args: string[], input?: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const c = execFile(cmd, args, (e, out, err) =>
      resolve({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, out: out + err }),
    );
    if (input !== undefined) c.stdin?.end(input);
  });
}

test('Prometheus scrapes /metrics: promtool passes it; the restart counter answers after a kill', async (t) => {
  const mport = await freePort();
  const s = await setup('prom', { metrics: { listen: `127.0.0.1:${mport}` } });
  const prom = await startPrometheus(`127.0.0.1:${mport}`);
  const pport = prom.port;
  try {
    await s.daemon.waitState('serving', 30_000);
    const body = await (await fetch(`http://127.0.0.1:${mport}/metrics`)).text();
    const check = await run('promtool', ['check', 'metrics'], body);
    t.is(check.code, 0, check.out);
    for (const name of [
      'gptoss_supervisor_state{state="serving"} 1',
      'gptoss_supervisor_info{',
      'gptoss_supervisor_probe_duration_seconds_bucket{',
      'gptoss_supervisor_last_load_phase_duration_seconds{phase="compile"}',
      'gptoss_supervisor_engine_requests_running',
      'gptoss_supervisor_process_cpu_seconds_total',
    ])
      t.true(body.includes(name), name);
    t.false(body.includes(TOKEN));
    await docker(['kill', s.name]);
    await s.daemon.waitFor((r) => r.event === 'restart-scheduled', 20_000);
    const q = encodeURIComponent('gptoss_supervisor_restarts_total');
    const value = await poll('the restart counter in Prometheus', 60_000, async () => {
      const r = (await (await fetch(`http://127.0.0.1:${pport}/api/v1/query?query=${q}`)).json()) as {
        data: { result: { metric: Record<string, string>; value: [number, string] }[] };
      };
      const hit = r.data.result.find((x) => Number(x.value[1]) >= 1);
      return { hit: hit && { cause: hit.metric['cause'], value: Number(hit.value[1]) }, seen: r.data.result };
    });
    t.is(value.value, 1);
    t.log(`restarts_total{cause="${value.cause}"} 1`);
    // Every query of the shipped Grafana dashboard runs on this Prometheus.
    const dash = JSON.parse(await readFile(DASHBOARD, 'utf8')) as { panels: { targets: { expr: string }[] }[] };
    for (const expr of dash.panels.flatMap((p) => p.targets.map((x) => x.expr))) {
      const e = expr.replaceAll('$instance', '.*').replaceAll('$__rate_interval', '1m');
      const r = (await (
        await fetch(`http://127.0.0.1:${pport}/api/v1/query?query=${encodeURIComponent(e)}`)
      ).json()) as {
        status: string;
        error?: string;
      };
      t.is(r.status, 'success', `${expr}: ${r.error ?? ''}`);
    }
  } finally {
    prom.stop();
    await cleanup(s);
  }
});

test('metrics.listen on a port in use: a clear warning, and supervision goes on', async (t) => {
  const taken = createServer(() => undefined);
  const port = await freePort();
  await new Promise<void>((r) => taken.listen(port, '127.0.0.1', r));
  const s = await setup('prom-busy', { metrics: { listen: `127.0.0.1:${port}` } });
  try {
    const w = await s.daemon.waitFor((r) => /^metrics\.listen/.test(r.msg), 15_000);
    t.regex(w.msg, /cannot listen \(EADDRINUSE: the address is in use\); \/metrics is off, tried again every 30s/);
    await s.daemon.waitState('serving', 30_000);
  } finally {
    taken.close();
    await cleanup(s);
  }
});

test('a crash loop is one message and a "recovered"; a down or slow target delays nothing; no token', async (t) => {
  const [json, ntfy, slack, slow] = await Promise.all([hook(), hook(), hook(), hook(true)]);
  const down = `http://127.0.0.1:${await freePort()}/nobody`;
  const s = await setup(
    'alerts',
    {
      container: { env: { STANDIN_LOAD_SECONDS: '0.3', STANDIN_FAIL: 'exit:3', STANDIN_FAST_FAIL: '1' } },
      restart: { initialDelay: '200ms', maxDelay: '400ms', crashLoopAfter: 2 },
      alerts: {
        // The down target's messages fail after 1 s + 2 s of backoff; the slow one's attempt ends after 5 s.
        retries: 2,
        // The down and slow ones first: were the targets served one after the other, the rest would wait.
        webhooks: [
          { name: 'down', url: down },
          { name: 'slow', url: slow.url },
          { name: 'json', url: json.url },
          { name: 'ntfy', format: 'ntfy', url: ntfy.url },
          { name: 'slack', format: 'slack', url: slack.url },
        ],
      },
    },
    { start: false },
  );
  await writeFile(join(s.dirs.root, 'hf_token'), TOKEN);
  const { startDaemon } = await import('../helpers/daemon.js');
  s.daemon = track(startDaemon(s.configFile, s.stateDir));
  const TITLE = { crashloop: 'gpt-oss-120b: crash loop', recovered: 'gpt-oss-120b: serving again' };
  /** The daemon's word on one message to one target: sent, failed after its attempts, or not confirmed. */
  const outcome = (target: string, title: string) => (r: Rec) =>
    r.msg.startsWith('alert ') &&
    r.msg.endsWith(`: ${title}`) &&
    (r.msg.startsWith(`alert sent to ${target}: `) || r.msg.startsWith(`alert to ${target} `));
  const outcomeOf = (target: string, title: string) =>
    s.daemon.waitFor(outcome(target, title), 30_000, 0, `the outcome of "${title}" at ${target}`);
  try {
    // Six failures in a row: the crash loop begins at the second.
    await s.daemon.waitFor((r) => r.event === 'restart-scheduled' && r['state'] === 'crashloop', 30_000);
    await s.daemon.waitFor((r) => r.event === 'restart-scheduled' && r['restartCount'] === 6, 60_000);
    // Fixed: serving again, "recovered".
    const mark = s.daemon.mark;
    await edit(s, (raw) => {
      (raw['container'] as { env: Record<string, string> }).env = { STANDIN_LOAD_SECONDS: '0.3' };
    });
    await s.daemon.waitState('serving', 60_000, mark);
    // Every alert there will be is raised by now (before the status line). Each target's queue is in order,
    // so once the daemon has said how "serving again" went at a target, that target has had all it will get.
    for (const name of ['json', 'ntfy', 'slack', 'down', 'slow']) await outcomeOf(name, TITLE.recovered);
    const events = (h: Hook) => h.bodies.map((b) => (JSON.parse(b.body) as { event: string }).event);
    t.deepEqual(events(json), ['crashloop', 'recovered'], 'six restarts: one message, then recovered');
    t.is(ntfy.bodies.length, 2);
    t.is(ntfy.bodies[0]!.headers['title'], TITLE.crashloop);
    t.is(ntfy.bodies[0]!.headers['priority'], '4');
    t.regex(said(ntfy.bodies[1]!), /serving again/);
    t.is(slack.bodies.length, 2);
    t.regex((JSON.parse(slack.bodies[0]!.body) as { text: string }).text, /^\*gpt-oss-120b: crash loop\*\n/);
    t.regex(said(slack.bodies[1]!), /serving again/);
    // The slow target held each message until the daemon gave up waiting for its answer; neither was sent twice.
    t.deepEqual(events(slow), ['crashloop', 'recovered'], 'the slow target: each message once, in order');
    for (const title of Object.values(TITLE)) {
      const r = await outcomeOf('slow', title);
      t.regex(r.msg, /^alert to slow not confirmed \(no answer in 5s; .*not sent again/);
    }
    // The down one was tried again (nothing reached it), and gave up.
    for (const title of Object.values(TITLE))
      t.regex((await outcomeOf('down', title)).msg, /^alert to down failed after 3 attempts \(ECONNREFUSED\)/);
    // Nothing waited for them: the good targets had each message before the slow and the down one were done with it.
    const at = (r: Rec) => s.daemon.records.indexOf(r);
    for (const title of Object.values(TITLE)) {
      const slowDone = at(await outcomeOf('slow', title));
      const downDone = at(await outcomeOf('down', title));
      for (const name of ['json', 'ntfy', 'slack']) {
        const sent = await outcomeOf(name, title);
        t.regex(sent.msg, new RegExp(`^alert sent to ${name}: `));
        const where = `record ${at(sent)}; slow done at ${slowDone}, down at ${downDone}`;
        t.true(
          at(sent) < slowDone && at(sent) < downDone,
          `${name} had "${title}" before slow and down were done (${where})`,
        );
      }
    }
    const all = [json, ntfy, slack, slow].flatMap((h) => h.bodies.map(said));
    t.false(
      all.some((b) => b.includes(TOKEN)),
      'the HF token is in no message',
    );
  } finally {
    for (const h of [json, ntfy, slack, slow]) h.server.closeAllConnections();
    for (const h of [json, ntfy, slack, slow]) h.server.close();
    await cleanup(s);
  }
});

test('the restart budget: spent -> failed, no further start; a config change lifts it; a budget alert', async (t) => {
  const target = await hook();
  const s = await setup('budget', {
    container: { env: { STANDIN_LOAD_SECONDS: '0.3', STANDIN_FAIL: 'exit:3', STANDIN_FAST_FAIL: '1' } },
    restart: { initialDelay: '200ms', maxDelay: '200ms', crashLoopAfter: 10, budget: { count: 2, window: '1h' } },
    alerts: { webhooks: [{ name: 'ops', url: target.url, events: ['budget'] }] },
  });
  try {
    const spent = await s.daemon.waitFor((r) => r.event === 'restart-budget', 30_000);
    t.is(spent.level, 50, 'priority err');
    t.is(s.daemon.events('restart-scheduled').length, 2, 'two restarts, then no more');
    // The daemon looks every second (the countdown moves); the container stays down meanwhile.
    const first = await s.daemon.waitFor((r) => /^status: failed: restart budget spent/.test(r.msg), 5_000);
    // "next try in 59m57s", "59m", "1h": the countdown in seconds.
    const secs = (m: string) => {
      const d = /next try in (?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?/.exec(m);
      return d ? Number(d[1] ?? 0) * 3600 + Number(d[2] ?? 0) * 60 + Number(d[3] ?? 0) : NaN;
    };
    await s.daemon.waitFor(
      (r) => /^status: failed:/.test(r.msg) && secs(r.msg) <= secs(first.msg) - 3,
      10_000,
      s.daemon.after(first),
      'three seconds of failed',
    );
    t.is(await docker(['inspect', '-f', '{{.State.Running}}', s.name]), 'false');
    t.is(s.daemon.events('container-started').length, 3, 'no start after the budget was spent');
    const alert = await target.waitFor(() => true, 10_000, 'the budget alert');
    t.is((JSON.parse(alert.body) as { event: string }).event, 'budget');
    // A config change (the fix) lifts it.
    const mark = s.daemon.mark;
    await edit(s, (raw) => {
      (raw['container'] as { env: Record<string, string> }).env = { STANDIN_LOAD_SECONDS: '0.3' };
    });
    await s.daemon.waitState('serving', 60_000, mark);
  } finally {
    target.server.close();
    await cleanup(s);
  }
});
