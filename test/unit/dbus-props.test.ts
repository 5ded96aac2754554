// The D-Bus properties and `status --json` from the machine's state: values, what changed, no secret.
import test from 'ava';
import { defaultConfig } from '../../src/config/schema.js';
import { changedProps, jsonOf, propsOf, SIGNATURES } from '../../src/dbus/props.js';
import { settingsOf } from '../../src/desired/settings.js';
import { step } from '../../src/core/machine/step.js';
import { Driver } from '../helpers/driver.js';

const ctx = {
  image: 'nvcr.io/nvidia/vllm:25.09-py3',
  servedName: 'gpt-oss-120b',
  endpoint: 'http://127.0.0.1:8000/v1',
  specHash: 'spec-a1b2c3',
  configPath: '/etc/gptoss/config.yaml',
};

const T0 = 1_700_000_000_000;
/** The machine with the default settings, its clock started at a real time. */
const driver = (start = T0) => new Driver(settingsOf(defaultConfig()), start);

/** The properties README's D-Bus table documents, with their types, in its order. */
const DOCUMENTED: Array<[string, string]> = [
  ['State', 's'],
  ['StatusText', 's'],
  ['StateSince', 't'],
  ['WaitingFor', 's'],
  ['ContainerId', 's'],
  ['Image', 's'],
  ['ServedModel', 's'],
  ['Endpoint', 's'],
  ['RestartCount', 'u'],
  ['TotalRestarts', 'u'],
  ['LastExitCode', 'i'],
  ['LastExitOomKilled', 'b'],
  ['Diagnosis', 's'],
  ['DiagnosisSummary', 's'],
  ['DiagnosisRemedy', 's'],
  ['ServingSince', 't'],
  ['ConfigPath', 's'],
  ['ConfigError', 's'],
  ['LastDeepProbe', '(tbs)'],
  ['EngineLoad', '(tuudd)'],
  ['LoadPhase', 's'],
  ['LoadPhaseSince', 't'],
  ['LoadProgress', 's'],
  ['LoadEta', 't'],
  ['LastLoadDuration', 't'],
  ['LastLoadPhases', 'a{st}'],
  ['Gate', 's'],
  ['RequestsHeld', 'u'],
  ['RequestsInFlight', 'u'],
  ['RequestSuccessRate', 'd'],
  ['TimeToFirstTokenP95', 'd'],
  ['RolledBackFrom', 's'],
  ['RolledBackTo', 's'],
  ['RolledBackBecause', 's'],
  ['RolledBackAt', 't'],
  ['KnownGood', 'a(ssssttts)'],
  ['GpuTelemetry', '(ta(uddddas))'],
  ['GpuThrottledSince', 't'],
  ['DecodeSpeed', '(dd)'],
  ['Exposure', 's'],
];

test('every documented property has a value of its D-Bus type', (t) => {
  const d = driver();
  d.send({ type: 'boot' });
  const p = propsOf(d.state, 'starting vllm-gpt-oss', ctx);
  t.deepEqual(Object.entries(SIGNATURES), DOCUMENTED, 'the signatures introspection lists');
  t.deepEqual(
    Object.keys(p),
    DOCUMENTED.map(([k]) => k),
  );
  for (const [k, sig] of DOCUMENTED) {
    const v = (p as unknown as Record<string, unknown>)[k];
    const types: Record<string, string> = {
      s: 'string',
      t: 'bigint',
      u: 'number',
      i: 'number',
      b: 'boolean',
      d: 'number',
    };
    const want = sig.startsWith('(') || sig.startsWith('a') ? 'object' : types[sig];
    t.is(String(typeof v), want ?? '?', k);
  }
  t.is(p.LastExitCode, -1);
  t.deepEqual(p.LastDeepProbe, [0n, false, '']);
});

test('an exit and its diagnosis show; only what changed is sent', (t) => {
  const d = driver().booted('c1');
  d.send({
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
  });
  const s = d.state;
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

test('a load shows its phase, progress and ETA; the last load its phases; status --json carries them', (t) => {
  const t0 = 1_700_000_000_000;
  const inp = (now: number) => ({ now, random: 0.5, settings: settingsOf(defaultConfig()) });
  let s = driver(t0).booted('c1').state;
  s = {
    ...s,
    history: {
      ...s.history,
      lastLoad: { spec: ctx.specHash, took: 460_000, phases: { weights: 57_000, compile: 48_000 }, at: t0 - 1 },
    },
  };
  const line = 'Loading safetensors checkpoint shards:  46% Completed | 7/15 [00:26<00:30,  1.9s/it]';
  s = step(
    s,
    { type: 'loadLine', epoch: s.epoch, phase: 'weights', line, progress: { done: 7, total: 15 } },
    inp(t0 + 30_000),
  ).state;
  const p = propsOf(s, 'loading', ctx, t0 + 40_000);
  t.is(p.LoadPhase, 'weights');
  t.is(p.LoadProgress, '7/15');
  t.is(p.LoadPhaseSince, 1_700_000_030_000_000n);
  t.is(p.LoadEta, 1_700_000_460_000_000n, 'started + the last load of this spec');
  t.deepEqual(p.LastLoadPhases, { weights: 57_000_000n, compile: 48_000_000n });
  const j = jsonOf(p);
  t.deepEqual(j['load'], {
    phase: 'weights',
    since: '2023-11-14T22:13:50.000Z',
    progress: '7/15',
    eta: '2023-11-14T22:21:00.000Z',
  });
  t.deepEqual(j['lastLoad'], { seconds: 460, phases: { weights: 57, compile: 48 } });
  const other = propsOf(s, 'loading', { ...ctx, specHash: 'spec-d4e5f6' }, t0 + 40_000);
  t.is(other.LoadEta, 0n, 'no ETA from a load of another spec');
});
