// End to end under a real systemd (PID 1 in a container), installed by install.sh from the checkout,
// driven with systemctl and read with journalctl, against the host's Docker engine.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { createServer } from 'node:http';
import { stringify } from 'yaml';
import { genuineEncoding } from '../helpers/tiktoken.js';
import { brief, docker, freePort, removeContainer, STANDIN, TEST_MEMLOCK, uniqueName } from '../helpers/docker.js';

const root = new URL('../../../', import.meta.url).pathname;
const TOKEN = 'hf_e2e_SECRET_0123456789abcdefghij';
const box = uniqueName('systemd');
const model = uniqueName('e2e-model');
let shared = '';
let port = 0;

function run(cmd: string, args: string[], ms = 120_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: ms, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err
        ? typeof (err as { code?: unknown }).code === 'number'
          ? (err as { code: number }).code
          : 1
        : 0;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

/** A shell command inside the systemd container. */
const sh = (script: string, ms?: number) => run('docker', ['exec', box, 'bash', '-c', script], ms);

async function journal(args = ''): Promise<Array<Record<string, string>>> {
  const { out } = await sh(`journalctl -u gptoss-supervisor -o json --no-pager ${args}`);
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, string>);
}

async function waitFor<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const status = async () => (await sh('systemctl show -p StatusText --value gptoss-supervisor')).out.trim();

function config(over: Record<string, unknown> = {}): string {
  const base: Record<string, unknown> = {
    container: {
      name: model,
      image: STANDIN,
      port,
      bindAddress: '127.0.0.1',
      ulimits: { memlock: TEST_MEMLOCK },
      env: { STANDIN_LOAD_SECONDS: '3' },
      stopTimeout: '10s',
    },
    paths: { encodings: join(shared, 'vllm/encodings'), huggingface: join(shared, 'vllm/huggingface') },
    health: {
      startup: { period: '500ms', timeout: '1m' },
      liveness: { period: '1s', timeout: '1s', failureThreshold: 2 },
      readiness: { period: '1s', timeout: '1s' },
    },
    restart: { initialDelay: '1s', maxDelay: '4s' },
  };
  for (const [k, v] of Object.entries(over)) base[k] = { ...(base[k] as object), ...(v as object) };
  return stringify(base);
}

test.before(async () => {
  // Shared with the box at the same path (the model container's mounts are host paths). Not under
  // /tmp or /var/tmp, wherever the checkout is: the unit's PrivateTmp= would hide them from it.
  await mkdir('/srv', { recursive: true });
  shared = await mkdtemp('/srv/gptoss-e2e-');
  port = await freePort();
  await mkdir(join(shared, 'vllm/encodings'), { recursive: true });
  await mkdir(join(shared, 'vllm/huggingface'), { recursive: true });
  await writeFile(join(shared, 'vllm/encodings/o200k_base.tiktoken'), 'IQ== 0\n');
  await writeFile(join(shared, 'vllm/encodings/cl100k_base.tiktoken'), 'IQ== 0\n');
  await writeFile(join(shared, 'config.yaml'), config());
  await writeFile(join(shared, 'token'), `${TOKEN}\n`);
  const b = await run('bash', [join(root, 'test/e2e/harness/build-image.sh')], 900_000);
  if (b.code !== 0) throw new Error(`e2e image: ${b.out}`);
  const boot = await run('bash', [join(root, 'test/e2e/harness/boot.sh'), box, shared], 120_000);
  if (boot.code !== 0) throw new Error(`boot: ${boot.out}`);
});

test.after.always(async () => {
  await docker(['rm', '-f', box]).catch(() => undefined);
  await removeContainer(model);
  if (shared) await rm(shared, { recursive: true, force: true });
});

test.serial('install.sh installs; systemctl start returns once the model serves; status shows it', async (t) => {
  const files = new Map<string, Buffer>();
  for (const n of ['o200k_base', 'cl100k_base'] as const) files.set(`/${n}.tiktoken`, await genuineEncoding(n));
  const server = createServer(
    (req, res) =>
      void (files.has(req.url ?? '') ? res.writeHead(200).end(files.get(req.url ?? '')) : res.writeHead(404).end()),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const encUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  const inst = await sh(
    `HF_TOKEN= bash /src/install.sh --no-start --config ${shared}/config.yaml --hf-token-file ${shared}/token ` +
      `--fetch-encodings --encodings-url ${encUrl}`,
  );
  server.close();
  t.is(inst.code, 0, inst.out);
  t.regex(inst.out, /o200k_base\.tiktoken: fetched \(3613922 bytes\), SHA-256 verified/);
  t.false(inst.out.includes(TOKEN));
  t.regex((await sh('stat -c %a /etc/gptoss/hf_token')).out, /^600/);
  const v = await sh('systemd-analyze verify /etc/systemd/system/gptoss-supervisor.service');
  t.is(v.code, 0, v.out);
  const t0 = Date.now();
  const start = await sh('systemctl start gptoss-supervisor');
  t.is(start.code, 0, start.out);
  t.true(Date.now() - t0 >= 2500, 'start waited for the model to load (3s in the stand-in)');
  const health = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${port}/health`]);
  t.is(health.out, '200', 'serving when systemctl start returns');
  const st = await sh('systemctl status gptoss-supervisor --no-pager');
  t.regex(st.out, /Status: "serving gpt-oss-120b on port \d+ for/);
  const env = await docker(['inspect', '-f', '{{json .Config.Env}}', model]);
  t.true(env.includes(`HF_TOKEN=${TOKEN}`), 'the token reached the model container');
});

test.serial('the journal: priorities, MESSAGE_IDs, structured fields, and never the token', async (t) => {
  const recs = await journal();
  const started = recs.find((r) => r['GPTOSS_EVENT'] === 'container-started');
  t.truthy(started);
  t.is(started?.['MESSAGE_ID'], '0f4d2a9e7b6c4c1d8e3a5b2c9d0e1f21');
  t.is(started?.['PRIORITY'], '6');
  t.truthy(started?.['CONTAINER_ID']);
  t.is(recs.find((r) => r['GPTOSS_EVENT'] === 'container-ready')?.['MESSAGE_ID'], '0f4d2a9e7b6c4c1d8e3a5b2c9d0e1f22');
  const all = await sh('journalctl -o json --no-pager');
  t.false(all.out.includes(TOKEN), 'the token is nowhere in the journal');
});

test.serial('docker kill of the model container -> restarted, with a warning in the journal', async (t) => {
  const before = await brief(model);
  await docker(['kill', model]);
  await waitFor('a restart', 30_000, async () =>
    (await journal()).find((r) => r['GPTOSS_EVENT'] === 'restart-scheduled'),
  );
  await waitFor('serving again', 30_000, async () =>
    (await brief(model)).StartedAt !== before.StartedAt && /^serving/.test(await status()) ? true : undefined,
  );
  const r = (await journal()).find((x) => x['GPTOSS_EVENT'] === 'restart-scheduled');
  t.is(r?.['PRIORITY'], '4');
  t.is(r?.['EXIT_CODE'], '137');
  t.is(
    (await journal('-p warning')).every((x) => Number(x['PRIORITY']) <= 4),
    true,
  );
});

test.serial('D-Bus: busctl introspect shows the interface; anyone reads status, only root restarts', async (t) => {
  const intro = await sh(
    'busctl introspect --no-pager org.gptoss.Supervisor1 /org/gptoss/Supervisor1 org.gptoss.Supervisor1',
  );
  t.is(intro.code, 0, intro.out);
  t.regex(intro.out, /\.Restart +method/);
  t.regex(intro.out, /\.State +property +s +"serving" +emits-change/);
  const st = await sh(
    'setpriv --reuid=65534 --regid=65534 --clear-groups gptoss-supervisor status --json; echo "rc=$?"',
  );
  t.regex(st.out, /"state": "serving"/);
  t.regex(st.out, /rc=0$/m);
  t.false(st.out.includes(TOKEN));
  const denied = await sh('setpriv --reuid=65534 --regid=65534 --clear-groups gptoss-supervisor restart; echo "rc=$?"');
  t.regex(denied.out, /refused: only root may do this/);
  t.regex(denied.out, /^rc=5$/m);
  const human = await sh('gptoss-supervisor status; echo "rc=$?"');
  t.regex(human.out, /^gptoss-supervisor: serving gpt-oss-120b on port \d+ for /);
});

test.serial(
  'systemctl stop/start docker (the engine goes away): waiting for docker, one line; back: serving, the container ' +
    'untouched',
  async (t) => {
    const before = await brief(model);
    const since = (await sh('date +%s%6N')).out.trim();
    await sh('systemctl stop docker');
    await waitFor(
      'waiting for docker',
      20_000,
      async () => /^waiting for docker: docker\.service is (deactivating|inactive)/.test(await status()) || undefined,
    );
    await sh('systemctl start docker');
    await waitFor('serving again', 60_000, async () => /^serving/.test(await status()) || undefined);
    await sh('systemctl restart docker');
    await waitFor('serving after a restart of docker', 60_000, async () => {
      const lost = (await journal()).filter(
        (r) => r['GPTOSS_EVENT'] === 'docker-lost' && Number(r['__REALTIME_TIMESTAMP']) > Number(since),
      );
      return lost.length >= 2 && /^serving/.test(await status()) ? true : undefined;
    });
    const recs = (await journal()).filter((r) => Number(r['__REALTIME_TIMESTAMP']) > Number(since));
    const lost = recs.filter((r) => r['GPTOSS_EVENT'] === 'docker-lost');
    t.is(lost.length, 2, 'one line per outage, not a storm');
    t.regex(
      lost[0]?.['MESSAGE'] ?? '',
      /docker\.service is (deactivating|inactive) \(systemctl stop or restart docker\)/,
    );
    t.is(recs.filter((r) => r['GPTOSS_EVENT'] === 'restart-scheduled').length, 0, 'no failure counted');
    t.is((await brief(model)).StartedAt, before.StartedAt, 'the model was adopted, not restarted');
  },
);

test.serial(
  'systemctl reload: an invalid config is refused (err), settings apply in place, a spec change recreates',
  async (t) => {
    const before = await brief(model);
    await writeFile(join(shared, 'bad.yaml'), 'health:\n  liveness:\n    perod: 2s\n');
    await sh(`cp ${shared}/bad.yaml /etc/gptoss/config.yaml && systemctl reload gptoss-supervisor`);
    await waitFor(
      'config rejected',
      10_000,
      async () =>
        /^config invalid: \/etc\/gptoss\/config\.yaml:3:5: health\.liveness\.perod/.test(await status()) || undefined,
    );
    const err = await journal('-p err');
    t.true(
      err.some(
        (r) => r['GPTOSS_EVENT'] === 'config-rejected' && r['MESSAGE_ID'] === 'b7e1c3d5a9f24e6b8c0d2e4f6a8b0c32',
      ),
    );

    await writeFile(
      join(shared, 'c2.yaml'),
      config({ health: { liveness: { period: '2s', timeout: '1s', failureThreshold: 2 } } }),
    );
    await sh(`cp ${shared}/c2.yaml /etc/gptoss/config.yaml && systemctl reload gptoss-supervisor`);
    await waitFor('settings applied', 10_000, async () =>
      (await journal()).find(
        (r) => r['GPTOSS_EVENT'] === 'config-reloaded' && /container untouched/.test(r['MESSAGE'] ?? ''),
      ),
    );
    t.is((await brief(model)).StartedAt, before.StartedAt, 'no container restart for supervisor settings');
    t.regex(await status(), /^serving/);

    await writeFile(join(shared, 'c3.yaml'), config({ model: { maxModelLen: 16384 } }));
    await sh(`cp ${shared}/c3.yaml /etc/gptoss/config.yaml && systemctl reload gptoss-supervisor`);
    await waitFor(
      'recreated and serving',
      30_000,
      async () => ((await brief(model)).Id !== before.Id && /^serving/.test(await status())) || undefined,
    );
    t.regex(await docker(['inspect', '-f', '{{json .Config.Cmd}}', model]), /"--max-model-len","16384"/);
  },
);

test.serial(
  'a SIGSTOPped supervisor is killed by the watchdog and restarted; the container is untouched',
  async (t) => {
    await sh(
      'mkdir -p /etc/systemd/system/gptoss-supervisor.service.d && printf "[Service]\\nWatchdogSec=3s\\n" > ' +
        '/etc/systemd/system/gptoss-supervisor.service.d/watchdog.conf && systemctl daemon-reload && systemctl ' +
        'restart gptoss-supervisor',
    );
    await waitFor('serving', 30_000, async () => /^serving/.test(await status()) || undefined);
    const before = await brief(model);
    const pid = (await sh('systemctl show -p MainPID --value gptoss-supervisor')).out.trim();
    await sh(`kill -STOP ${pid}`);
    await waitFor('a new main process', 30_000, async () => {
      const now = (await sh('systemctl show -p MainPID --value gptoss-supervisor')).out.trim();
      return now !== pid && now !== '0' ? now : undefined;
    });
    await waitFor('serving again', 30_000, async () => /^serving/.test(await status()) || undefined);
    const wd = await sh('journalctl -u gptoss-supervisor --no-pager -o cat | grep -i watchdog');
    t.regex(wd.out, /[Ww]atchdog timeout/);
    t.is((await brief(model)).StartedAt, before.StartedAt, 'adopted, not restarted');
    await sh('rm -rf /etc/systemd/system/gptoss-supervisor.service.d && systemctl daemon-reload');
  },
);

test.serial('install.sh again: nothing changed, no restart; an upgrade hands the container over', async (t) => {
  const before = await brief(model);
  const pid = (await sh('systemctl show -p MainPID --value gptoss-supervisor')).out.trim();
  const sums =
    'find /opt/gptoss-supervisor /usr/local/bin/gptoss-supervisor /etc/systemd/system/gptoss-supervisor.service ' +
    '/etc/dbus-1/system.d/org.gptoss.Supervisor1.conf -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum';
  const filesBefore = (await sh(sums)).out;
  const again = await sh(`bash /src/install.sh --config ${shared}/config.yaml`);
  t.is(again.code, 0, again.out);
  t.regex(again.out, /nothing changed/);
  t.is((await sh(sums)).out, filesBefore, 'not one installed file changed');
  t.is(
    (await sh('systemctl show -p MainPID --value gptoss-supervisor')).out.trim(),
    pid,
    'the supervisor was not restarted',
  );

  // An older version installed (its recorded fingerprint differs): this run is an upgrade.
  await sh('echo 0000-older-version > /opt/gptoss-supervisor/.fingerprint');
  const up = await sh(`bash /src/install.sh --config ${shared}/config.yaml`);
  t.regex(up.out, /upgrading the running supervisor; the model container keeps serving/);
  await waitFor('the new supervisor', 30_000, async () => {
    const now = (await sh('systemctl show -p MainPID --value gptoss-supervisor')).out.trim();
    return now !== pid && now !== '0' && /^serving/.test(await status()) ? true : undefined;
  });
  t.is((await brief(model)).StartedAt, before.StartedAt, 'the model container was not restarted');
});

test.serial(
  'the sandbox, measured: systemd-analyze security (of the running unit, and offline of the file)',
  async (t) => {
    const sec = await sh('systemd-analyze security --no-pager gptoss-supervisor.service | tail -1');
    t.log(sec.out.trim());
    const live = Number(/Overall exposure level for gptoss-supervisor\.service: (\d+\.\d)/.exec(sec.out)?.[1]);
    const off = await sh(
      'systemd-analyze security --offline=true --no-pager /etc/systemd/system/gptoss-supervisor.service | tail -1',
    );
    t.log(`offline: ${off.out.trim()}`);
    const offline = Number(/: (\d+\.\d)/.exec(off.out)?.[1]);
    // The Docker socket is root-equivalent; everything else is taken away. Keep it there.
    t.true(live <= 2.0, `exposure ${live}`);
    t.true(offline <= 2.0, `offline exposure ${offline}`);
  },
);

test.serial('systemctl stop -> the container is stopped gracefully', async (t) => {
  const stop = await sh('systemctl stop gptoss-supervisor');
  t.is(stop.code, 0, stop.out);
  t.is(await docker(['inspect', '-f', '{{.State.Running}} {{.State.ExitCode}}', model]), 'false 0');
  const j = await journal();
  t.true(j.some((r) => r['GPTOSS_EVENT'] === 'supervisor-stopped'));
});

test.serial(
  'a long healthy load keeps systemctl start waiting past TimeoutStartSec (EXTEND_TIMEOUT_USEC)',
  async (t) => {
    await writeFile(join(shared, 'slow.yaml'), config({ container: { env: { STANDIN_LOAD_SECONDS: '12' } } }));
    await sh(
      `cp ${shared}/slow.yaml /etc/gptoss/config.yaml && mkdir -p /etc/systemd/system/gptoss-supervisor.service.d && ` +
        `printf "[Service]\\nTimeoutStartSec=5s\\n" > /etc/systemd/system/gptoss-supervisor.service.d/timeout.conf ` +
        `&& systemctl daemon-reload`,
    );
    const t0 = Date.now();
    const start = await sh('systemctl start gptoss-supervisor');
    const took = Date.now() - t0;
    t.is(start.code, 0, start.out);
    t.true(took > 8000, `start took ${took}ms: it waited for the load, past the 5s timeout`);
    t.regex(await status(), /^serving/);
    await sh(
      'systemctl stop gptoss-supervisor; rm -rf /etc/systemd/system/gptoss-supervisor.service.d && systemctl ' +
        'daemon-reload',
    );
  },
);

test.serial('a crash loop lands at priority err', async (t) => {
  await writeFile(
    join(shared, 'loop.yaml'),
    config({ container: { env: { STANDIN_FAIL: 'exit:3', STANDIN_LOAD_SECONDS: '0.2' } } }),
  );
  await sh(`cp ${shared}/loop.yaml /etc/gptoss/config.yaml && systemctl start gptoss-supervisor`);
  const err = await waitFor('crash loop in -p err', 60_000, async () =>
    (await journal('-p err')).find((r) => /crash loop/.test(r['MESSAGE'] ?? '')),
  );
  t.regex(err['MESSAGE'] ?? '', /container exited \(exit 3\).*last log: .*STANDIN_FAIL=exit:3/);
  t.is(err['EXIT_CODE'], '3');
  t.regex(await status(), /^crash loop: restart \d+ in/);
  await sh('systemctl stop gptoss-supervisor');
});

test.serial(
  'an induced failure (token refused): its diagnosis at priority err, the unit waiting, no restart loop',
  async (t) => {
    await writeFile(
      join(shared, 'h401.yaml'),
      config({ container: { env: { STANDIN_FAIL: 'hf-401', STANDIN_FAST_FAIL: '1', STANDIN_LOAD_SECONDS: '1' } } }),
    );
    await sh(`cp ${shared}/h401.yaml /etc/gptoss/config.yaml && systemctl start gptoss-supervisor`);
    const dx = await waitFor('the diagnosis in -p err', 60_000, async () =>
      (await journal('-p err')).find((r) => r['GPTOSS_EVENT'] === 'diagnosis'),
    );
    t.is(dx['DIAGNOSIS'], 'hf-auth');
    t.is(dx['MESSAGE_ID'], 'c2d4e6f8a0b24c6d8e0f2a4b6c8d0e41');
    t.is(dx['PRIORITY'], '3');
    t.regex(
      dx['MESSAGE'] ?? '',
      /Hugging Face refused the HF token.*fix: put a valid token in \/etc\/gptoss\/hf_token/,
    );
    t.regex(await status(), /^waiting for a valid HF token: /);
    await new Promise((r) => setTimeout(r, 2000));
    t.is(
      (await journal()).filter(
        (r) =>
          r['GPTOSS_EVENT'] === 'restart-scheduled' &&
          Number(r['__REALTIME_TIMESTAMP']) > Number(dx['__REALTIME_TIMESTAMP']),
      ).length,
      0,
      'no restart loop',
    );
    await sh('systemctl stop gptoss-supervisor');
  },
);

test.serial('after all of it: the token is nowhere in the journal or the state directory', async (t) => {
  const all = await sh('journalctl -o json --no-pager; cat /var/lib/gptoss-supervisor/* 2>/dev/null');
  t.false(all.out.includes(TOKEN));
  t.true(all.out.length > 1000, 'there was something to look at');
});

test.serial('install.sh --uninstall -> clean, config and cache kept', async (t) => {
  const u = await sh('bash /src/install.sh --uninstall');
  t.is(u.code, 0, u.out);
  for (const gone of [
    '/opt/gptoss-supervisor',
    '/usr/local/bin/gptoss-supervisor',
    '/etc/systemd/system/gptoss-supervisor.service',
    '/etc/dbus-1/system.d/org.gptoss.Supervisor1.conf',
    '/var/lib/gptoss-supervisor',
  ]) {
    t.is((await sh(`test -e ${gone}`)).code, 1, `${gone} removed`);
  }
  t.regex((await sh('ls /etc/gptoss')).out, /config\.yaml/);
  t.regex((await sh(`ls ${shared}/vllm/encodings`)).out, /o200k_base\.tiktoken/, 'the model files are kept');
  t.regex((await sh('systemctl status gptoss-supervisor --no-pager 2>&1; true')).out, /could not be found|not-found/);
});
