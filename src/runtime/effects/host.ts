// The watchers of the host under the model: the memory sampler (the memory guard's eyes) and the GPU
// telemetry. They read and report; the machine decides what a sample means.
import type { Event } from '../../core/model/events.js';
import type { ContainerEngine } from '../../docker/engine-api.js';
import { cgroupCandidates, cgroupOfPid, firstReadable, MemorySampler } from '../../gpu/host-memory.js';
import { queryTelemetry, type ReasonPrefix } from '../../gpu/telemetry.js';

export interface HostWatch {
  stop(): void;
}

/** Runs `look` every `periodMs`, the first at once, until stopped; `closed` runs at the stop. */
function every(periodMs: number, look: () => void, closed: () => void): HostWatch {
  const timer = setInterval(look, periodMs);
  const first = setImmediate(look);
  return {
    stop() {
      closed();
      clearInterval(timer);
      clearImmediate(first);
    },
  };
}

/** Finds the container's cgroup file: the usual layouts first, then through its main process. */
async function cgroupFile(engine: ContainerEngine, id: string): Promise<string | undefined> {
  const known = firstReadable(cgroupCandidates(id));
  if (known) return known;
  const pid = (await engine.inspect(id).catch(() => undefined))?.State.Pid;
  const viaPid = pid ? cgroupOfPid(pid) : undefined;
  return viaPid ? firstReadable([viaPid]) : undefined;
}

/** Samples the host's memory every `periodMs` (the first at once) and dispatches each sample. */
export function memoryWatch(
  sub: { periodMs: number; id: string; epoch: number },
  engine: ContainerEngine,
  dispatch: (ev: Event) => void,
): HostWatch {
  const sampler = new MemorySampler();
  let stopped = false;
  const look = () => {
    const sample = sampler.read();
    if (sample) dispatch({ type: 'memorySampled', epoch: sub.epoch, sample });
  };
  void cgroupFile(engine, sub.id).then((f) => {
    if (f && !stopped) sampler.watchCgroup(f);
  });
  return every(sub.periodMs, look, () => {
    stopped = true;
    sampler.close();
  });
}

/** The names of the throttle reasons the driver takes, learnt once for the daemon's life. */
const names: { prefix: ReasonPrefix } = { prefix: 'clocks_event_reasons' };

/** Asks nvidia-smi every `periodMs` (the first at once); one call at a time. */
export function telemetryWatch(
  sub: { periodMs: number; epoch: number },
  bin: () => string,
  dispatch: (ev: Event) => void,
): HostWatch {
  let busy = false;
  let stopped = false;
  const look = () => {
    if (busy || stopped) return;
    busy = true;
    void queryTelemetry(bin(), names, Math.min(10_000, sub.periodMs)).then((a) => {
      busy = false;
      if (stopped) return;
      dispatch({
        type: 'gpuSampled',
        epoch: sub.epoch,
        gpus: 'gpus' in a ? a.gpus : [],
        ...('error' in a ? { error: a.error } : {}),
      });
    });
  };
  return every(sub.periodMs, look, () => (stopped = true));
}
