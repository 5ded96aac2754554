// The gate under a real systemd: its own unprivileged unit, socket-activated; restarts of the
// supervisor, of the gate, and an upgrade by install.sh, each under steady traffic from clients.
import { Agent } from 'node:http';
import test from 'ava';
import { brief } from '../helpers/docker.js';
import { chat, failures, type Answer } from '../helpers/traffic.js';
import { Box, waitFor } from './harness/box.js';

const box = new Box();

test.before(() => box.boot());
test.after.always(() => box.destroy());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pidOf = async (unit: string) => (await box.sh(`systemctl show -p MainPID --value ${unit}`)).out.trim();

/** Clients at 10 requests a second (every other one streamed, over keep-alive) while `action` runs. */
async function underTraffic(action: () => Promise<void>): Promise<Answer[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 32 });
  const all: Array<Promise<Answer>> = [];
  let going = true;
  const loop = (async () => {
    for (let i = 0; going; i++) {
      all.push(chat(box.port, { stream: i % 2 === 0, agent, timeoutMs: 120_000 }));
      await sleep(100);
    }
  })();
  try {
    await sleep(1500);
    await action();
    await sleep(1500);
  } finally {
    going = false;
    await loop;
  }
  const answers = await Promise.all(all);
  agent.destroy();
  return answers;
}

test.serial(
  'the gate runs as no one in particular: not root, no capability, no way to the Docker socket',
  async (t) => {
    await box.serving();
    await waitFor('the gate', 30_000, async () => ((await pidOf('gptoss-gate')) !== '0' ? true : undefined));
    const pid = await pidOf('gptoss-gate');
    const ids = (await box.sh(`awk '/^(Uid|Gid|CapEff):/ {print $1, $2}' /proc/${pid}/status`)).out;
    const uid = Number(/^Uid:\s+(\d+)/m.exec(ids)?.[1]);
    const gid = Number(/^Gid:\s+(\d+)/m.exec(ids)?.[1]);
    t.true(uid > 0, `uid ${uid}`);
    t.regex(ids, /^CapEff:\s+0+$/m, 'no capability');
    // Its uid, even outside the unit's sandbox, cannot talk to Docker.
    const ping = await box.sh(
      `setpriv --reuid=${uid} --regid=${gid} --clear-groups curl -s -m 5 --unix-socket /run/docker.sock http://x/_ping`,
    );
    t.not(ping.code, 0, ping.out);
    // And inside its sandbox, the socket is not even there to be tried.
    const seen = await box.sh(`nsenter -t ${pid} -m test -e /run/docker.sock`);
    t.not(seen.code, 0, "the Docker socket is inaccessible in the gate's mount namespace");
    const sec = await box.sh('systemd-analyze security --no-pager gptoss-gate.service | tail -1');
    t.log(sec.out.trim());
    t.true(Number(/: (\d+\.\d)/.exec(sec.out)?.[1]) <= 3.5, sec.out);
  },
);

test.serial(
  'systemctl restart gptoss-supervisor under traffic: nothing refused or cut, the model untouched',
  async (t) => {
    await box.serving();
    const before = await brief(box.model);
    const gate = await pidOf('gptoss-gate');
    const pid = await pidOf('gptoss-supervisor');
    const answers = await underTraffic(async () => {
      const r = await box.sh('systemctl restart gptoss-supervisor', 180_000);
      t.is(r.code, 0, r.out);
      await waitFor('the new supervisor serving', 60_000, async () =>
        (await pidOf('gptoss-supervisor')) !== pid && /^serving/.test(await box.status()) ? true : undefined,
      );
    });
    t.deepEqual(failures(answers), [], `${answers.length} requests`);
    t.true(answers.length >= 30, `${answers.length} requests`);
    t.is((await brief(box.model)).StartedAt, before.StartedAt, 'the model container was not restarted');
    t.is(await pidOf('gptoss-gate'), gate, 'the gate was not restarted');
    const journal = await box.sh('journalctl -u gptoss-supervisor --no-pager -n 200');
    t.regex(journal.out, /systemd is restarting this unit: handing the model over to the next supervisor/);
  },
);

test.serial(
  'systemctl restart gptoss-gate under traffic: nothing refused or cut (systemd holds the socket)',
  async (t) => {
    await box.serving();
    const before = await brief(box.model);
    const gate = await pidOf('gptoss-gate');
    const answers = await underTraffic(async () => {
      const r = await box.sh('systemctl restart gptoss-gate.service', 180_000);
      t.is(r.code, 0, r.out);
    });
    t.deepEqual(failures(answers), [], `${answers.length} requests`);
    t.true(answers.length >= 30, `${answers.length} requests`);
    t.not(await pidOf('gptoss-gate'), gate, 'a new gate');
    t.is((await brief(box.model)).StartedAt, before.StartedAt, 'the model container was not restarted');
  },
);

test.serial('an upgrade by install.sh under traffic: nothing refused or cut, the model untouched', async (t) => {
  await box.serving();
  const before = await brief(box.model);
  const gate = await pidOf('gptoss-gate');
  const sup = await pidOf('gptoss-supervisor');
  // An older version installed (a tree that differs from the build: install.sh looks at the tree
  // itself, not at a note of it): this run is an upgrade.
  await box.sh('echo older > /opt/gptoss-supervisor/OLDER-VERSION');
  const answers = await underTraffic(async () => {
    const up = await box.sh(`bash /src/install.sh --config ${box.shared}/config.yaml`, 300_000);
    t.is(up.code, 0, up.out);
    t.regex(up.out, /upgrading the running supervisor/);
    t.regex(up.out, /restarting the gate/);
    await waitFor('the new supervisor serving', 60_000, async () =>
      (await pidOf('gptoss-supervisor')) !== sup && /^serving/.test(await box.status()) ? true : undefined,
    );
  });
  t.deepEqual(failures(answers), [], `${answers.length} requests`);
  t.not(await pidOf('gptoss-gate'), gate, 'the gate was upgraded too');
  t.is((await brief(box.model)).StartedAt, before.StartedAt, 'the model container was not restarted');
});
