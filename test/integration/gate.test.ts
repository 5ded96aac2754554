// The gate, the model's front door, on the real engine with the stand-in: what the clients of the model
// see through loads, config changes, restarts and kills; drains, replays, API keys, warm-up, pass-through.
import { execFile } from 'node:child_process';
import { chmod, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import test from 'ava';
import { stringify } from 'yaml';
import { makeBus } from '../helpers/bus.js';
import { CLI } from '../helpers/daemon.js';
import { brief, docker } from '../helpers/docker.js';
import { cleanup, setup, stopAll, type Setup } from '../helpers/scenario.js';
import { tempDir } from '../helpers/temp.js';
import { chat, failures, steady, type Answer } from '../helpers/traffic.js';

test.afterEach.always(stopAll);

/** The gate listens (its own log line, relayed by the supervisor). */
const listening = (s: Setup) => s.daemon.waitFor((r) => r.msg.startsWith('gate listening on'), 20_000);

/** The config, edited the way an operator edits it: the file rewritten, the watcher applies it. */
async function edit(s: Setup, change: (raw: Record<string, unknown>) => void): Promise<void> {
  change(s.raw);
  await writeFile(s.configFile, stringify(s.raw));
}

const model = (s: Setup) => s.raw['model'] as Record<string, unknown>;

/** The next `container-ready` record from `from` on: the new run serves (the gate opens). */
const ready = (s: Setup, from: number, ms = 60_000) =>
  s.daemon.waitFor((r) => r.event === 'container-ready', ms, from, 'the model serving again');

/** The stand-in's host port for the model (loopback, behind the gate). */
async function upstreamPort(s: Setup): Promise<number> {
  const out = await docker(['port', s.name, '8000/tcp']);
  return Number(/:(\d+)\s*$/m.exec(out)?.[1]);
}

function getText(
  port: number,
  path: string,
  agent?: Agent,
): Promise<{ status: number; body: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, reused: req.reusedSocket }));
    });
    req.on('error', reject);
    req.end();
  });
}

const exec = (cmd: string, args: string[], env: NodeJS.ProcessEnv) =>
  new Promise<{ code: number; out: string }>((resolve) =>
    execFile(cmd, args, { env: { ...process.env, ...env } }, (err, out, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${out}${stderr}` }),
    ),
  );

test('200 requests at 5/s across two config-change recreates and a restart: every one answered', async (t) => {
  const bus = await makeBus();
  await bus.start();
  t.teardown(() => bus.stop());
  const env = { STANDIN_LOAD_SECONDS: '2', STANDIN_TOKEN_MS: '20' };
  const s = await setup('gate-traffic', { container: { env } }, { env: { DBUS_SYSTEM_BUS_ADDRESS: bus.address } });
  try {
    await s.daemon.waitState('serving', 60_000);
    const run = async () => {
      const b = await brief(s.name);
      return `${b.Id}@${b.StartedAt}`;
    };
    const first = await run();
    const traffic = steady(s.port, { count: 200, perSecond: 5, streamEvery: 2 });
    const ids = [first];
    // Two edits that change the container's spec (each a make-before-break recreate), then a restart.
    for (const len of [16384, 32768]) {
      await new Promise((r) => setTimeout(r, 4000));
      const mark = s.daemon.mark;
      await edit(s, (raw) => void (raw['model'] = { ...model(s), maxModelLen: len }));
      await ready(s, mark);
      ids.push(await run());
    }
    await new Promise((r) => setTimeout(r, 4000));
    const mark = s.daemon.mark;
    const r = await exec(process.execPath, [CLI, 'restart'], { DBUS_SYSTEM_BUS_ADDRESS: bus.address });
    t.is(r.code, 0, r.out);
    await ready(s, mark);
    ids.push(await run());
    const answers = await traffic;
    t.is(new Set(ids).size, 4, 'three recreates or restarts happened under the traffic');
    t.deepEqual(failures(answers), [], 'every request got its whole answer');
    t.is(answers.length, 200);
    const waited = answers.filter((a) => a.headers['x-gptoss-waited-ms'] !== undefined);
    t.log(`${waited.length} of 200 waited at the gate for the model (held, then answered)`);
    t.true(waited.length > 0, 'some requests arrived while the model was not serving, and were held');
  } finally {
    await cleanup(s);
  }
});

test('a kill under traffic: unanswered requests are sent again; answering streams get an error event', async (t) => {
  const env = { STANDIN_LOAD_SECONDS: '2', STANDIN_TOKEN_MS: '400' };
  const s = await setup('gate-kill', { container: { env } });
  try {
    await s.daemon.waitState('serving', 60_000);
    const firstChunk: Array<Promise<void>> = [];
    const started: Array<Promise<Answer>> = [];
    for (let i = 0; i < 7; i++) {
      const stream = i % 2 === 1;
      let seen: () => void = () => undefined;
      firstChunk.push(new Promise((r) => (seen = r)));
      started.push(chat(s.port, { stream, onFirstChunk: () => seen() }));
      // A non-streaming answer has no byte before its end: only the streams say they are under way.
      if (!stream) seen();
    }
    await Promise.all(firstChunk);
    await docker(['kill', s.name]);
    const answers = await Promise.all(started);
    const whole = answers.filter((a) => !a.stream);
    const streams = answers.filter((a) => a.stream);
    t.deepEqual(failures(whole), [], 'every non-streaming request answered (after the restart)');
    t.true(
      whole.every((a) => a.headers['x-gptoss-replayed'] === '1'),
      'each was sent again to the new run',
    );
    for (const a of streams) {
      t.regex(a.failure ?? '', /stream ended with an error event/);
      t.regex(a.body, /"code":"model_restarted"/);
    }
  } finally {
    await cleanup(s);
  }
});

test('a load: a request waits, then 503 with Retry-After; an ETA past the hold: 503 at once', async (t) => {
  const s = await setup('gate-hold', {
    container: { env: { STANDIN_LOAD_SECONDS: '9' } },
    gate: { holdTimeout: '4s' },
  });
  try {
    await listening(s);
    const held = await chat(s.port);
    t.is(held.status, 503, held.body);
    t.true(Number(held.headers['x-gptoss-waited-ms']) >= 4000, 'held for the whole hold first');
    t.regex(String(held.headers['retry-after']), /^\d+$/);
    const err = (JSON.parse(held.body) as { error: { type: string; code: string; message: string } }).error;
    t.is(err.type, 'service_unavailable');
    t.is(err.code, 'model_loading');
    t.regex(err.message, /^gpt-oss-120b is loading: /);
    await s.daemon.waitState('serving', 60_000);
    // A restart of the same spec: the last load's duration (9 s) is its ETA, past the 4 s hold.
    const mark = s.daemon.mark;
    await docker(['kill', s.name]);
    await s.daemon.waitFor((r) => r.event === 'restart-scheduled', 20_000, mark);
    const now = await chat(s.port);
    t.is(now.status, 503, now.body);
    // At once, or as soon as the gate heard of the restart: never at the hold's end.
    t.true(Number(now.headers['x-gptoss-waited-ms'] ?? 0) < 4000, 'answered without waiting out the hold');
    t.true(Number(now.headers['retry-after']) >= 2, `Retry-After ${String(now.headers['retry-after'])}`);
    t.regex(now.body, /ready in about/);
  } finally {
    await cleanup(s);
  }
});

test('the drain deadline: a stream still going gets an error event; one held meanwhile is answered', async (t) => {
  const reply = Array.from({ length: 30 }, (_, i) => `w${i}`).join(' ');
  const env = { STANDIN_LOAD_SECONDS: '2', STANDIN_TOKEN_MS: '300', STANDIN_REPLY: reply };
  const s = await setup('gate-drain', { container: { env }, gate: { drainTimeout: '1s' } });
  try {
    await s.daemon.waitState('serving', 60_000);
    let seen: () => void = () => undefined;
    const going = new Promise<void>((r) => (seen = r));
    const long = chat(s.port, { stream: true, onFirstChunk: () => seen() });
    await going;
    const mark = s.daemon.mark;
    await edit(s, (raw) => void (raw['model'] = { ...model(s), maxModelLen: 16384 }));
    await s.daemon.waitFor((r) => /drained: /.test(r.msg), 30_000, mark, 'the drain');
    const later = chat(s.port);
    const cut = await long;
    t.regex(cut.failure ?? '', /stream ended with an error event/);
    t.regex(cut.body, /drain deadline/);
    const answered = await later;
    t.deepEqual(failures([answered]), []);
    await ready(s, mark);
  } finally {
    await cleanup(s);
  }
});

test('API keys: none or a wrong one is 401, the right one passes, /health is open; the file is watched', async (t) => {
  const dir = await tempDir(t, 'gptoss-keys-');
  const file = join(dir, 'api_keys');
  await writeFile(file, '# one key a line\nsk-first\n', { mode: 0o600 });
  await chmod(file, 0o600);
  const t2 = await setup('gate-keys', { gate: { apiKeyFile: file } });
  try {
    await t2.daemon.waitState('serving', 60_000);
    const none = await chat(t2.port);
    t.is(none.status, 401);
    t.is((JSON.parse(none.body) as { error: { code: string } }).error.code, 'invalid_api_key');
    t.is((await chat(t2.port, { key: 'sk-wrong' })).status, 401);
    t.deepEqual(failures([await chat(t2.port, { key: 'sk-first' })]), []);
    t.is((await getText(t2.port, '/health')).status, 200, '/health needs no key');
    // Readable by others: not used, every request refused (never let through), said at err.
    let mark = t2.daemon.mark;
    await chmod(file, 0o644);
    await writeFile(file, 'sk-first\n');
    await t2.daemon.waitFor((r) => /may be read by other users/.test(r.msg), 10_000, mark);
    // The gate's own word that the change is in force at the door (the key that matches nothing).
    await t2.daemon.waitFor((r) => r.msg === 'gate: 1 API key(s) in force', 10_000, mark, 'the door refusing');
    t.is((await chat(t2.port, { key: 'sk-first' })).status, 401);
    mark = t2.daemon.mark;
    await writeFile(file, 'sk-second\n');
    await chmod(file, 0o600);
    await t2.daemon.waitFor((r) => /gate: 1 API key\(s\) from/.test(r.msg), 10_000, mark);
    await t2.daemon.waitFor((r) => r.msg === 'gate: 1 API key(s) in force', 10_000, mark, 'the new key at the door');
    t.is((await chat(t2.port, { key: 'sk-first' })).status, 401, 'the old key is gone');
    t.deepEqual(failures([await chat(t2.port, { key: 'sk-second' })]), []);
    t.false(
      t2.daemon.stderr.some((l) => l.includes('sk-first') || l.includes('sk-second')),
      'no key in the log',
    );
  } finally {
    await cleanup(t2);
  }
});

test('warm-up: /health is 200 before completions answer; requests wait for the first one, all answered', async (t) => {
  const env = { STANDIN_LOAD_SECONDS: '1', STANDIN_WARMUP_SECONDS: '4' };
  const s = await setup('gate-warm', { container: { env } });
  try {
    await listening(s);
    const live = await s.daemon.waitFor((r) => r.event === 'container-started', 30_000);
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => chat(s.port, { stream: i % 2 === 0 })));
    t.deepEqual(failures(answers), []);
    const served = await s.daemon.waitFor((r) => r.event === 'container-ready', 30_000, s.daemon.after(live));
    const liveAt = Date.parse(String(live['time']));
    t.true(Date.parse(String(served['time'])) - liveAt >= 4000, 'serving only after the warm-up completion');
  } finally {
    await cleanup(s);
  }
});

test('pass-through: chunks as they come, a client gone cancels its request, keep-alive, other paths', async (t) => {
  const env = { STANDIN_LOAD_SECONDS: '1', STANDIN_TOKEN_MS: '150' };
  const s = await setup('gate-pass', { container: { env } });
  try {
    await s.daemon.waitState('serving', 60_000);
    const streamed = await chat(s.port, { stream: true });
    t.deepEqual(failures([streamed]), []);
    const spread = (streamed.chunks.at(-1) ?? 0) - (streamed.chunks[0] ?? 0);
    t.true(
      streamed.chunks.length >= 5 && spread >= 5 * 150,
      `chunks at ${streamed.chunks.map(Math.round).join(', ')} ms`,
    );
    // A client that goes away: the model stops working for it.
    const up = await upstreamPort(s);
    const aborted = () =>
      getText(up, '/metrics').then((m) => Number(/^standin:requests_aborted_total (\S+)/m.exec(m.body)?.[1] ?? 0));
    const before = await aborted();
    await chat(s.port, { stream: true, abortAfterFirstChunk: true });
    const deadline = Date.now() + 10_000;
    while ((await aborted()) <= before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    t.is(await aborted(), before + 1, 'the model heard the client go');
    // Keep-alive: one connection, three requests.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const reused = [];
    for (let i = 0; i < 3; i++) reused.push((await getText(s.port, '/v1/models', agent)).reused);
    agent.destroy();
    t.deepEqual(reused, [false, true, true]);
    // Any path and method pass: the model's own answers, not the gate's.
    const models = await getText(s.port, '/v1/models');
    t.regex(models.body, /"id":"gpt-oss-120b"/);
    const other = await chat(s.port, { path: '/v1/not-there' });
    t.is(other.status, 404);
  } finally {
    await cleanup(s);
  }
});
