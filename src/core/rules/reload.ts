// Whether a re-read config is a reload: the rules for watched saves, deleted files and token edits.

/** What was last applied: a watched save that changes none of it is no reload. */
export interface Applied {
  text: string;
  /** The token's value; compared here, never shown. */
  token: string | undefined;
  tokenFile: string;
}

export type Reread =
  | { ok: true; text: string; token: string | undefined; tokenFile: string }
  /** `missing`: the file is not there (deleted, or between an editor's delete and create). */
  | { ok: false; missing: boolean };

export type Verdict =
  /** Deleted: keep the last good config; `say` once per disappearance. */
  | { kind: 'keep'; say: boolean }
  /** A watched save that changed nothing. */
  | { kind: 'same' }
  | { kind: 'reject' }
  /** `onlyToken`: the config text is the same, only the HF token changed. */
  | { kind: 'apply'; onlyToken: boolean };

/**
 * `why`: 'signal' (SIGHUP, systemctl reload, D-Bus Reload()) always reloads what is there;
 * 'watch' (a file event) only on a real change, and a deleted file keeps the last good config.
 */
export function judgeReload(why: 'signal' | 'watch', r: Reread, applied: Applied, missingSaid: boolean): Verdict {
  if (!r.ok && r.missing && why === 'watch') return { kind: 'keep', say: !missingSaid };
  if (!r.ok) return { kind: 'reject' };
  if (why === 'watch' && r.text === applied.text && r.token === applied.token) return { kind: 'same' };
  return { kind: 'apply', onlyToken: r.text === applied.text && r.token !== applied.token };
}
