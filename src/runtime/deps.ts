// What the shell is given: the engine, the config, the log, the state file, and who hears what it does.
import type { RequestRecord } from '../core/model/door.js';
import type { Event } from '../core/model/events.js';
import type { State } from '../core/model/state.js';
import type { Desired } from '../desired/desired.js';
import type { ContainerEngine } from '../docker/engine-api.js';
import type { Logger } from '../log/logger.js';
import type { StateStore } from '../state/store.js';
import type { Prober } from './effects/probe.js';

export interface SupervisorDeps {
  engine: ContainerEngine;
  desired: Desired;
  log: Logger;
  store: StateStore | undefined;
  /** Told the status line whenever it changes (sd_notify). */
  onStatus?: (line: string, state: State) => void;
  /** Told every event with the state before and after it (metrics, alerts). */
  onEvent?: (ev: Event, before: State, after: State) => void;
  /** Told the state after every event and every second (D-Bus properties), with the status line and the time. */
  onState?: (state: State, line: string, now: number) => void;
  now?: () => number;
  random?: () => number;
  /** docker.service's state from systemd (D-Bus), to say why the engine went away. */
  dockerUnitState?: () => Promise<string | undefined>;
  /** The probes; tests without a model answer them. */
  probe?: Prober;
  /** Follow the running container's log (engine death, warnings, stats); tests without Docker turn it off. */
  followLogs?: boolean;
  /** The gate's control socket under systemd (gptoss-gate.service); undefined: the gate is a child process. */
  gateControl?: string;
  /** What clients experienced at the gate (metrics, success rate, time to first token). */
  onDoorRecords?: (records: RequestRecord[]) => void;
}
