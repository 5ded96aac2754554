// The tiktoken files: watched, looked at (hashes kept for files that did not change), reported as events.
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { checkEncodings, type EncodingFact } from '../../core/rules/checks.js';
import type { Event } from '../../core/model/events.js';
import { ENCODINGS } from '../../encodings/known.js';
import { encodingsFingerprint } from '../../preflight/gather.js';
import { encodingFacts } from '../../preflight/facts.js';
import { FileWatcher } from '../../watch/watch.js';

/**
 * Hashes of files that did not change since they were hashed (same inode, size, mtime and
 * ctime): a restart does not read 5 MB again to learn what it knew. A watched change forgets all.
 */
export class EncodingsCache {
  private known = new Map<string, { key: string; sha: string }>();

  private hash = async (path: string, st: Stats, read: () => Promise<string | undefined>) => {
    const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
    const hit = this.known.get(path);
    if (hit?.key === key) return hit.sha;
    const sha = await read();
    if (sha) this.known.set(path, { key, sha });
    else this.known.delete(path);
    return sha;
  };

  facts(dir: string, verify: boolean): Promise<EncodingFact[]> {
    return encodingFacts(dir, verify, this.hash);
  }

  forget(): void {
    this.known.clear();
  }
}

/** The files as they are now, as the event the state machine decides on. */
export async function lookAtEncodings(cache: EncodingsCache, dir: string, verify: boolean): Promise<Event> {
  const files = await cache.facts(dir, verify);
  const r = checkEncodings({ dir, verify, files });
  const fingerprint = encodingsFingerprint(files);
  const sizes = files.map((f) => f.size ?? -1);
  return {
    type: 'encodingsChanged',
    ok: r.status === 'pass',
    detail: r.detail,
    sizes,
    ...(fingerprint ? { fingerprint } : {}),
  };
}

/** Follows the tiktoken files in `dir`: appearing, replaced, removed. */
export function watchEncodings(dir: string, onChange: () => void, onError: (msg: string) => void): FileWatcher {
  return new FileWatcher({ files: ENCODINGS.map((e) => join(dir, e.file)), debounceMs: 200, onChange, onError });
}
