// The supervisor's memory across its own restarts: state.json in the state directory, written atomically.
import { mkdir, open, rename } from 'node:fs/promises';
import { READ_TIMEOUT_MS, readStateIsolated } from '../reader/isolated.js';
import { join } from 'node:path';
import type { Persisted } from '../core/model/events.js';

export const DEFAULT_STATE_DIR = '/var/lib/gptoss-supervisor';

/** --state-dir, else systemd's $STATE_DIRECTORY (StateDirectory=), else /var/lib/gptoss-supervisor. */
export function resolveStateDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? env['STATE_DIRECTORY']?.split(':')[0] ?? DEFAULT_STATE_DIR;
}

export class StateStore {
  readonly file: string;
  constructor(
    readonly dir: string,
    private readonly readTimeoutMs = READ_TIMEOUT_MS,
  ) {
    this.file = join(dir, 'state.json');
  }

  /**
   * The saved record; undefined when there is none. It is read and checked in full by the reader
   * process; a record that does not fit is set aside (renamed, so it can be looked at) and
   * supervision starts clean. Never fatal.
   */
  async load(): Promise<{ record?: Persisted; problem?: string }> {
    const r = await readStateIsolated(this.file, this.readTimeoutMs);
    if ('absent' in r) return {};
    if ('record' in r) return { record: r.record };
    if ('unreadable' in r)
      return { problem: `cannot read ${this.file} (${r.unreadable}); the restart count starts from zero` };
    const aside = `${this.file}.bad-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    const moved = await rename(this.file, aside).then(
      () => `set aside as ${aside}`,
      (err: Error) => `left in place (${err.message})`,
    );
    return {
      problem: `${this.file} does not hold a state record (${r.problem}); ${moved}; the restart count starts from zero`,
    };
  }

  /** Write to a temporary file, fsync, rename over: a crash leaves the old or the new record, never half. */
  async save(record: Persisted): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(`${JSON.stringify({ ...record, savedAt: new Date().toISOString() }, null, 2)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.file);
    const d = await open(this.dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }
}
