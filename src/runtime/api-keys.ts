// gate.apiKeyFile: the keys a request must carry, read by the supervisor (root) and given to the gate
// as SHA-256 hashes only. Watched: an edit applies at once. A file others can read is not used.
import { createHash } from 'node:crypto';
import { readCapped } from '../util/read-capped.js';
import { FileWatcher } from '../watch/watch.js';

/** Hundreds of keys at most; a file much larger is not a key list. */
const MAX_BYTES = 256 * 1024;
/** Matches no key: a key file that cannot be used lets nothing through (never everything). */
export const NO_KEY = ['0'.repeat(64)];

export type KeyList = { hashes: string[] } | { error: string };

/** One key a line; blank lines and `#` comments are skipped. */
export async function readKeys(file: string): Promise<KeyList> {
  const r = await readCapped(file, MAX_BYTES);
  if (!r.ok) return { error: `gate.apiKeyFile ${file} cannot be read (${r.why})` };
  if ((r.mode & 0o077) !== 0)
    return {
      error:
        `gate.apiKeyFile ${file} may be read by other users (mode ${(r.mode & 0o777).toString(8)}): ` +
        `chmod 600 ${file}; until then every request is refused`,
    };
  const keys = r.data
    .toString('utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  if (keys.length === 0)
    return { error: `gate.apiKeyFile ${file} holds no key; until one is there every request is refused` };
  return { hashes: keys.map((k) => createHash('sha256').update(k).digest('hex')) };
}

/** The key list, kept current: read at start and after every change of the file. */
export class ApiKeys {
  hashes: string[] = NO_KEY;
  private watcher: FileWatcher | undefined;
  private said = '';

  constructor(
    private readonly file: string,
    private readonly changed: () => void,
    private readonly warn: (level: 'info' | 'error', msg: string) => void,
  ) {}

  start(): Promise<void> {
    this.watcher = new FileWatcher({
      files: [this.file],
      debounceMs: 200,
      onChange: () => void this.load(),
      onError: (msg) => this.warn('error', msg),
    });
    return Promise.all([this.load(), this.watcher.start()]).then(() => undefined);
  }

  async stop(): Promise<void> {
    await this.watcher?.stop();
  }

  private async load(): Promise<void> {
    const r = await readKeys(this.file);
    this.hashes = 'hashes' in r ? r.hashes : NO_KEY;
    const say = 'error' in r ? r.error : `gate: ${r.hashes.length} API key(s) from ${this.file}`;
    if (say !== this.said) this.warn('error' in r ? 'error' : 'info', say);
    this.said = say;
    this.changed();
  }
}
