// Rollback against the real engine and the stand-in: from a serving spec A, one bad change at a time.
// Each time A serves again by itself, the config file unchanged, the journal line and the alert naming
// the cause; then a good edit applies as usual.
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { stringify } from 'yaml';
import { AS_NOBODY, makeBus } from '../helpers/bus.js';
import { CLI, startDaemon } from '../helpers/daemon.js';
import { derivedImage, docker, STANDIN } from '../helpers/docker.js';
import { makeRegistry } from '../helpers/registry.js';
import { cleanup, setup, stopAll, track, type Setup } from '../helpers/scenario.js';
import { hook, said, type Hook } from '../helpers/webhook.js';

test.afterEach.always(stopAll);

interface Scenario {
  s: Setup;
  alerts: Hook;
  /** The image A's container runs (its ID). */
  imageA: string;
}

const container = (s: Setup) => s.raw['container'] as Record<string, unknown>;
const env = (s: Setup) => container(s)['env'] as Record<string, string>;
const model = (s: Setup) => s.raw['model'] as Record<string, unknown>;

/** A command's exit code and what it printed (stdout and stderr together). */
const exec = (cmd: string, args: string[], env: NodeJS.ProcessEnv) =>
  new Promise<{ code: number; out: string }>((resolve) =>
    execFile(cmd, args, { env: { ...process.env, ...env } }, (err, out, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${out}${stderr}` }),
    ),
  );

/** Spec A serving, through its canary window (2 s here): the last known good. */
async function servingA(
  t: ExecutionContext,
  tag: string,
  image = STANDIN,
  env: NodeJS.ProcessEnv = {},
): Promise<Scenario> {
  const alerts = await hook();
  t.teardown(() => {
    alerts.server.closeAllConnections();
    return new Promise<void>((r) => alerts.server.close(() => r()));
  });
  const s = await setup(
    tag,
    {
      container: { image, env: { STANDIN_LOAD_SECONDS: '1', STANDIN_KV_MAX_LEN: '40000' } },
      model: { maxModelLen: 32768 },
      rollback: { canaryWindow: '2s' },
      alerts: { webhooks: [{ name: 'ops', url: alerts.url, events: ['rollback'] }] },
    },
    { env },
  );
  await s.daemon.waitFor((r) => /it is the last known good/.test(r.msg), 60_000, 0, 'A proven');
  return { s, alerts, imageA: await docker(['inspect', '-f', '{{.Image}}', s.name]) };
}

/** A stand-in image that fails as `env` says, removed when the test ends (whatever happens first). */
async function badImage(t: ExecutionContext, name: string, env: Record<string, string>): Promise<string> {
  const tag = `gptoss-standin:${name}-${process.pid}`;
  await derivedImage(tag, env);
  t.teardown(() =>
    docker(['rmi', '-f', tag]).then(
      () => undefined,
      () => undefined,
    ),
  );
  return tag;
}

/** An edit of the config file: the text written (the supervisor must never rewrite it). */
async function edit(s: Setup, over: () => void): Promise<string> {
  over();
  const text = stringify(s.raw);
  await writeFile(s.configFile, text);
  return text;
}

/** Waits for the rollback's err line, then for A serving again, rolled back; returns the line. */
async function rolledBack(sc: Scenario, from: number, code: string, cause: RegExp) {
  const { s } = sc;
  const line = await s.daemon.waitFor((r) => r.event === 'rollback' && r.level === 50, 90_000, from, 'the rollback');
  if (!cause.test(line.msg)) throw new Error(`the rollback line does not say ${String(cause)}: ${line.msg}`);
  await s.daemon.waitFor(
    (r) => r.state === 'serving' && r.msg.startsWith('status: serving') && /\(rolled back: /.test(r.msg),
    60_000,
    s.daemon.after(line),
    'A serving again, rolled back',
  );
  const alert = await sc.alerts.waitFor((b) => said(b).includes(`(${code})`), 30_000, `the ${code} rollback alert`);
  return { line, alert: said(alert) };
}

/** What runs now: the image's ID and the reference it was created with. */
async function running(s: Setup): Promise<{ id: string; ref: string; cmd: string }> {
  const [id = '', ref = '', ...cmd] = (
    await docker(['inspect', '-f', '{{.Image}} {{.Config.Image}} {{join .Config.Cmd " "}}', s.name])
  ).split(' ');
  return { id, ref, cmd: cmd.join(' ') };
}

/** A good edit after the rollback: it is tried, and serves, as any edit does. */
async function goodEdit(sc: Scenario, change: () => void): Promise<void> {
  const { s } = sc;
  const mark = s.daemon.mark;
  await edit(s, change);
  await s.daemon.waitFor((r) => r.event === 'rollback' && /is over; trying the new spec/.test(r.msg), 30_000, mark);
  await s.daemon.waitFor(
    (r) => r.msg.startsWith('status: serving') && !/rolled back/.test(r.msg),
    60_000,
    mark,
    'the good edit serving',
  );
}

test('maxModelLen over the KV cache: back to A, the estimate in the line, the alert, the file kept', async (t) => {
  const sc = await servingA(t, 'rb-kv');
  const { s } = sc;
  try {
    const mark = s.daemon.mark;
    const text = await edit(s, () => (model(s)['maxModelLen'] = 65536));
    const { line, alert } = await rolledBack(sc, mark, 'kv-cache', /KV cache/);
    t.is(line['diagnosis'], 'kv-cache');
    t.regex(
      line.msg,
      new RegExp(
        String.raw`the new spec \([0-9a-f]{12}\) cannot serve: the KV cache cannot hold one request of ` +
          String.raw`model\.maxModelLen \(65536 tokens\); vLLM estimates 40000 tokens fit`,
      ),
    );
    t.regex(line.msg, /config\.yaml is unchanged: edit it to try again$/);
    t.regex(alert, /rolled back to the last spec that served \(kv-cache\)/);
    t.regex(alert, /vLLM estimates 40000 tokens fit/);
    const now = await running(s);
    t.is(now.id, sc.imageA, 'A, by its image');
    t.regex(now.cmd, /--max-model-len 32768/);
    t.is(await readFile(s.configFile, 'utf8'), text, 'the config file as the operator left it');
    await goodEdit(sc, () => (model(s)['maxModelLen'] = 36000));
    t.regex((await running(s)).cmd, /--max-model-len 36000/);
  } finally {
    await cleanup(s);
  }
});

test('an image without kernels for this GPU (No supported CUDA architectures found): back to A at once', async (t) => {
  const bad = await badImage(t, 'rb-cuda', { STANDIN_FAIL: 'cuda-arch' });
  const sc = await servingA(t, 'rb-cuda');
  const { s } = sc;
  try {
    const mark = s.daemon.mark;
    const text = await edit(s, () => (container(s)['image'] = bad));
    const { line, alert } = await rolledBack(sc, mark, 'unsupported-gpu', /kernels/);
    t.regex(
      line.msg,
      new RegExp(
        String.raw`cannot serve: the image gptoss-standin:rb-cuda-\d+ has no kernels for this GPU ` +
          String.raw`\(No supported CUDA architectures found`,
      ),
    );
    t.regex(alert, /has no kernels for this GPU/);
    t.is(s.daemon.events('container-started', mark).length, 2, 'one start of the new image, then A: no restart loop');
    t.is((await running(s)).id, sc.imageA);
    t.is(await readFile(s.configFile, 'utf8'), text);
    await goodEdit(sc, () => (container(s)['image'] = STANDIN));
  } finally {
    await cleanup(s);
  }
});

test('exit 1, unrecognised: back after rollback.after failed starts; killed mid-way, the next finishes', async (t) => {
  const bad = await badImage(t, 'rb-exit', { STANDIN_FAIL: 'exit:1' });
  const sc = await servingA(t, 'rb-exit');
  const { s } = sc;
  try {
    const mark = s.daemon.mark;
    const text = await edit(s, () => (container(s)['image'] = bad));
    const line = await s.daemon.waitFor((r) => r.event === 'rollback' && r.level === 50, 90_000, mark, 'the rollback');
    t.regex(line.msg, /the new spec \([0-9a-f]{12}\) failed 2 starts: container exited \(exit 1\)/);
    t.is(s.daemon.events('restart-scheduled', mark).length, 1, 'one restart of the new spec, then back');
    // The supervisor dies once the rollback is on record, before A serves: the next one finishes it.
    const state = join(s.stateDir, 'state.json');
    let record = '';
    const onRecord = () => /"rollback"/.test(record);
    for (const deadline = Date.now() + 10_000; !onRecord() && Date.now() < deadline;)
      record = await readFile(state, 'utf8').catch(() => '');
    t.true(onRecord(), `the rollback on record within 10s; the record: ${record}`);
    await s.daemon.stop('SIGKILL');
    s.daemon = track(startDaemon(s.configFile, s.stateDir));
    await s.daemon.waitFor(
      (r) => r.msg.startsWith('status: serving') && /\(rolled back: container exited \(exit 1\); edit /.test(r.msg),
      60_000,
      0,
      'A serving under the new supervisor',
    );
    t.is((await running(s)).id, sc.imageA);
    t.is(s.daemon.events('rollback').length, 0, 'no second rollback, nor the new spec tried again');
    await sc.alerts.waitFor((b) => said(b).includes('(unknown)'), 30_000, 'the alert');
    t.is(await readFile(s.configFile, 'utf8'), text);
    await goodEdit(sc, () => (container(s)['image'] = STANDIN));
  } finally {
    await cleanup(s);
  }
});

test('the tag moved to a broken image: the digest brings the old image back', async (t) => {
  const reg = await makeRegistry();
  await reg.start();
  const ref = `${reg.host}/gptoss/rb:moving`;
  await docker(['tag', STANDIN, ref]);
  await docker(['push', '-q', ref]);
  const sc = await servingA(t, 'rb-moved', ref);
  const { s } = sc;
  try {
    // Someone pulls (here: builds) a broken image under the same tag; then an unrelated edit recreates.
    await derivedImage(ref, { STANDIN_FAIL: 'exit:1' });
    const mark = s.daemon.mark;
    await edit(s, () => (env(s)['EXTRA_SETTING'] = '1'));
    const { line } = await rolledBack(sc, mark, 'unknown', /exit 1/);
    t.regex(line.msg, new RegExp(`image ${reg.host}/gptoss/rb@sha256:[0-9a-f]{64}`));
    const now = await running(s);
    t.is(now.id, sc.imageA, 'the image A ran, not the one the tag names now');
    t.regex(now.ref, new RegExp(`^${reg.host}/gptoss/rb@sha256:`), 'created by digest');
  } finally {
    await cleanup(s);
    await docker(['rmi', '-f', ref]).catch(() => undefined);
    // The container was made by digest: that reference stays on A's image (the stand-in's) until
    // removed by name; the image itself is the suite's.
    const digests = await docker([
      'image',
      'inspect',
      '-f',
      '{{range .RepoDigests}}{{println .}}{{end}}',
      STANDIN,
    ]).catch(() => '');
    for (const d of digests.split('\n').filter((x) => x.startsWith(`${reg.host}/`)))
      await docker(['rmi', d]).catch(() => undefined);
    await reg.stop();
  }
});

test('a canary that fails after serving: the first deep probe fails, back to A', async (t) => {
  const sc = await servingA(t, 'rb-canary');
  const { s } = sc;
  try {
    const mark = s.daemon.mark;
    await edit(s, () => (env(s)['STANDIN_CHAT_FAIL_AFTER'] = '1'));
    const served = await s.daemon.waitFor((r) => r.event === 'container-ready', 60_000, mark, 'the new spec serving');
    const { line } = await rolledBack(sc, s.daemon.after(served), 'unknown', /canary/);
    t.regex(line.msg, /failed its canary after serving: deep probe failed \(1 of 1\)/);
    t.notRegex((await running(s)).cmd, /STANDIN_CHAT_FAIL_AFTER/);
    t.is(
      await docker(['inspect', '-f', '{{range .Config.Env}}{{println .}}{{end}}', s.name]).then((e) =>
        e.includes('STANDIN_CHAT_FAIL_AFTER'),
      ),
      false,
      "A's environment",
    );
  } finally {
    await cleanup(s);
  }
});

test('by hand over D-Bus: history lists the good specs; rollback goes to A, drained; again: why not', async (t) => {
  const bus = await makeBus();
  await bus.start();
  t.teardown(() => bus.stop());
  const cli = (...args: string[]) => exec(process.execPath, [CLI, ...args], { DBUS_SYSTEM_BUS_ADDRESS: bus.address });
  const sc = await servingA(t, 'rb-hand', STANDIN, { DBUS_SYSTEM_BUS_ADDRESS: bus.address });
  const { s } = sc;
  try {
    await s.daemon.waitFor((r) => r.msg === 'on the system bus as org.gptoss.Supervisor1', 15_000);
    const none = await cli('rollback');
    t.is(none.code, 5, 'only A is good, and it runs');
    t.regex(none.out, /no other spec has served/);
    // B, another spec that serves, proven in turn.
    let mark = s.daemon.mark;
    await edit(s, () => (model(s)['maxModelLen'] = 16384));
    await s.daemon.waitFor((r) => /it is the last known good/.test(r.msg), 60_000, mark, 'B proven');
    const hist = await cli('history', '--json');
    t.is(hist.code, 0, hist.out);
    const good = JSON.parse(hist.out) as Array<{ spec: string; imageId: string; ended: { how: string } | null }>;
    t.is(good.length, 2, hist.out);
    t.is(good[0]!.ended, null, 'B runs');
    t.regex(good[1]!.ended?.how ?? '', /replaced|config/, 'how A ended');
    t.is(good[1]!.imageId, sc.imageA);
    t.regex((await cli('history')).out, /\(serving\)/);
    mark = s.daemon.mark;
    const nobody = await exec('setpriv', [...AS_NOBODY, process.execPath, CLI, 'rollback'], {
      DBUS_SYSTEM_BUS_ADDRESS: bus.address,
    });
    t.is(nobody.code, 5, nobody.out);
    t.regex(nobody.out, /only root may do this/);
    const asked = await cli('rollback');
    t.is(asked.code, 0, asked.out);
    const line = await s.daemon.waitFor((r) => r.event === 'rollback', 30_000, mark, 'the rollback');
    t.is(line.level, 40, 'an operator’s rollback is no failure: warning, not err');
    t.regex(line.msg, /an operator asked: asked by D-Bus Rollback\(\)/);
    await s.daemon.waitFor((r) => /drained: /.test(r.msg), 30_000, mark, 'the drain');
    await s.daemon.waitFor(
      (r) => r.msg.startsWith('status: serving') && /\(rolled back: asked by D-Bus Rollback\(\)/.test(r.msg),
      60_000,
      s.daemon.after(line),
      'A serving, rolled back',
    );
    t.regex((await running(s)).cmd, /--max-model-len 32768/);
    const again = await cli('rollback');
    t.is(again.code, 5);
    t.regex(again.out, /already rolled back/);
  } finally {
    await cleanup(s);
  }
});
