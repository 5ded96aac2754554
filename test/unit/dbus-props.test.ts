// The D-Bus properties and `status --json` from the machine's state: values, what changed, no secret.
import test from 'ava';
import { defaultConfig } from '../../src/config/schema.js';
import { changedProps, jsonOf, propsOf, SIGNATURES } from '../../src/dbus/props.js';
import { settingsOf } from '../../src/config/settings.js';
import type { Event } from '../../src/core/events.js';
import { initialState, type State } from '../../src/core/state.js';
import { step } from '../../src/core/step.js';

const ctx = {
  image: 'nvcr.io/nvidia/vllm:25.09-py3',
  servedName: 'gpt-oss-120b',
  endpoint: 'http://127.0.0.1:8000/v1',
  configPath: '/etc/gptoss/config.yaml',
};

function run(events: Event[], now = 1_700_000_000_000): State {
  let s = initialState(now);
  for (const ev of events) s = step(s, ev, { now, random: 0.5, settings: settingsOf(defaultConfig()) }).state;
  return s;
}

test('every documented property has a value of its D-Bus type', (t) => {
  const p = propsOf(run([{ type: 'boot' }]), 'starting vllm-gpt-oss', ctx);
  t.deepEqual(Object.keys(p), Object.keys(SIGNATURES));
  for (const [k, sig] of Object.entries(SIGNATURES)) {
    const v = (p as unknown as Record<string, unknown>)[k];
    const types: Record<string, string> = { s: 'string', t: 'bigint', u: 'number', i: 'number', b: 'boolean' };
    const want = sig.startsWith('(') ? 'object' : types[sig];
    t.is(String(typeof v), want ?? '?', k);
  }
  t.is(p.LastExitCode, -1);
  t.deepEqual(p.LastDeepProbe, [0n, false, '']);
});

test('an exit and its diagnosis show; only what changed is sent', (t) => {
  const s = run([
    { type: 'boot' },
    { type: 'observed', seen: { kind: 'absent' } },
    { type: 'reconciled', id: 'c1', outcome: 'created', reason: '', startedAt: 0 },
    {
      type: 'observed',
      seen: {
        kind: 'exited',
        id: 'c1',
        exit: {
          code: 1,
          oom: false,
          tail: ['torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.'],
        },
      },
    },
  ]);
  const p = propsOf(s, 'backoff: restart 1 in 10s (exit 1, cuda-oom)', ctx);
  t.is(p.State, 'backoff');
  t.is(p.LastExitCode, 1);
  t.is(p.Diagnosis, 'cuda-oom');
  t.regex(p.DiagnosisRemedy, /maxModelLen/);
  t.is(p.RestartCount, 1);
  const q = { ...p, StatusText: 'backoff: restart 1 in 9s (exit 1, cuda-oom)' };
  t.deepEqual(changedProps(p, q), { StatusText: q.StatusText });
  t.deepEqual(changedProps(p, { ...p, LastDeepProbe: [1n, true, 'ok'] }), { LastDeepProbe: [1n, true, 'ok'] });
  t.deepEqual(changedProps(p, { ...p }), {});
  const j = jsonOf(p);
  t.is(j['lastExitCode'], 1);
  t.is(j['servingSince'], null);
  t.is(j['diagnosis'], 'cuda-oom');
});
