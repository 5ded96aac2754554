// What a handler is: (state, event, input) -> (state, actions), and the two ways every handler ends.
import type { Action, Event, Level, LogEvent } from '../model/events.js';
import type { Settings } from '../model/settings.js';
import type { State } from '../model/state.js';

export interface Input {
  now: number;
  /** A sample in [0, 1) for jitter. */
  random: number;
  settings: Settings;
}

export interface Step {
  state: State;
  actions: Action[];
}

export type Handler<E extends Event> = (s: State, ev: E, inp: Input) => Step;

export const log = (level: Level, event: LogEvent, msg: string, fields?: Record<string, unknown>): Action =>
  fields ? { type: 'log', level, event, msg, fields } : { type: 'log', level, event, msg };

export const still = (s: State): Step => ({ state: s, actions: [] });

/** Exit status after a handover (EX_TEMPFAIL); the unit restarts the service on it (RestartForceExitStatus=). */
export const HANDOVER_EXIT = 75;
