import test from 'ava';
import { planReconcile, type Observation, type Outcome } from '../../src/core/rules/plan.js';

const same = { same: true, differences: [], byLabel: true };
const drift = { same: false, differences: ['command differs'], byLabel: false };

const rows: [string, Observation, Outcome, string[]][] = [
  ['absent', { kind: 'absent' }, 'created', ['create', 'start']],
  ['running, same', { kind: 'present', id: 'c', running: true, comparison: same, tokenSame: true }, 'adopted', []],
  [
    'running, same, token changed',
    { kind: 'present', id: 'c', running: true, comparison: same, tokenSame: false },
    'adopted',
    [],
  ],
  [
    'stopped, same',
    { kind: 'present', id: 'c', running: false, comparison: same, tokenSame: true },
    'started',
    ['start c'],
  ],
  [
    'stopped, same, token changed',
    { kind: 'present', id: 'c', running: false, comparison: same, tokenSame: false },
    'recreated',
    ['remove c', 'create', 'start'],
  ],
  [
    'running, drift',
    { kind: 'present', id: 'c', running: true, comparison: drift, tokenSame: true },
    'recreated',
    ['stop c', 'remove c', 'create', 'start'],
  ],
  [
    'stopped, drift',
    { kind: 'present', id: 'c', running: false, comparison: drift, tokenSame: true },
    'recreated',
    ['remove c', 'create', 'start'],
  ],
];
for (const [name, obs, outcome, steps] of rows) {
  test(`plan: ${name}`, (t) => {
    const plan = planReconcile(obs);
    t.is(plan.outcome, outcome);
    t.deepEqual(
      plan.steps.map((s) => ('id' in s && s.id ? `${s.op} ${s.id}` : s.op)),
      steps,
    );
  });
}

test('plan explains drift', (t) => {
  t.is(
    planReconcile({ kind: 'present', id: 'c', running: true, comparison: drift, tokenSame: true }).reason,
    'spec differs: command differs',
  );
});
