// Exit codes, one meaning each, shared by every command.

export const EXIT = {
  /** Done, and nothing needed changing (ensure: the container was already right). */
  ok: 0,
  /** The config is invalid or unreadable. */
  config: 1,
  /** ensure: the container was created, started or recreated. */
  changed: 2,
  /** The Docker engine does not answer. */
  engine: 3,
  /** The image is not on this host. */
  image: 4,
  /** Docker refused an operation, or another failure the message explains. */
  failed: 5,
  /** A prerequisite check failed (doctor; ensure before a start): the message says which and the fix. */
  prereq: 6,
  /** Bad command line (EX_USAGE). */
  usage: 64,
  /** A bug: the message carries what a report needs (EX_SOFTWARE). */
  software: 70,
} as const;

export class UsageError extends Error {
  override name = 'UsageError';
}
