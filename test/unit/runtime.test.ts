// The shell's own logic on a fake engine: the interpreter, reconcile races, reloads (real engine: test/integration).
import { rm } from 'node:fs/promises';
import test, { type ExecutionContext } from 'ava';
import { configSchema } from '../../src/config/schema.js';
import { buildSpec } from '../../src/container/spec.js';
import { convergeContainer } from '../../src/docker/converge.js';
import { createLogger } from '../../src/log/logger.js';
import { planRuns } from '../../src/reader/isolated.js';
import { CPU_SCALE } from '../helpers/poll.js';
import { Jobs } from '../../src/runtime/cron.js';
import { desiredOf } from '../../src/desired/desired.js';
import { settingsOf } from '../../src/desired/settings.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { FakeEngine } from '../helpers/fake-engine.js';
import { freePort, makeDirs } from '../helpers/docker.js';

const IMAGE = 'nvcr.io/nvidia/vllm:25.09-py3';

interface Line {
  msg: string;
  event?: string;
  state?: string;
  outcome?: string;
}

async function world(t: ExecutionContext, over: Record<string, unknown> = {}) {
  const dirs = await makeDirs();
  t.teardown(() => rm(dirs.root, { recursive: true, force: true }));
  const port = await freePort();
  const raw = {
    container: { port, bindAddress: '127.0.0.1', stopTimeout: '1s' },
    paths: { encodings: dirs.encodings, huggingface: dirs.huggingface },
    hfToken: { file: `${dirs.root}/hf_token` },
    gpu: { checkMemory: false },
    health: { startup: { period: '100ms' }, liveness: { period: '100ms' }, readiness: { period: '100ms' } },
    restart: { initialDelay: '100ms', maxDelay: '200ms', jitter: 0 },
    schedule: { deepProbe: { cron: null } },
    // The shell's loop, without the gate (its own tests run it: test/integration/gate.test.ts).
    gate: { enabled: false },
    ...over,
  };
  const config = configSchema.parse(raw);
  const engine = new FakeEngine([IMAGE]);
  const lines: Line[] = [];
  const waiters: Array<() => void> = [];
  const log = createLogger({
    format: 'json',
    level: 'debug',
    write: (l) => {
      lines.push(JSON.parse(l) as Line);
      for (const w of waiters.splice(0)) w();
    },
  });
  const desired = desiredOf(config, '/etc/gptoss/config.yaml', undefined);
  const probes = { ok: true };
  const sup = new Supervisor({
    engine,
    desired,
    log,
    store: undefined,
    probe: () => Promise.resolve({ ok: probes.ok }),
  });
  t.teardown(async () => {
    sup.shutdown('SIGTERM');
    await sup.done;
  });
  /** The first log line from `from` on that matches; fails after `ms` saying what was seen. */
  const waitFor = async (pred: (l: Line) => boolean, what: string, from = 0, ms = 5000): Promise<Line> => {
    const end = Date.now() + ms;
    for (let i = from; ;) {
      for (; i < lines.length; i++) if (pred(lines[i]!)) return lines[i]!;
      if (Date.now() > end) throw new Error(`no ${what} within ${ms}ms; saw:\n${lines.map((l) => l.msg).join('\n')}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 50);
      });
    }
  };
  const serving = (from = 0) => waitFor((l) => l.msg.startsWith('state ') && l.state === 'serving', 'serving', from);
  return { engine, sup, lines, config, raw, desired, probes, waitFor, serving };
}

test('converge: a lost create race adopts the winner and says so (a fresh start-up budget follows)', async (t) => {
  const w = await world(t);
  const spec = w.desired.spec;
  w.engine.beforeCreate = () => w.engine.put(spec, true);
  const res = await convergeContainer(w.engine, spec, undefined, { stopTimeoutMs: 1000 });
  t.is(res.outcome, 'adopted');
  t.regex(res.reason, /another process started it first/);
  t.deepEqual(
    w.engine.calls.filter((c) => c.startsWith('create') || c.startsWith('start')),
    [`create ${spec.name}`],
  );
});

test('the shell: boots on an empty engine, creates, probes to serving; an exit restarts it', async (t) => {
  const w = await world(t);
  await w.sup.start();
  await w.serving();
  t.is(w.engine.boxes.size, 1);
  const mark = w.lines.length;
  w.engine.die(w.config.container.name, 1, ['RuntimeError: boom']);
  const sched = await w.waitFor((l) => l.event === 'restart-scheduled', 'a restart', mark);
  t.regex(sched.msg, /container exited \(exit 1\); restart 1 in 100ms; last log: RuntimeError: boom/);
  await w.serving(mark);
  t.is(w.engine.boxes.size, 1, 'the same container, started again');
  w.sup.shutdown('SIGTERM');
  t.is(await w.sup.done, 0, 'a clean stop');
});

test('the shell: losing a create race to another supervisor adopts its container with a fresh budget', async (t) => {
  const w = await world(t);
  w.engine.beforeCreate = () => w.engine.put(buildSpec(w.config, undefined), true);
  await w.sup.start();
  const started = await w.waitFor((l) => l.event === 'container-started', 'a start');
  t.is(started.outcome, 'adopted');
  await w.serving();
});

test('the shell: a reload with a new spec recreates the container (stopped first); settings only do not', async (t) => {
  const w = await world(t);
  await w.sup.start();
  await w.serving();
  const before = [...w.engine.boxes.keys()];
  let mark = w.lines.length;
  const same = configSchema.parse({ ...w.raw, health: { ...w.raw.health, liveness: { period: '200ms' } } });
  await w.sup.reload({ desired: desiredOf(same, '/etc/gptoss/config.yaml', undefined) });
  await w.waitFor((l) => l.event === 'config-reloaded' && /container untouched/.test(l.msg), 'settings applied', mark);
  t.deepEqual([...w.engine.boxes.keys()], before);
  mark = w.lines.length;
  const other = configSchema.parse({ ...w.raw, model: { maxModelLen: 16384 } });
  await w.sup.reload({ desired: desiredOf(other, '/etc/gptoss/config.yaml', undefined) });
  await w.serving(mark);
  const calls = w.engine.calls.join(' ');
  t.regex(calls, /stop c1.*remove c1.*create vllm-gpt-oss.*start c2/);
  t.deepEqual(w.engine.boxes.get([...w.engine.boxes.keys()][0]!)?.spec.body.Cmd.slice(-4, -2), [
    '--max-model-len',
    '16384',
  ]);
});

test('the shell: Docker away while serving -> waiting for docker; back -> adopted, not restarted', async (t) => {
  const w = await world(t);
  await w.sup.start();
  await w.serving();
  const mark = w.lines.length;
  w.engine.down = true;
  w.sup.dockerUnit('down', 'deactivating');
  await w.waitFor((l) => l.event === 'docker-lost', 'docker lost', mark);
  w.engine.down = false;
  w.sup.dockerUnit('up', 'active');
  await w.waitFor((l) => l.event === 'docker-back', 'docker back', mark);
  const adopted = await w.waitFor((l) => l.event === 'container-started', 'the look after', mark);
  t.is(adopted.outcome, 'adopted');
  t.false(
    w.engine.calls.some((c) => c.startsWith('start ')) &&
      w.engine.calls.filter((c) => c.startsWith('start ')).length > 1,
  );
});

test('scheduled jobs: node-cron plans the run times in the reader process; the daemon only sets timers', async (t) => {
  const from = Date.now();
  const [quarter, seconds] = await planRuns(['*/15 * * * *', '*/2 * * * * *'], from, 3);
  const minute = 60_000;
  t.is(quarter?.length, 3);
  t.true(
    (quarter ?? []).every((x) => x > from && x % (15 * minute) === 0),
    'on quarter hours, after now',
  );
  t.deepEqual(
    quarter?.slice(1).map((x, i) => x - (quarter[i] ?? 0)),
    [15 * minute, 15 * minute],
  );
  t.true(
    (seconds ?? []).every((x, i) => x % 2000 === 0 && x > from && (i === 0 || x - (seconds?.[i - 1] ?? 0) === 2000)),
  );
  const fired: string[] = [];
  const jobs = new Jobs((job) => fired.push(job));
  t.teardown(() => jobs.stop());
  jobs.set(settingsOf(configSchema.parse({ schedule: { deepProbe: { cron: '* * * * * *' } } })).jobs);
  // The plan comes from the reader process: its start is scaled where the CPU is emulated.
  const end = Date.now() + 10_000 * CPU_SCALE;
  while (fired.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  t.deepEqual(fired.slice(0, 2), ['deepProbe', 'deepProbe'], 'fired each second');
});
