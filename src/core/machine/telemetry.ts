// The GPU while the model serves: clocks, temperature, power and the throttle reasons, one nvidia-smi
// answer each gpu.telemetryPeriod; a throttle is said when it begins and when it ends.
import type { EventOf } from '../model/events.js';
import type { GpuWatch } from '../model/host.js';
import { isRunning } from '../model/state.js';
import { formatDuration as fmt } from '../rules/duration.js';
import { gpusOf, throttleText } from '../rules/telemetry.js';
import { log, still, type Handler } from './handler.js';
import type { Action } from '../model/events.js';

export const gpuSampled: Handler<EventOf<'gpuSampled'>> = (s, ev, inp) => {
  if (ev.epoch !== s.epoch || !isRunning(s)) return still(s);
  const { now, settings: t } = inp;
  const prev = s.run.gpu;
  // A failed look keeps the last figures (and a throttle under way), and says why once.
  const gpus = ev.error ? (prev?.gpus ?? []) : gpusOf(ev.gpus, t.gpus);
  const throttled = gpus.some((g) => g.reasons.length > 0);
  const since = throttled ? (prev?.throttledSince ?? now) : undefined;
  const watch: GpuWatch = {
    at: ev.error ? (prev?.at ?? now) : now,
    gpus,
    ...(ev.error ? { error: ev.error } : {}),
    ...(since === undefined ? {} : { throttledSince: since }),
  };
  const actions: Action[] = [];
  if (ev.error && ev.error !== prev?.error)
    actions.push(log('warn', 'gpu-telemetry', `GPU telemetry: nvidia-smi did not answer: ${ev.error}`));
  const text = throttleText(watch);
  if (text && prev?.throttledSince === undefined)
    actions.push(log('warn', 'gpu-telemetry', text, { reasons: gpus.flatMap((g) => g.reasons) }));
  if (!throttled && prev?.throttledSince !== undefined && !ev.error)
    actions.push(log('info', 'gpu-telemetry', `GPU no longer throttled (after ${fmt(now - prev.throttledSince)})`));
  return { state: { ...s, run: { ...s.run, gpu: watch } }, actions };
};
