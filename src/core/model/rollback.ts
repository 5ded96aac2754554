// Rollback's vocabulary: the specs that served (last known good), the spec on trial since a config
// change, and a rollback in force. A leaf: it imports nothing.

/**
 * What a container spec was made from, in a form safe to keep: the config's model, container and
 * paths sections, secret values left out (the shell fills them from the config in force). Opaque
 * to the core: the shell builds it and reads it back (src/desired/rollback.ts).
 */
export type SpecSource = { readonly [key: string]: unknown };

/** The spec a run was started with: what a rollback would bring back. */
export interface RanSpec {
  /** The spec's hash (the container's label). */
  hash: string;
  /** The image as the config named it (a tag). */
  image: string;
  /** The image the container runs (its ID, `sha256:...`): a tag moved since does not change it. */
  imageId: string;
  /** The registry's digest of that image (`repo@sha256:...`), when it was pulled: it can be pulled again. */
  digest?: string;
  source: SpecSource;
  /** A rollback's run: the hash of the good spec it brings back. */
  restores?: string;
}

/** A spec that served through its canary window: one a rollback may go back to. */
export interface GoodSpec extends Omit<RanSpec, 'restores'> {
  /** When it first served (this stretch), and when it passed its canary window. */
  servedAt: number;
  provenAt: number;
  /** How its last run ended (a failure, replaced by another spec); absent while it serves. */
  ended?: { at: number; how: string };
}

/** A new spec since a config change, not yet proven: its failures may send the model back. */
export interface Trial {
  spec: string;
  /** Failed starts of it so far (of the kinds that are not at once a reason to go back). */
  failures: number;
  /** An operator's explicit restart ran it: they are watching; no rollback of their own act. */
  operator?: boolean;
}

/** A rollback in force: the config asks for `from`, the model runs `to`, until the config changes. */
export interface Rollback {
  /** The refused spec (the config's hash). */
  from: string;
  /** The good spec brought back. */
  to: string;
  /** Why: the failed spec's diagnosis, in a few words. */
  because: string;
  /** Its diagnosis code (`DIAGNOSIS=`): `kv-cache`, `unknown`, `requested` (an operator's rollback). */
  code: string;
  at: number;
  /** The good spec failed too: what it said. */
  failedToo?: string;
}

/** How many good specs are kept, newest first. */
export const GOOD_KEPT = 5;

/** The image a rollback runs: by registry digest, or by ID for an image built on this host. */
export const goodImage = (g: Pick<GoodSpec, 'digest' | 'imageId'>): string => g.digest ?? g.imageId;
