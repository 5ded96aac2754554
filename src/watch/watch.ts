// Watches files through their folders, debounced: editors replace files (rename, delete+create), folders stay.
import { realpath } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import chokidar, { type FSWatcher } from 'chokidar';

export interface WatchOptions {
  /** Absolute paths of the files that matter; a symlink's target is watched as well. */
  files: readonly string[];
  /** Quiet time before `onChange` runs: a burst of saves becomes one call. */
  debounceMs: number;
  onChange(changed: ReadonlySet<string>): void;
  onError?(message: string): void;
}

/**
 * One chokidar watcher on the folders of the files (and of their symlink targets, and the
 * folders' parents, so a folder that appears or goes is seen). When a folder comes or goes, or a
 * symlink is pointed elsewhere, the watcher is built again: chokidar does not follow a folder that
 * was removed and made again.
 */
export class FileWatcher {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pending = new Set<string>();
  private interesting = new Set<string>();
  private folders = new Set<string>();
  /** Each watched file's resolved path (itself when not a symlink). */
  private resolved = new Map<string, string>();
  private stopped = false;
  private arming: Promise<void> = Promise.resolve();

  constructor(private readonly opts: WatchOptions) {}

  start(): Promise<void> {
    this.arming = this.arming.then(() => this.arm());
    return this.arming;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.arming;
    await this.watcher?.close();
    this.watcher = undefined;
  }

  private async arm(): Promise<void> {
    if (this.stopped) return;
    await this.watcher?.close();
    const files = new Set<string>();
    const resolved = new Map<string, string>();
    for (const f of this.opts.files) {
      const abs = resolve(f);
      files.add(abs);
      const real = (await realpath(abs).catch(() => undefined)) ?? abs;
      resolved.set(abs, real);
      files.add(real);
    }
    this.resolved = resolved;
    const folders = new Set([...files].map((f) => dirname(f)));
    const watched = new Set<string>(folders);
    for (const d of folders) watched.add(dirname(d));
    this.interesting = files;
    this.folders = folders;
    const w = chokidar.watch([...watched], { ignoreInitial: true, depth: 0, followSymlinks: false, persistent: true });
    w.on('all', (event, path) => this.seen(event, resolve(path)));
    // chokidar drops events: a second event on a file within 5 ms of the first is thrown away, and a
    // change that leaves the mtime alone (chmod) is not one. So a chmod then a write can go unseen.
    // The raw fs.watch events are never dropped: any of them on one of our files counts.
    w.on('raw', (_event, evPath, details) => this.rawSeen(evPath, (details as { watchedPath?: string }).watchedPath));
    w.on('error', (err) => this.opts.onError?.(`watching ${[...folders].join(', ')}: ${(err as Error).message}`));
    this.watcher = w;
    await new Promise<void>((r) => w.once('ready', () => r()));
  }

  private seen(event: string, path: string): void {
    if (this.stopped) return;
    const folderEvent = this.folders.has(path) && (event === 'addDir' || event === 'unlinkDir');
    if (!this.interesting.has(path) && !folderEvent) return;
    this.pending.add(path);
    this.debounce();
    // A folder that came or went, or one of our paths that resolves elsewhere now (a symlink made
    // or re-pointed): watch afresh, then look once more, for what the gap may have hidden.
    if (folderEvent) void this.rearm();
    else if (this.resolved.has(path)) void this.rearmIfMoved(path);
  }

  private rawSeen(evPath: unknown, watchedPath: string | undefined): void {
    if (this.stopped || !watchedPath) return;
    // A folder's watcher names the entry; a file's own watcher names the file (watchedPath).
    const path = typeof evPath === 'string' && evPath ? resolve(watchedPath, evPath) : resolve(watchedPath);
    const hit = this.interesting.has(path)
      ? path
      : this.interesting.has(resolve(watchedPath))
        ? resolve(watchedPath)
        : '';
    if (!hit) return;
    this.pending.add(hit);
    this.debounce();
  }

  private rearm(): Promise<void> {
    return this.start().then(() => this.debounce());
  }

  private async rearmIfMoved(path: string): Promise<void> {
    const real = (await realpath(path).catch(() => undefined)) ?? path;
    if (real !== this.resolved.get(path)) await this.rearm();
  }

  private debounce(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fire(), this.opts.debounceMs);
  }

  private fire(): void {
    if (this.stopped) return;
    const changed = this.pending;
    this.pending = new Set();
    this.opts.onChange(changed);
  }
}
