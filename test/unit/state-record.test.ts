// The state record the machine writes is the one the next supervisor reads back: written by the
// store, read and checked in the reader process, equal in full.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { Action } from '../../src/core/model/events.js';
import { StateStore } from '../../src/state/store.js';
import { Driver, MIN } from '../helpers/driver.js';

const persisted = (a: Action[]) => a.filter((x): x is Extract<Action, { type: 'persist' }> => x.type === 'persist');

test('a record with a load that skipped phases (no download) is read back whole', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gptoss-state-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // A real clock: the record's times are checked to be times.
  const T0 = 1_790_000_000_000;
  const d = new Driver().at(T0).booted('c1');
  d.at(T0 + 2 * MIN).line('Loading safetensors checkpoint shards:  50% Completed | 7/15 [00:01<00:01]');
  d.at(T0 + 4 * MIN).line('init engine (profile, create kv cache, warmup model) took 115.58 seconds');
  d.at(T0 + 5 * MIN).serving();
  const last = persisted(d.actions).at(-1)?.record;
  t.truthy(last?.lastLoad, 'a served load is kept');
  t.is(last?.lastLoad?.phases.download, undefined, 'no download phase in this load');
  const store = new StateStore(dir);
  await store.save(last!);
  const back = await store.load();
  t.is(back.problem, undefined);
  t.deepEqual(back.record, last);
});
