// The supervisor's memory across its own restarts: state.json in the state directory, written atomically.
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Persisted } from '../core/state.js';

export const DEFAULT_STATE_DIR = '/var/lib/gptoss-supervisor';

/** --state-dir, else systemd's $STATE_DIRECTORY (StateDirectory=), else /var/lib/gptoss-supervisor. */
export function resolveStateDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? env['STATE_DIRECTORY']?.split(':')[0] ?? DEFAULT_STATE_DIR;
}

export class StateStore {
  readonly file: string;
  constructor(readonly dir: string) {
    this.file = join(dir, 'state.json');
  }

  /** The saved record; undefined when there is none. A damaged file is reported, not fatal. */
  async load(): Promise<{ record?: Persisted; problem?: string }> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      return { problem: `cannot read ${this.file}: ${(err as Error).message}` };
    }
    try {
      const r = JSON.parse(text) as Partial<Persisted>;
      if (typeof r.restarts !== 'number' || typeof r.totalRestarts !== 'number')
        throw new Error('missing restart counts');
      return { record: r as Persisted };
    } catch (err) {
      return { problem: `ignoring ${this.file} (${(err as Error).message}); the restart count starts from zero` };
    }
  }

  /** Write to a temporary file, fsync, rename over: a crash leaves the old or the new record, never half. */
  async save(record: Persisted): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    const fh = await open(tmp, 'w', 0o644);
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
