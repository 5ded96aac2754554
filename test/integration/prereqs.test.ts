// Prerequisites and diagnosis against the real engine: encodings, the port, GPU memory (recorded
// nvidia-smi answers), the stand-in's real error texts, and image pulls from a real registry.
import { execFile } from 'node:child_process';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import test from 'ava';
import { stringify } from 'yaml';
import type { SmiAnswer } from '../../src/core/rules/gpu-memory.js';
import { releaseApps } from '../../src/preflight/facts.js';
import { CLI, startDaemon, writeConfig } from '../helpers/daemon.js';
import { brief, countNamed, docker, removeContainer, STANDIN, uniqueName } from '../helpers/docker.js';
import { dockerConfigJson, makeRegistry, pushFreshImage } from '../helpers/registry.js';
import { cleanup, setup, stopAll, track } from '../helpers/scenario.js';
import { fakeSmi } from '../helpers/smi.js';
import { genuineEncoding } from '../helpers/tiktoken.js';

test.afterEach.always(stopAll);

/** Writes a file the way fetch-encodings does: a hidden partial file, renamed into place. */
async function placeAtomically(dir: string, name: string, bytes: Buffer): Promise<void> {
  const tmp = join(dir, `.${name}.partial`);
  await writeFile(tmp, bytes);
  await rename(tmp, join(dir, name));
}

const DAMAGED = new RegExp(
  'o200k_base\\.tiktoken is damaged or not the published file ' +
    '\\(SHA-256 [0-9a-f]{12}\\.\\.\\., expected 446a9538cb6c\\.\\.\\.\\)',
);

test('encodings absent at start -> no container; they appear -> started within a second -> serving', async (t) => {
  const s = await setup('enc-absent', {}, { encodings: false });
  try {
    const wait = await s.daemon.waitFor((r) => r.event === 'waiting', 15_000, 0, 'the wait');
    t.regex(
      wait.msg,
      /^waiting for encodings: .*o200k_base\.tiktoken is missing.*; fix: gptoss-supervisor fetch-encodings/,
    );
    // A re-check (health.startup.period later) that still finds them missing: still nothing started.
    await s.daemon.waitFor(
      (r) => r.event === 'handled' && r['handled'] === 'prereqMissing',
      5_000,
      s.daemon.after(wait),
    );
    t.is(await countNamed(s.name), 0, 'nothing created');
    t.is(s.daemon.events('restart-scheduled').length, 0, 'no restart loop');
    // A download in progress: half a file under the real name, then the rest. It must not start.
    const o200k = await genuineEncoding('o200k_base');
    await writeFile(join(s.dirs.encodings, 'o200k_base.tiktoken'), o200k.subarray(0, o200k.length >> 1));
    const looked = s.daemon.mark;
    await placeAtomically(s.dirs.encodings, 'cl100k_base.tiktoken', await genuineEncoding('cl100k_base'));
    const seen = await s.daemon.waitFor(
      (r) => r.event === 'handled' && r['handled'] === 'encodingsChanged',
      5_000,
      looked,
    );
    t.is(seen.state, 'waiting', 'it looked at the files, and waits on');
    t.is(await countNamed(s.name), 0, 'a half-written file starts nothing');
    const mark = s.daemon.mark;
    await placeAtomically(s.dirs.encodings, 'o200k_base.tiktoken', o200k);
    // The start is decided by the file event, not by the next re-check (how soon: npm run bench).
    const decided = await s.daemon.waitFor(
      (r) => r.event === 'handled' && r['handled'] !== 'prereqMissing',
      5_000,
      mark,
    );
    t.is(decided['handled'], 'encodingsChanged');
    t.is(decided.state, 'starting');
    await s.daemon.waitState('serving', 30_000, mark);
  } finally {
    await cleanup(s);
  }
});

test('encodings corrupt (SHA-256 mismatch) -> a clear error, nothing started', async (t) => {
  const s = await setup('enc-bad', {}, { encodings: false });
  try {
    await writeFile(join(s.dirs.encodings, 'o200k_base.tiktoken'), 'IQ== 0\n');
    await placeAtomically(s.dirs.encodings, 'cl100k_base.tiktoken', await genuineEncoding('cl100k_base'));
    const wait = await s.daemon.waitFor((r) => r.event === 'waiting', 15_000);
    t.regex(wait.msg, DAMAGED);
    const st = await s.daemon.waitFor((r) => r.msg.startsWith('status: waiting for encodings'), 5_000);
    t.regex(st.msg, /damaged/);
    await s.daemon.waitFor((r) => r.event === 'handled' && r['handled'] === 'prereqMissing', 5_000, s.daemon.after(st));
    t.is(await countNamed(s.name), 0, 'a re-check later: still nothing started');
  } finally {
    await cleanup(s);
  }
});

test('a file replaced while serving -> restarted to load it; removed while serving -> a warning only', async (t) => {
  // Custom files (verify: false), as a mirror or a patched vocabulary would be.
  const s = await setup('enc-change', { encodings: { verify: false } });
  try {
    await s.daemon.waitState('serving', 30_000);
    const before = await brief(s.name);
    let mark = s.daemon.mark;
    await placeAtomically(s.dirs.encodings, 'cl100k_base.tiktoken', Buffer.from('IQ== 0\nIg== 1\n'));
    const r = await s.daemon.waitFor((x) => x.event === 'container-restarting', 10_000, mark);
    t.regex(r.msg, /the tiktoken files changed: restarting/);
    await s.daemon.waitState('serving', 30_000, s.daemon.after(r));
    const after = await brief(s.name);
    t.is(after.Id, before.Id, 'the same container, started again');
    t.not(after.StartedAt, before.StartedAt);
    t.is(s.daemon.events('restart-scheduled', mark).length, 0, 'not counted as a failure');
    mark = s.daemon.mark;
    await rm(join(s.dirs.encodings, 'o200k_base.tiktoken'));
    const w = await s.daemon.waitFor((x) => x.event === 'encodings-changed', 10_000, mark);
    // The warning is the decision: the model keeps serving.
    t.regex(w.msg, /o200k_base\.tiktoken is missing; the model keeps serving/);
    t.is((await brief(s.name)).StartedAt, after.StartedAt, 'not restarted');
    t.is(s.daemon.events('container-restarting', mark).length, 0);
  } finally {
    await cleanup(s);
  }
});

// Each diagnosis from the stand-in printing vLLM's or huggingface_hub's real words.
const diagnoses: Array<{
  fail: string;
  env?: Record<string, string>;
  code: string;
  waits?: RegExp;
  restarts?: boolean;
}> = [
  {
    fail: 'harmony',
    code: 'encodings',
    waits: /^status: waiting for encodings: the tokenizer could not load its vocabulary \(HarmonyError\)/,
  },
  {
    fail: 'hf-401',
    code: 'hf-auth',
    waits: /^status: waiting for a valid HF token: Hugging Face refused the HF token for openai\/gpt-oss-120b/,
  },
  {
    fail: 'hf-404',
    code: 'model-not-found',
    waits: /^status: waiting for a model the token can read: Hugging Face has no model openai\/gpt-oss-120b/,
  },
  { fail: 'free-memory', code: 'gpu-memory', restarts: true },
  { fail: 'cuda-oom', code: 'cuda-oom', restarts: true },
];
for (const d of diagnoses) {
  const then = d.restarts ? 'restarted with backoff' : 'no restart loop';
  test(`stand-in ${d.fail} -> diagnosis ${d.code}, ${then}`, async (t) => {
    const s = await setup(`dx-${d.fail}`, {
      container: { env: { STANDIN_FAIL: d.fail, STANDIN_FAST_FAIL: '1', STANDIN_LOAD_SECONDS: '1', ...d.env } },
    });
    try {
      const dx = await s.daemon.waitFor((r) => r.event === 'diagnosis', 20_000, 0, 'a diagnosis');
      t.is(dx['diagnosis'], d.code);
      t.is(dx.level, 50, 'at error level: journalctl -p err shows it');
      if (d.restarts) {
        const r = await s.daemon.waitFor((x) => x.event === 'restart-scheduled', 10_000);
        t.is(r['diagnosis'], d.code);
        return;
      }
      await s.daemon.waitFor((r) => d.waits!.test(r.msg), 5_000, 0, 'the waiting status');
      // The waiting state is the decision: a wait for a change has no timer, so nothing follows by itself.
      t.is(s.daemon.events('restart-scheduled').length, 0, 'a restart cannot fix it: none');
      t.is(s.daemon.events('container-started').length, 1, 'started once only');
    } finally {
      await cleanup(s);
    }
  });
}

test('HF token refused -> waits; writing a new token retries at once', async (t) => {
  const s = await setup('dx-token', {
    container: { env: { STANDIN_FAIL: 'hf-401', STANDIN_FAST_FAIL: '1', STANDIN_LOAD_SECONDS: '1' } },
  });
  try {
    await s.daemon.waitFor((r) => r.msg.startsWith('status: waiting for a valid HF token'), 20_000);
    const asked = s.daemon.mark;
    s.daemon.child.kill('SIGHUP');
    const h = await s.daemon.waitFor((r) => r.event === 'handled' && r['handled'] === 'configApplied', 10_000, asked);
    t.is(h.state, 'waiting', 'a reload with the same token: still waiting');
    t.is(s.daemon.events('container-started').length, 1, 'the same token is never tried again');
    const mark = s.daemon.mark;
    await writeFile(join(s.dirs.root, 'hf_token'), 'hf_NEWTOKEN_0123456789abcdefghijklmnop\n');
    const r = await s.daemon.waitFor(
      (x) => x.event === 'container-started',
      5_000,
      mark,
      'a new start with the new token',
    );
    t.regex(s.daemon.events('config-reloaded', mark)[0]?.msg ?? '', /^HF token \(file .*hf_token\) reloaded/);
    t.truthy(r);
    t.false(s.daemon.stderr.join('\n').includes('hf_NEWTOKEN_0123456789abcdefghijklmnop'), 'the token is in no record');
  } finally {
    await cleanup(s);
  }
});

test('HarmonyError -> waits; the config edit that fixes it starts the model at once', async (t) => {
  const s = await setup('dx-fix', {
    container: { env: { STANDIN_FAIL: 'harmony', STANDIN_FAST_FAIL: '1', STANDIN_LOAD_SECONDS: '1' } },
  });
  try {
    await s.daemon.waitFor((r) => r.msg.startsWith('status: waiting for encodings'), 20_000);
    const mark = s.daemon.mark;
    const raw = structuredClone(s.raw) as { container: { env: Record<string, string> } };
    delete raw.container.env['STANDIN_FAIL'];
    await writeFile(s.configFile, stringify(raw));
    await s.daemon.waitState('serving', 30_000, mark);
    t.is(s.daemon.events('restart-scheduled').length, 0);
  } finally {
    await cleanup(s);
  }
});

// Without the gate the container publishes container.port itself (the guide's way); with it, the
// gate's own listening is what a taken port stops (test/integration/gate.test.ts).
const NO_GATE = { gate: { enabled: false } };

test('port held by another process -> waiting for the port, named; freed -> serving', async (t) => {
  const s = await setup('port', NO_GATE, { start: false });
  const squatter = createServer().listen(s.port, '127.0.0.1');
  await new Promise((r) => squatter.once('listening', r));
  const daemon = track(startDaemon(s.configFile, s.stateDir));
  try {
    const w = await daemon.waitFor((r) => r.event === 'waiting', 15_000);
    t.regex(
      w.msg,
      new RegExp(
        `^waiting for the port: port ${s.port} is in use by another process; fix: stop it, or set container.port`,
      ),
    );
    t.is(await countNamed(s.name), 0);
    await new Promise((r) => squatter.close(r));
    await daemon.waitState('serving', 30_000);
  } finally {
    squatter.close();
    await daemon.stop('SIGKILL');
    await removeContainer(s.name);
  }
});

test('port held by another container -> its name is given', async (t) => {
  const s = await setup('port2', NO_GATE, { start: false });
  const other = `${s.name}-other`;
  await docker([
    'run',
    '-d',
    '--name',
    other,
    '-p',
    `127.0.0.1:${s.port}:8000`,
    '--entrypoint',
    'sleep',
    STANDIN,
    '600',
  ]);
  const daemon = track(startDaemon(s.configFile, s.stateDir));
  try {
    const w = await daemon.waitFor((r) => r.event === 'waiting', 15_000);
    t.regex(w.msg, new RegExp(`port ${s.port} is in use by container ${other}`));
  } finally {
    await daemon.stop('SIGKILL');
    await removeContainer(other);
    await removeContainer(s.name);
  }
});

test('GPU memory held by others (recorded H100 answers) -> waiting, holders named; freed -> serving', async (t) => {
  const s = await setup('gpumem', {}, { start: false });
  // A stand-in for nvidia-smi that answers what the real one answered on an H100.
  const smi = await fakeSmi(s.dirs.root);
  await smi.answer('h100/held-gpu.txt', 'h100/held-apps.txt');
  const file = await writeConfig({ ...s.raw, gpu: { nvidiaSmi: smi.bin } });
  const daemon = track(startDaemon(file, s.stateDir));
  try {
    const st = await daemon.waitFor((r) => r.msg.startsWith('status: waiting for GPU memory'), 15_000);
    t.is(
      st.msg,
      'status: waiting for GPU memory: 36.0 of 79.6 GiB free on GPU 0 (NVIDIA H100 80GB HBM3), 67.7 GiB needed ' +
        '(gpuMemoryUtilization 0.85), held by python3 (pid 438, 30.6 GiB), python3 (pid 439, 12.6 GiB)',
    );
    const w = daemon.events('waiting')[0];
    t.regex(
      w?.msg ?? '',
      /fix: stop what holds the memory \(nvidia-smi lists it\), or set model\.gpuMemoryUtilization to 0\.44/,
    );
    await daemon.waitFor((r) => r.event === 'handled' && r['handled'] === 'prereqMissing', 5_000, daemon.after(st));
    t.is(await countNamed(s.name), 0, 'no load that would fail after minutes, at the re-check either');
    await smi.answer('h100/idle-gpu.txt', 'h100/idle-apps.txt');
    await daemon.waitState('serving', 30_000);
  } finally {
    await daemon.stop('SIGKILL');
    await removeContainer(s.name);
  }
});

test("the last run's processes: one in its container's cgroup is that container's, not another's", async (t) => {
  // A real container's process, seen from the host (the stand-in is busybox: /bin/sleep is there).
  const name = uniqueName('release');
  t.teardown(() => removeContainer(name));
  const id = await docker(['run', '-d', '--name', name, '--entrypoint', '/bin/sleep', STANDIN, '120']);
  const pid = Number(await docker(['inspect', '--format', '{{.State.Pid}}', name]));
  t.true(pid > 0, `its host pid: ${pid}`);
  const smi: SmiAnswer = {
    kind: 'ok',
    gpus: [{ index: 0, name: 'NVIDIA GB10' }],
    apps: [{ pid, name: 'VLLM::EngineCore', usedMiB: 96581 }],
  };
  t.deepEqual(
    (await releaseApps(smi, id)).map((a) => a.pid),
    [pid],
    `in its cgroup: ${await readFile(`/proc/${pid}/cgroup`, 'utf8')}`,
  );
  t.deepEqual(await releaseApps(smi, 'f'.repeat(64)), [], "alive, and not in that container's cgroup");
});

// The pull path against a real registry (Debian's docker-registry) on loopback.

test('image missing -> pulled from the registry with progress, then serving', async (t) => {
  const reg = await makeRegistry();
  await reg.start();
  const image = `${reg.host}/gptoss/vllm-standin:${Date.now()}`;
  await pushFreshImage(STANDIN, image);
  const s = await setup('pull', { container: { image, registryAuth: '/nonexistent/config.json' } });
  try {
    const progress = await s.daemon.waitFor(
      (r) =>
        /^status: waiting for image: pulling .*: [\d.]+ [kMG]?B( of [\d.]+ [kMG]?B)?, \d+ of \d+ layers$/.test(r.msg),
      60_000,
      0,
      'pull progress',
    );
    t.log(progress.msg);
    const pulled = await s.daemon.waitFor((r) => r.event === 'image-pulled', 60_000);
    t.regex(
      pulled.msg,
      /^pulled .* \(1[67]\.\d MB of 1[67]\.\d MB, (\d+) of \1 layers\)$/,
      'the 16 MiB layer of its own, downloaded',
    );
    await s.daemon.waitState('serving', 30_000);
    t.truthy(await docker(['image', 'inspect', '-f', '{{.Id}}', image]));
  } finally {
    await cleanup(s);
    await reg.stop();
    await docker(['rmi', '-f', image]).catch(() => undefined);
  }
});

test('registry down -> retried with backoff; it comes back -> pulled, serving', async (t) => {
  const reg = await makeRegistry();
  await reg.start();
  const image = `${reg.host}/gptoss/vllm-standin:${Date.now()}`;
  await pushFreshImage(STANDIN, image);
  await reg.stop();
  const s = await setup('pull-retry', { container: { image, registryAuth: '/nonexistent/config.json' } });
  try {
    const f1 = await s.daemon.waitFor((r) => r['pullFailure'] === 'network', 30_000);
    t.regex(
      f1.msg,
      /image pull failed \(attempt 1\): pulling .* failed \(.*(connection refused|dial tcp).*\); next try in 200ms/,
    );
    await s.daemon.waitFor((r) => r['pullFailure'] === 'network' && /attempt 2/.test(r.msg), 30_000);
    await reg.start();
    await s.daemon.waitFor((r) => r.event === 'image-pulled', 60_000);
    await s.daemon.waitState('serving', 30_000);
  } finally {
    await cleanup(s);
    await reg.stop();
    await docker(['rmi', '-f', image]).catch(() => undefined);
  }
});

test('image not in the registry -> a clear error naming container.image', async (t) => {
  const reg = await makeRegistry();
  await reg.start();
  const image = `${reg.host}/gptoss/no-such-image:1`;
  const s = await setup('pull-404', { container: { image, registryAuth: '/nonexistent/config.json' } });
  try {
    const f = await s.daemon.waitFor((r) => r['pullFailure'] === 'not-found', 30_000);
    t.is(f.level, 50);
    t.regex(
      f.msg,
      new RegExp(`${image.replace(/[.:/]/g, '\\$&')} does not exist in its registry \\(.*\\); check container.image`),
    );
    const st = await s.daemon.waitFor(
      (r) => r.msg.startsWith('status: waiting for image:') && /does not exist/.test(r.msg),
      5_000,
    );
    t.regex(st.msg, /next try in 2s/);
  } finally {
    await cleanup(s);
    await reg.stop();
  }
});

test('registry wants credentials -> refused without (docker login named); in registryAuth -> pulled', async (t) => {
  const login = { user: 'gptoss', password: `pw-${Date.now()}` };
  const reg = await makeRegistry(login);
  await reg.start();
  const image = `${reg.host}/gptoss/private-standin:${Date.now()}`;
  await pushFreshImage(STANDIN, image, 4, login);
  const s = await setup(
    'pull-auth',
    { container: { image, registryAuth: '/nonexistent/config.json' } },
    { start: false },
  );
  const authFile = join(s.dirs.root, 'docker-config.json');
  const file = await writeConfig({
    ...s.raw,
    container: { ...(s.raw['container'] as object), registryAuth: authFile },
  });
  const daemon = track(startDaemon(file, s.stateDir));
  try {
    const f = await daemon.waitFor((r) => r['pullFailure'] === 'auth', 30_000);
    t.regex(
      f.msg,
      new RegExp(
        `the registry refused access to .*; run \`docker login ${reg.host.replace(/[.]/g, '\\.')}\` as root ` +
          `\\(container.registryAuth\\)`,
      ),
    );
    await writeFile(authFile, dockerConfigJson(reg.host, login.user, login.password));
    await daemon.waitFor((r) => r.event === 'image-pulled', 30_000);
    await daemon.waitState('serving', 30_000);
    t.false(daemon.stderr.join('\n').includes(login.password), 'the registry password is in no record');
  } finally {
    await daemon.stop('SIGKILL');
    await removeContainer(s.name);
    await reg.stop();
    await docker(['rmi', '-f', image]).catch(() => undefined);
  }
});

test('doctor: one line per check, the fix under each failure, exit 6; all passing is exit 0', async (t) => {
  const s = await setup('doctor', { container: { gpus: 'none' } }, { start: false, encodings: false });
  const run = (file: string) =>
    new Promise<{ code: number; out: string }>((resolve) =>
      execFile(process.execPath, [CLI, 'doctor', '--config', file], (err, out) =>
        resolve({ code: err ? Number((err as { code?: number }).code) : 0, out }),
      ),
    );
  const bad = await run(s.configFile);
  t.is(bad.code, 6, bad.out);
  t.regex(bad.out, /^✓ engine: the Docker engine answers \(Docker \S+\)$/m);
  t.regex(bad.out, /^✓ image: image gptoss-standin:test is present$/m);
  t.regex(
    bad.out,
    /^✗ encodings: .*o200k_base\.tiktoken is missing.*\n {4}fix: gptoss-supervisor fetch-encodings --config /m,
  );
  t.regex(bad.out, /^! hf-token: no HF token, but the model is in the cache/m);
  t.regex(bad.out, /^1 of \d+ checks failed$/m);
  for (const n of ['o200k_base', 'cl100k_base'] as const)
    await writeFile(join(s.dirs.encodings, `${n}.tiktoken`), await genuineEncoding(n));
  const good = await run(s.configFile);
  t.is(good.code, 0, good.out);
  t.regex(good.out, /^✓ encodings: o200k_base\.tiktoken and cl100k_base\.tiktoken in .*, SHA-256 verified$/m);
  t.regex(good.out, /^all \d+ checks passed$/m);
  t.regex(await readFile(s.configFile, 'utf8'), /gpus: none/);
});
