// The config file watched while serving: every way editors save, a symlink, invalid then fixed, a burst.
import { readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import test from 'ava';
import { stringify } from 'yaml';
import { startDaemon } from '../helpers/daemon.js';
import { brief } from '../helpers/docker.js';
import { cleanup, setup, stopAll, track, type Setup } from '../helpers/scenario.js';

test.afterEach.always(stopAll);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The scenario's config with `edit` applied to a copy. */
function edited(s: Setup, edit: (c: Record<string, Record<string, unknown>>) => void): string {
  const c = structuredClone(s.raw) as Record<string, Record<string, unknown>>;
  edit(c);
  return stringify(c);
}
const livenessPeriod = (ms: string) => (c: Record<string, Record<string, unknown>>) => {
  (c['health']!['liveness'] as Record<string, unknown>)['period'] = ms;
};
const maxModelLen = (n: number) => (c: Record<string, Record<string, unknown>>) => {
  c['model'] = { ...c['model'], maxModelLen: n };
};

async function serving(tag: string): Promise<Setup & { before: Awaited<ReturnType<typeof brief>> }> {
  const s = await setup(tag);
  await s.daemon.waitState('serving', 30_000);
  return { ...s, before: await brief(s.name) };
}

test('edited in place: a supervisor setting applies without touching the container', async (t) => {
  const s = await serving('cfg-inplace');
  try {
    const mark = s.daemon.mark;
    await writeFile(s.configFile, edited(s, livenessPeriod('700ms')));
    const r = await s.daemon.waitFor((x) => x.event === 'config-reloaded', 5_000, mark);
    // The reload line is the decision: nothing is left to happen to the container.
    t.regex(r.msg, /supervisor settings applied, container untouched/);
    t.is((await brief(s.name)).StartedAt, s.before.StartedAt);
  } finally {
    await cleanup(s);
  }
});

test('written to a temp file and renamed over (vim, sed -i): a spec change recreates the container', async (t) => {
  const s = await serving('cfg-rename');
  try {
    const mark = s.daemon.mark;
    const tmp = join(dirname(s.configFile), '.config.yaml.swp');
    await writeFile(tmp, edited(s, maxModelLen(16384)));
    await rename(tmp, s.configFile);
    const r = await s.daemon.waitFor((x) => x.event === 'config-reloaded', 5_000, mark);
    t.regex(r.msg, /the container spec changed; preparing the new one while .* serves on/);
    // The old container serves until the new spec is checked (make before break); then the new one.
    await s.daemon.waitFor((x) => x.event === 'container-ready', 30_000, s.daemon.after(r), 'the new container');
    t.not((await brief(s.name)).Id, s.before.Id);
  } finally {
    await cleanup(s);
  }
});

test('deleted: the last good config runs on, with a warning; created again: applied', async (t) => {
  const s = await serving('cfg-delete');
  try {
    const mark = s.daemon.mark;
    await rm(s.configFile);
    const w = await s.daemon.waitFor((x) => x.event === 'config-rejected', 5_000, mark);
    t.regex(w.msg, /was deleted; still running on the last good config/);
    t.is(w.level, 40);
    t.is((await brief(s.name)).StartedAt, s.before.StartedAt, 'still serving, untouched');
    await writeFile(s.configFile, edited(s, livenessPeriod('800ms')));
    const r = await s.daemon.waitFor((x) => x.event === 'config-reloaded', 5_000, mark);
    t.regex(r.msg, /container untouched/);
    t.is((await brief(s.name)).StartedAt, s.before.StartedAt);
  } finally {
    await cleanup(s);
  }
});

test('a config that is a symlink: editing its target applies; pointing it elsewhere applies', async (t) => {
  const s = await setup('cfg-link', {}, { start: false });
  const target = join(dirname(s.configFile), 'real.yaml');
  await writeFile(target, await readFile(s.configFile, 'utf8'));
  const link = join(dirname(s.configFile), 'link.yaml');
  await symlink(target, link);
  const daemon = track(startDaemon(link, s.stateDir));
  try {
    await daemon.waitState('serving', 30_000);
    const before = await brief(s.name);
    let mark = daemon.mark;
    await writeFile(target, edited(s, livenessPeriod('900ms')));
    const r1 = await daemon.waitFor((x) => x.event === 'config-reloaded', 5_000, mark);
    t.regex(r1.msg, /container untouched/);
    mark = daemon.mark;
    const other = join(dirname(s.configFile), 'other.yaml');
    await writeFile(other, edited(s, maxModelLen(8192)));
    const tmpLink = join(dirname(s.configFile), '.link.tmp');
    await symlink(other, tmpLink);
    await rename(tmpLink, link);
    const r2 = await daemon.waitFor((x) => x.event === 'config-reloaded', 5_000, mark);
    t.regex(r2.msg, /spec changed; preparing the new one/);
    await daemon.waitFor((x) => x.event === 'container-ready', 30_000, daemon.after(r2), 'the new container');
    t.not((await brief(s.name)).Id, before.Id);
  } finally {
    await daemon.stop('SIGKILL');
    await cleanup(s);
  }
});

test('invalid, then fixed: the located error in the status, the model keeps serving; the fix clears it', async (t) => {
  const s = await serving('cfg-invalid');
  try {
    const mark = s.daemon.mark;
    await writeFile(s.configFile, `${edited(s, () => undefined)}health:\n  liveness:\n    perod: 2s\n`);
    const st = await s.daemon.waitFor((x) => x.msg.startsWith('status: config invalid: '), 5_000, mark);
    t.regex(st.msg, new RegExp(`^status: config invalid: ${s.configFile.replace(/[.]/g, '\\.')}:\\d+:\\d+: `));
    t.regex(st.msg, /; serving gpt-oss-120b/);
    const rejected = s.daemon.events('config-rejected', mark);
    t.true(rejected.length >= 1);
    t.true(rejected.every((r) => r.level === 50));
    await writeFile(s.configFile, edited(s, livenessPeriod('600ms')));
    await s.daemon.waitFor((x) => x.msg.startsWith('status: serving'), 5_000, s.daemon.after(st));
    t.is((await brief(s.name)).StartedAt, s.before.StartedAt);
  } finally {
    await cleanup(s);
  }
});

test('a burst of 20 saves within a second -> one reload, one recreate', async (t) => {
  const s = await serving('cfg-burst');
  try {
    const mark = s.daemon.mark;
    for (let i = 0; i < 20; i++) {
      await writeFile(s.configFile, edited(s, maxModelLen(i % 2 ? 16384 : 8192 + i)));
      await sleep(40);
    }
    const started = await s.daemon.waitFor((x) => x.event === 'container-started', 10_000, mark);
    await s.daemon.waitState('serving', 30_000, s.daemon.after(started));
    // The reload applied the last save's text: any file event still to come finds nothing new to apply.
    t.is(s.daemon.events('config-reloaded', mark).length, 1);
    t.is(s.daemon.events('container-started', mark).length, 1);
    t.regex(s.daemon.events('container-started', mark)[0]?.msg ?? '', /recreated/);
  } finally {
    await cleanup(s);
  }
});
