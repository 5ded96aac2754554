// What the gate (the model's front door) is told by the supervisor, and what it tells back.

/** Where the model answers: the container's published address (loopback, behind the gate). */
export interface Upstream {
  host: string;
  port: number;
}

/** Why the door is closed, for clients (the `code` of an OpenAI-shaped error). */
export type ClosedCode = 'model_loading' | 'model_restarting' | 'model_unavailable' | 'model_stopped';

/** The door's orders, from the machine's state: forward, or hold (and how long it may be). */
export interface DoorView {
  /** Forward requests now. */
  open: boolean;
  /** The run behind the door (its container and start); a new run is a new upstream. */
  run?: string;
  upstream?: Upstream;
  /**
   * Closed: whether a request may wait for the model (it is starting, loading or restarting by itself);
   * false when only an operator can make it serve (waiting, failed, stopped): answered at once.
   */
  holdable: boolean;
  /** When the model should serve (ms since the epoch), where the state can tell. */
  eta?: number;
  /** Why it is closed, in words for the client: `gpt-oss-120b is loading: compiling (torch.compile)`. */
  message: string;
  code: ClosedCode;
  holdTimeout: number;
  maxHeld: number;
  drainTimeout: number;
  maxBodySize: number;
  /** SHA-256 (hex) of each API key a request must carry (gate.apiKeyFile); empty: none asked for. */
  keys: string[];
}

/** What the gate reports about itself: requests it holds and forwards, and whether it listens. */
export interface DoorReport {
  held: number;
  inFlight: number;
  listening: boolean;
  /** Why it does not listen (the port is taken, by whom). */
  why?: string;
}

/** How a request ended, as the client saw it. */
export type RequestOutcome = 'ok' | 'client_error' | 'engine_error' | 'held_timeout' | 'refused' | 'replayed' | 'cut';

export const REQUEST_OUTCOMES: readonly RequestOutcome[] = [
  'ok',
  'client_error',
  'engine_error',
  'held_timeout',
  'refused',
  'replayed',
  'cut',
];

/** One request through the gate, once it ended. */
export interface RequestRecord {
  outcome: RequestOutcome;
  /** From arrival to the end of the answer, ms. */
  ms: number;
  /** From arrival to the answer's first byte, ms (none when no answer came). */
  ttftMs?: number;
  /** When it ended (ms since the epoch). */
  at: number;
}
