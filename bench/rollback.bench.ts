// What a change that cannot serve costs, with rollback and without, side by side in one run: from the
// edit to spec A serving again (with rollback), against the same window without it (still down, the
// failed starts counted). The scenario's quick restart policy (200 ms doubling to 2 s), the stand-in
// loading in 2 s; two causes: the KV cache refusing maxModelLen (back at once) and an image that
// exits 1 with nothing recognisable (back after rollback.after = 2 failed starts).
//   npm run bench   (BENCH_ROLLBACK_WINDOW_MS=45000 by default)
import { writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import { derivedImage, docker } from '../test/helpers/docker.js';
import { cleanup, setup, type Setup } from '../test/helpers/scenario.js';
import { printTable, type Row } from './report.js';

const WINDOW_MS = Number(process.env['BENCH_ROLLBACK_WINDOW_MS'] ?? 45_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Outcome {
  /** From the edit to A serving again; undefined: not serving at the window's end. */
  recoverMs?: number;
  /** Starts of the new spec (each failed). */
  failedStarts: number;
}

type Cause = { name: string; image?: string; edit: (raw: Record<string, Record<string, unknown>>) => void };

async function trial(cause: Cause, enabled: boolean): Promise<Outcome> {
  const s: Setup = await setup(`bench-rb-${enabled ? 'on' : 'off'}`, {
    container: { env: { STANDIN_LOAD_SECONDS: '2', STANDIN_KV_MAX_LEN: '40000' } },
    model: { maxModelLen: 32768 },
    rollback: { enabled, canaryWindow: '2s' },
  });
  try {
    if (enabled) await s.daemon.waitFor((r) => /it is the last known good/.test(r.msg), 60_000, 0, 'A proven');
    else {
      await s.daemon.waitState('serving', 60_000);
      await sleep(2500); // the same time serving as A's canary window, for a like-for-like start
    }
    const mark = s.daemon.mark;
    cause.edit(s.raw as Record<string, Record<string, unknown>>);
    const t0 = Date.now();
    await writeFile(s.configFile, stringify(s.raw));
    let recoverMs: number | undefined;
    try {
      const back = await s.daemon.waitFor(
        (r) => r.msg.startsWith('status: serving') && /rolled back/.test(r.msg),
        WINDOW_MS,
        mark,
        'A serving again',
      );
      recoverMs = Date.parse(String(back['time'])) - t0;
    } catch {
      recoverMs = undefined;
    }
    // The new spec's starts: every start after the edit, before the rollback (if any) brought A back.
    const after = s.daemon.records.slice(mark);
    const back = after.findIndex((r) => r.event === 'rollback');
    const failedStarts = (back < 0 ? after : after.slice(0, back)).filter(
      (r) => r.event === 'container-started',
    ).length;
    return { ...(recoverMs === undefined ? {} : { recoverMs }), failedStarts };
  } finally {
    await cleanup(s);
  }
}

const bad = `gptoss-standin:bench-exit-${process.pid}`;
await derivedImage(bad, { STANDIN_FAIL: 'exit:1' });
const causes: Cause[] = [
  { name: 'maxModelLen over the KV cache (kv-cache)', edit: (c) => void (c['model']!['maxModelLen'] = 65536) },
  { name: 'an image that exits 1 (unknown)', edit: (c) => void (c['container']!['image'] = bad) },
];
const rows: Row[] = [];
try {
  for (const c of causes) {
    const on = await trial(c, true);
    const off = await trial(c, false);
    const down = (o: Outcome) =>
      o.recoverMs === undefined ? `still down after ${WINDOW_MS / 1000} s` : `${(o.recoverMs / 1000).toFixed(1)} s`;
    rows.push([
      `${c.name}: edit -> serving again, rollback on / off`,
      `${down(on)} / ${down(off)}`,
      'stand-in load 2 s',
    ]);
    rows.push([
      `${c.name}: failed starts, on / off`,
      `${on.failedStarts} / ${off.failedStarts}`,
      `off: in ${WINDOW_MS / 1000} s`,
    ]);
  }
} finally {
  await docker(['rmi', '-f', bad]).catch(() => undefined);
}
printTable(rows);
