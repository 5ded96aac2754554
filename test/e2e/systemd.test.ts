// End to end under a real systemd (PID 1 in a container), installed by install.sh from the checkout,
// driven with systemctl and read with journalctl, against the host's Docker engine. Every scenario
// starts from Box.serving(): the install (once), then a known config and a serving unit.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { brief, docker } from '../helpers/docker.js';
import { Box, run, TOKEN, waitFor } from './harness/box.js';

const box = new Box();

test.before(() => box.boot());
test.after.always(() => box.destroy());

const mainPid = async () => (await box.sh('systemctl show -p MainPID --value gptoss-supervisor')).out.trim();
const unitTimes = async () => {
  const out = (
    await box.sh(
      'systemctl show -p InactiveExitTimestampMonotonic -p ActiveEnterTimestampMonotonic -p TimeoutStartUSec ' +
        'gptoss-supervisor',
    )
  ).out;
  const get = (k: string) => /^(\S+)=(.*)$/m.exec(out.split('\n').find((l) => l.startsWith(`${k}=`)) ?? '')?.[2] ?? '';
  return {
    exit: Number(get('InactiveExitTimestampMonotonic')),
    active: Number(get('ActiveEnterTimestampMonotonic')),
    timeout: get('TimeoutStartUSec'),
  };
};

test.serial('install.sh installs; systemctl start returns once the model serves; status shows it', async (t) => {
  const inst = await box.install();
  t.is(inst.code, 0, inst.out);
  t.regex(inst.out, /o200k_base\.tiktoken: fetched \(3613922 bytes\), SHA-256 verified/);
  t.false(inst.out.includes(TOKEN));
  t.regex((await box.sh('stat -c %a /etc/gptoss/hf_token')).out, /^600/);
  const v = await box.sh('systemd-analyze verify /etc/systemd/system/gptoss-supervisor.service');
  t.is(v.code, 0, v.out);
  await box.sh('systemctl stop gptoss-supervisor');
  const start = await box.sh('systemctl start gptoss-supervisor');
  t.is(start.code, 0, start.out);
  const health = await run('curl', [
    '-s',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    `http://127.0.0.1:${box.port}/health`,
  ]);
  t.is(health.out, '200', 'serving when systemctl start returns');
  // systemd's own record: the unit became active (READY=1) after the model was ready, not before.
  const ready = (await box.journal()).filter((r) => r['GPTOSS_EVENT'] === 'container-ready').at(-1);
  const times = await unitTimes();
  // The record's time is when journald received it, which may be a moment after systemd took the
  // READY=1 that the same decision sent (two sockets, two readers): 250 ms of slack for that order.
  t.true(
    Number(ready?.['__MONOTONIC_TIMESTAMP']) <= times.active + 250_000,
    `READY=1 came once the model served (ready at ${ready?.['__MONOTONIC_TIMESTAMP']}, active at ${times.active})`,
  );
  const st = await box.sh('systemctl status gptoss-supervisor --no-pager');
  t.regex(st.out, /Status: "serving gpt-oss-120b on port \d+ for/);
  const env = await docker(['inspect', '-f', '{{json .Config.Env}}', box.model]);
  t.true(env.includes(`HF_TOKEN=${TOKEN}`), 'the token reached the model container');
});

test.serial('the journal: priorities, MESSAGE_IDs, structured fields, and never the token', async (t) => {
  await box.serving();
  const recs = await box.journal();
  const started = recs.find((r) => r['GPTOSS_EVENT'] === 'container-started');
  t.truthy(started);
  t.is(started?.['MESSAGE_ID'], '0f4d2a9e7b6c4c1d8e3a5b2c9d0e1f21');
  t.is(started?.['PRIORITY'], '6');
  t.truthy(started?.['CONTAINER_ID']);
  t.is(recs.find((r) => r['GPTOSS_EVENT'] === 'container-ready')?.['MESSAGE_ID'], '0f4d2a9e7b6c4c1d8e3a5b2c9d0e1f22');
  const all = await box.sh('journalctl -o json --no-pager');
  t.false(all.out.includes(TOKEN), 'the token is nowhere in the journal');
});

test.serial('docker kill of the model container -> restarted, with a warning in the journal', async (t) => {
  await box.serving();
  const since = await box.now();
  const before = await brief(box.model);
  await docker(['kill', box.model]);
  const r = await waitFor('a restart', 30_000, async () =>
    (await box.journal('', since)).find((x) => x['GPTOSS_EVENT'] === 'restart-scheduled'),
  );
  await waitFor('serving again', 30_000, async () =>
    (await brief(box.model)).StartedAt !== before.StartedAt && /^serving/.test(await box.status()) ? true : undefined,
  );
  t.is(r['PRIORITY'], '4');
  t.is(r['EXIT_CODE'], '137');
  t.true((await box.journal('-p warning')).every((x) => Number(x['PRIORITY']) <= 4));
});

test.serial(
  'the memory guard samples inside the sandbox: a load says its headroom and what its container held',
  async (t) => {
    await box.serving();
    // Every start above loaded the model: the last load's line, read by the unit with its sandbox
    // (ProtectProc=invisible, ProtectControlGroups, ProcSubset=all for /proc/meminfo and /proc/pressure).
    const said = (await box.journal())
      .filter((r) => r['GPTOSS_EVENT'] === 'memory-guard' && /^memory guard: the load left/.test(r['MESSAGE'] ?? ''))
      .at(-1);
    t.truthy(said, 'no headroom line after a load: the sampler read nothing under the unit');
    t.true(Number(said?.['LOWEST_AVAILABLE_BYTES']) > Number(said?.['FLOOR_BYTES']), said?.['MESSAGE']);
    t.true(Number(said?.['PEAK_CONTAINER_BYTES']) > 0, `the container's cgroup was not read: ${said?.['MESSAGE']}`);
    t.is(said?.['PRIORITY'], '6');
  },
);

test.serial('the model killed with an Xid in the kernel journal -> gpu-xid, the kernel line quoted', async (t) => {
  await box.serving();
  const since = await box.now();
  // A kernel-transport record, as the NVIDIA driver's would be, in a journal file journalctl -k reads
  // (this boot's id, now); systemd-journal-remote writes it: journald takes no _TRANSPORT from a client.
  const xid = 'NVRM: Xid (PCI:0000:01:00): 79, pid=1234, name=python3, GPU has fallen off the bus.';
  const file = '/var/log/journal/$(cat /etc/machine-id)/remote-kernel-fixture.journal';
  const w = await box.sh(
    `set -e; mkdir -p $(dirname ${file}); rm -f ${file}; ` +
      `printf '__REALTIME_TIMESTAMP=%s\\n__MONOTONIC_TIMESTAMP=1\\n_BOOT_ID=%s\\n_TRANSPORT=kernel\\n` +
      `SYSLOG_IDENTIFIER=kernel\\nSYSLOG_FACILITY=0\\nPRIORITY=4\\nMESSAGE=%s\\n\\n' "$(date +%s%6N)" ` +
      `"$(tr -d - </proc/sys/kernel/random/boot_id)" '${xid}' | ` +
      `/lib/systemd/systemd-journal-remote --output=${file} - 2>&1; ` +
      `journalctl -k -q --no-pager -o cat --since -1m | grep -c 'Xid (PCI'`,
  );
  t.regex(w.out, /writing 1 entries[\s\S]*\n1\s*$/, 'journalctl -k shows the record');
  try {
    await docker(['kill', box.model]);
    const r = await waitFor('a diagnosis', 30_000, async () =>
      (await box.journal('', since)).find((x) => x['GPTOSS_EVENT'] === 'diagnosis'),
    );
    t.is(r['DIAGNOSIS'], 'gpu-xid');
    t.is(r['PRIORITY'], '3');
    t.regex(r['MESSAGE'] ?? '', /Xid 79 on PCI:0000:01:00: GPU has fallen off the bus.*nvidia-smi -r.*log: NVRM: Xid/);
    await box.until('serving again', 60_000, /^serving/);
  } finally {
    await box.sh(`rm -f ${file}`);
  }
});

test.serial('D-Bus: busctl introspect shows the interface; anyone reads status, only root restarts', async (t) => {
  await box.serving();
  const intro = await box.sh(
    'busctl introspect --no-pager org.gptoss.Supervisor1 /org/gptoss/Supervisor1 org.gptoss.Supervisor1',
  );
  t.is(intro.code, 0, intro.out);
  t.regex(intro.out, /\.Restart +method/);
  t.regex(intro.out, /\.State +property +s +"serving" +emits-change/);
  const nobody = 'setpriv --reuid=65534 --regid=65534 --clear-groups gptoss-supervisor';
  const st = await box.sh(`${nobody} status --json; echo "rc=$?"`);
  t.regex(st.out, /"state": "serving"/);
  t.regex(st.out, /rc=0$/m);
  t.false(st.out.includes(TOKEN));
  const denied = await box.sh(`${nobody} restart; echo "rc=$?"`);
  t.regex(denied.out, /refused: only root may do this/);
  t.regex(denied.out, /^rc=5$/m);
  const human = await box.sh('gptoss-supervisor status; echo "rc=$?"');
  t.regex(human.out, /^gptoss-supervisor: serving gpt-oss-120b on port \d+ for /);
});

test.serial(
  'systemctl stop/start docker: waiting for docker, one line; back: serving, the model untouched',
  async (t) => {
    await box.serving();
    const before = await brief(box.model);
    const since = await box.now();
    await box.sh('systemctl stop docker');
    await box.until('waiting for docker', 20_000, /^waiting for docker: docker\.service is (deactivating|inactive)/);
    await box.sh('systemctl start docker');
    await box.until('serving again', 60_000, /^serving/);
    await box.sh('systemctl restart docker');
    await waitFor('serving after a restart of docker', 60_000, async () => {
      const lost = (await box.journal('', since)).filter((r) => r['GPTOSS_EVENT'] === 'docker-lost');
      return lost.length >= 2 && /^serving/.test(await box.status()) ? true : undefined;
    });
    const recs = await box.journal('', since);
    const lost = recs.filter((r) => r['GPTOSS_EVENT'] === 'docker-lost');
    t.is(lost.length, 2, 'one line per outage, not a storm');
    t.regex(
      lost[0]?.['MESSAGE'] ?? '',
      /docker\.service is (deactivating|inactive) \(systemctl stop or restart docker\)/,
    );
    t.is(recs.filter((r) => r['GPTOSS_EVENT'] === 'restart-scheduled').length, 0, 'no failure counted');
    t.is((await brief(box.model)).StartedAt, before.StartedAt, 'the model was adopted, not restarted');
  },
);

test.serial(
  'systemctl reload: an invalid config is refused (err), settings apply in place, a spec change recreates',
  async (t) => {
    await box.serving();
    const since = await box.now();
    const before = await brief(box.model);
    const reload = async (file: string, text: string) => {
      await writeFile(join(box.shared, file), text);
      await box.sh(`cp ${box.shared}/${file} /etc/gptoss/config.yaml && systemctl reload gptoss-supervisor`);
    };
    await reload('bad.yaml', 'health:\n  liveness:\n    perod: 2s\n');
    await box.until(
      'config rejected',
      10_000,
      /^config invalid: \/etc\/gptoss\/config\.yaml:3:5: health\.liveness\.perod/,
    );
    const err = await box.journal('-p err', since);
    t.true(
      err.some(
        (r) => r['GPTOSS_EVENT'] === 'config-rejected' && r['MESSAGE_ID'] === 'b7e1c3d5a9f24e6b8c0d2e4f6a8b0c32',
      ),
    );

    await reload('c2.yaml', box.config({ health: { liveness: { period: '2s', timeout: '1s', failureThreshold: 2 } } }));
    await waitFor('settings applied', 10_000, async () =>
      (await box.journal('', since)).find(
        (r) => r['GPTOSS_EVENT'] === 'config-reloaded' && /container untouched/.test(r['MESSAGE'] ?? ''),
      ),
    );
    t.is((await brief(box.model)).StartedAt, before.StartedAt, 'no container restart for supervisor settings');
    t.regex(await box.status(), /^serving/);

    await reload('c3.yaml', box.config({ model: { maxModelLen: 16384 } }));
    await waitFor(
      'recreated and serving',
      30_000,
      async () => ((await brief(box.model)).Id !== before.Id && /^serving/.test(await box.status())) || undefined,
    );
    t.regex(await docker(['inspect', '-f', '{{json .Config.Cmd}}', box.model]), /"--max-model-len","16384"/);
  },
);

test.serial(
  'a SIGSTOPped supervisor is killed by the watchdog and restarted; the container is untouched',
  async (t) => {
    await box.serving();
    await box.sh(
      'mkdir -p /etc/systemd/system/gptoss-supervisor.service.d && printf "[Service]\\nWatchdogSec=3s\\n" > ' +
        '/etc/systemd/system/gptoss-supervisor.service.d/watchdog.conf && systemctl daemon-reload && ' +
        'systemctl restart gptoss-supervisor',
    );
    await box.until('serving', 30_000, /^serving/);
    const before = await brief(box.model);
    const pid = await mainPid();
    await box.sh(`kill -STOP ${pid}`);
    await waitFor('a new main process', 30_000, async () => {
      const now = await mainPid();
      return now !== pid && now !== '0' ? now : undefined;
    });
    await box.until('serving again', 30_000, /^serving/);
    const wd = await box.sh('journalctl -u gptoss-supervisor --no-pager -o cat | grep -i watchdog');
    t.regex(wd.out, /[Ww]atchdog timeout/);
    t.is((await brief(box.model)).StartedAt, before.StartedAt, 'adopted, not restarted');
  },
);

test.serial('install.sh again: nothing changed, no restart; an upgrade hands the container over', async (t) => {
  await box.serving();
  const before = await brief(box.model);
  const pid = await mainPid();
  const sums =
    'find /opt/gptoss-supervisor /usr/local/bin/gptoss-supervisor /etc/systemd/system/gptoss-supervisor.service ' +
    '/etc/dbus-1/system.d/org.gptoss.Supervisor1.conf -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum';
  const filesBefore = (await box.sh(sums)).out;
  const again = await box.sh(`bash /src/install.sh --config ${box.shared}/config.yaml`);
  t.is(again.code, 0, again.out);
  t.regex(again.out, /nothing changed/);
  t.is((await box.sh(sums)).out, filesBefore, 'not one installed file changed');
  t.is(await mainPid(), pid, 'the supervisor was not restarted');

  // An older version installed (a tree that differs from the build: install.sh looks at the tree
  // itself, not at a note of it): this run is an upgrade.
  await box.sh('echo older > /opt/gptoss-supervisor/OLDER-VERSION');
  const up = await box.sh(`bash /src/install.sh --config ${box.shared}/config.yaml`);
  t.regex(up.out, /upgrading the running supervisor; the model container keeps serving/);
  await waitFor('the new supervisor', 30_000, async () => {
    const now = await mainPid();
    return now !== pid && now !== '0' && /^serving/.test(await box.status()) ? true : undefined;
  });
  t.is((await brief(box.model)).StartedAt, before.StartedAt, 'the model container was not restarted');
});

test.serial(
  'the sandbox, measured: systemd-analyze security (of the running unit, and offline of the file)',
  async (t) => {
    await box.serving();
    const sec = await box.sh('systemd-analyze security --no-pager gptoss-supervisor.service | tail -1');
    t.log(sec.out.trim());
    const live = Number(/Overall exposure level for gptoss-supervisor\.service: (\d+\.\d)/.exec(sec.out)?.[1]);
    const off = await box.sh(
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
  await box.serving();
  const since = await box.now();
  const stop = await box.sh('systemctl stop gptoss-supervisor');
  t.is(stop.code, 0, stop.out);
  t.is(await docker(['inspect', '-f', '{{.State.Running}} {{.State.ExitCode}}', box.model]), 'false 0');
  t.true((await box.journal('', since)).some((r) => r['GPTOSS_EVENT'] === 'supervisor-stopped'));
});

test.serial(
  'a long healthy load keeps systemctl start waiting past TimeoutStartSec; a stalled one is READY with its backoff',
  async (t) => {
    await box.serving();
    await writeFile(join(box.shared, 'slow.yaml'), box.config({ container: { env: { STANDIN_LOAD_SECONDS: '12' } } }));
    await box.sh(
      `systemctl stop gptoss-supervisor && cp ${box.shared}/slow.yaml /etc/gptoss/config.yaml && ` +
        'mkdir -p /etc/systemd/system/gptoss-supervisor.service.d && ' +
        'printf "[Service]\\nTimeoutStartSec=5s\\n" > /etc/systemd/system/gptoss-supervisor.service.d/timeout.conf ' +
        '&& systemctl daemon-reload',
    );
    const start = await box.sh('systemctl start gptoss-supervisor');
    t.is(start.code, 0, start.out);
    t.regex(await box.status(), /^serving/);
    // systemd's own figures: activating for longer than its start timeout, and active, not failed.
    const u = await unitTimes();
    t.is(u.timeout, '5s');
    t.true(u.active - u.exit > 5_000_000, `activating for ${(u.active - u.exit) / 1e6}s, past TimeoutStartSec=5s`);

    // A load that hangs (in torch.compile): failed at its stall timeout, READY sent with the backoff
    // shown, the unit active rather than failed by systemd's timeout.
    const hang = box.config({
      container: { env: { STANDIN_PHASES: 'weights=1,compile=2', STANDIN_HANG: 'compile' } },
      health: { startup: { period: '500ms', timeout: '1m', stallTimeout: '3s' } },
    });
    await writeFile(join(box.shared, 'hang.yaml'), hang);
    await box.sh(`systemctl stop gptoss-supervisor && cp ${box.shared}/hang.yaml /etc/gptoss/config.yaml`);
    const since = await box.now();
    const started = await box.sh('systemctl start gptoss-supervisor');
    t.is(started.code, 0, started.out);
    t.regex(
      await box.status(),
      /^(backoff|crash loop): restart \d+ in .* \(load stalled \(compile\)\)|^(starting|loading)/,
    );
    await box.until('the stall shown', 30_000, /\(load stalled \(compile\)\)/);
    t.is((await box.sh('systemctl is-active gptoss-supervisor')).out.trim(), 'active');
    const err = await box.journal('-p err', since);
    t.true(
      err.some((r) => r['DIAGNOSIS'] === 'load-stalled'),
      'the diagnosis at err',
    );
    const phases = (await box.journal('', since)).filter((r) => r['GPTOSS_EVENT'] === 'load-phase');
    t.deepEqual(
      phases.slice(0, 2).map((r) => r['PHASE']),
      ['weights', 'compile'],
      'one journal line per phase, PHASE field',
    );
  },
);

test.serial('a crash loop lands at priority err', async (t) => {
  await box.serving();
  const since = await box.now();
  await writeFile(
    join(box.shared, 'loop.yaml'),
    box.config({ container: { env: { STANDIN_FAIL: 'exit:3', STANDIN_LOAD_SECONDS: '0.2' } } }),
  );
  await box.sh(`cp ${box.shared}/loop.yaml /etc/gptoss/config.yaml && systemctl restart gptoss-supervisor`);
  const err = await waitFor('crash loop in -p err', 60_000, async () =>
    (await box.journal('-p err', since)).find((r) => /crash loop/.test(r['MESSAGE'] ?? '')),
  );
  t.regex(err['MESSAGE'] ?? '', /container exited \(exit 3\).*last log: .*STANDIN_FAIL=exit:3/);
  t.is(err['EXIT_CODE'], '3');
  t.regex(await box.status(), /^crash loop: restart \d+ in/);
});

test.serial(
  'an induced failure (token refused): its diagnosis at err, the unit waiting, no restart loop',
  async (t) => {
    await box.serving();
    const since = await box.now();
    await writeFile(
      join(box.shared, 'h401.yaml'),
      box.config({ container: { env: { STANDIN_FAIL: 'hf-401', STANDIN_FAST_FAIL: '1', STANDIN_LOAD_SECONDS: '1' } } }),
    );
    await box.sh(`cp ${box.shared}/h401.yaml /etc/gptoss/config.yaml && systemctl restart gptoss-supervisor`);
    const dx = await waitFor('the diagnosis in -p err', 60_000, async () =>
      (await box.journal('-p err', since)).find((r) => r['GPTOSS_EVENT'] === 'diagnosis'),
    );
    t.is(dx['DIAGNOSIS'], 'hf-auth');
    t.is(dx['MESSAGE_ID'], 'c2d4e6f8a0b24c6d8e0f2a4b6c8d0e41');
    t.is(dx['PRIORITY'], '3');
    t.regex(
      dx['MESSAGE'] ?? '',
      /Hugging Face refused the HF token.*fix: put a valid token in \/etc\/gptoss\/hf_token/,
    );
    t.regex(await box.status(), /^waiting for a valid HF token: /);
    // The supervisor looks again when asked (a reload): with the same token, it keeps waiting.
    const asked = await box.now();
    await box.sh('systemctl reload gptoss-supervisor');
    await waitFor('the reload', 10_000, async () =>
      (await box.journal('', asked)).find((r) => r['GPTOSS_EVENT'] === 'config-reloaded'),
    );
    t.regex(await box.status(), /^waiting for a valid HF token: /);
    const restarts = (await box.journal('', dx['__REALTIME_TIMESTAMP'])).filter(
      (r) => r['GPTOSS_EVENT'] === 'restart-scheduled' || r['GPTOSS_EVENT'] === 'container-started',
    );
    t.is(restarts.length, 0, 'no restart loop');
  },
);

test.serial('the token is nowhere in the journal or the state directory, after every scenario above', async (t) => {
  const all = await box.sh('journalctl -o json --no-pager; cat /var/lib/gptoss-supervisor/* 2>/dev/null');
  t.false(all.out.includes(TOKEN));
  t.true(all.out.length > 1000, 'there was something to look at');
});

test.serial('install.sh --uninstall -> clean, config and cache kept', async (t) => {
  await box.serving();
  const u = await box.sh('bash /src/install.sh --uninstall');
  t.is(u.code, 0, u.out);
  for (const gone of [
    '/opt/gptoss-supervisor',
    '/usr/local/bin/gptoss-supervisor',
    '/etc/systemd/system/gptoss-supervisor.service',
    '/etc/dbus-1/system.d/org.gptoss.Supervisor1.conf',
    '/var/lib/gptoss-supervisor',
  ]) {
    t.is((await box.sh(`test -e ${gone}`)).code, 1, `${gone} removed`);
  }
  t.regex((await box.sh('ls /etc/gptoss')).out, /config\.yaml/);
  t.regex((await box.sh(`ls ${box.shared}/vllm/encodings`)).out, /o200k_base\.tiktoken/, 'the model files are kept');
  t.regex(
    (await box.sh('systemctl status gptoss-supervisor --no-pager 2>&1; true')).out,
    /could not be found|not-found/,
  );
});
