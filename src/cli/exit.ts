// Exit codes: one table for every command, one meaning per code (the README lists it).
import { HANDOVER_EXIT } from '../core/machine/handler.js';

export const EXIT = {
  /** Done, and nothing needed changing (ensure: already right; status: serving). */
  ok: 0,
  /** The config is invalid or unreadable. */
  config: 1,
  /** ensure: the container was created, started or recreated. */
  changed: 2,
  /** status: the daemon answers, and the model is not serving (as `systemctl is-active`'s 3). */
  notServing: 3,
  /** status, restart, reload: no daemon answers on the bus (LSB's "status unknown"). */
  noDaemon: 4,
  /** Refused or failed: Docker refused an operation, a download failed, the daemon refused a call. */
  failed: 5,
  /** A prerequisite check failed (doctor; ensure before a start): the message says which and the fix. */
  prereq: 6,
  /** The Docker engine does not answer. */
  engine: 7,
  /** The image is not on this host. */
  image: 8,
  /** Bad command line (EX_USAGE). */
  usage: 64,
  /** A bug: the message carries what a report needs (EX_SOFTWARE). */
  software: 70,
  /** run: handed over on SIGUSR2, the container left running for the next supervisor (EX_TEMPFAIL). */
  handover: HANDOVER_EXIT,
  /** run: a second SIGINT, exiting at once (128 + SIGINT). */
  interrupted: 130,
} as const;

export class UsageError extends Error {
  override name = 'UsageError';
}
