// The desired config: loaded, its token resolved, watched (the file and the token file), reloads judged.
import { readConfigIsolated } from '../reader/isolated.js';
import { formatProblem } from '../config/problem.js';
import type { Config } from '../config/schema.js';
import { resolveToken, type Token } from '../config/token.js';
import { desiredOf, secretsOf, type Desired } from '../desired/desired.js';
import { judgeReload, type Applied, type Reread } from '../core/rules/reload.js';
import type { Logger } from '../log/logger.js';
import { FileWatcher } from '../watch/watch.js';

/** A reload to apply: a new desired config (`what` names a token-only change), or a located error. */
export type Change = { desired: Desired; what?: string } | { error: string };

/** A burst of saves (an editor, a config tool) becomes one reload after this much quiet. */
const DEBOUNCE_MS = 300;

export interface DesiredOptions {
  file: string;
  text: string;
  config: Config;
  token: Token | undefined;
  log: Logger;
  /** Applies a change; resolves once it is in effect. */
  apply(change: Change): Promise<void>;
}

export class DesiredConfig {
  current: Desired;
  private applied: Applied;
  private missingSaid = false;
  private watcher: FileWatcher | undefined;
  private watchedToken = '';
  private stopped = false;

  constructor(private readonly o: DesiredOptions) {
    this.current = desiredOf(o.config, o.file, o.token);
    this.applied = { text: o.text, token: o.token?.value, tokenFile: o.config.hfToken.file };
    for (const s of secretsOf(o.config, o.token)) o.log.secret(s);
  }

  /** The config file (and a symlink's target), and the token file: edits apply by themselves. */
  async start(): Promise<void> {
    await this.watch();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.watcher?.stop();
  }

  /** `why`: 'signal' (SIGHUP, systemctl reload, D-Bus Reload()) always reloads; 'watch' only on a real change. */
  async reload(why: 'signal' | 'watch'): Promise<void> {
    if (this.stopped) return;
    const { file, log } = this.o;
    const res = await readConfigIsolated(file);
    const token = res.ok ? await resolveToken(res.config.hfToken) : undefined;
    const missing = !res.ok && res.problems.length === 1 && /no such file/.test(res.problems[0]?.message ?? '');
    const reread: Reread = res.ok
      ? { ok: true, text: res.text, token: token?.value, tokenFile: res.config.hfToken.file }
      : { ok: false, missing };
    const verdict = judgeReload(why, reread, this.applied, this.missingSaid);
    this.missingSaid = verdict.kind === 'keep';
    switch (verdict.kind) {
      case 'keep':
        if (verdict.say)
          log.log(
            'warn',
            `config ${file} was deleted; still running on the last good config (restore the file to change it)`,
            { event: 'config-rejected' },
          );
        return;
      case 'same':
        log.log('debug', `config ${file} saved without a change: nothing to apply`, { event: 'config-unchanged' });
        return;
      case 'reject': {
        if (res.ok) return;
        const first = res.problems[0];
        const more = res.problems.length > 1 ? ` (and ${res.problems.length - 1} more)` : '';
        for (const p of res.problems) log.log('error', formatProblem(p), { event: 'config-rejected' });
        await this.o.apply({ error: `${first ? formatProblem(first) : file}${more}` });
        return;
      }
      case 'apply': {
        if (!res.ok) return;
        for (const s of secretsOf(res.config, token)) log.secret(s);
        this.current = desiredOf(res.config, file, token);
        this.applied = { text: res.text, token: token?.value, tokenFile: res.config.hfToken.file };
        const what = verdict.onlyToken ? `HF token (${token?.source ?? 'removed'})` : undefined;
        await this.o.apply({ desired: this.current, ...(what ? { what } : {}) });
        // hfToken.file moved: watch the new one.
        if (this.watchedToken !== this.applied.tokenFile) await this.watch();
      }
    }
  }

  private async watch(): Promise<void> {
    await this.watcher?.stop();
    // A reload that was under way when supervision stopped must not leave a new watcher running.
    if (this.stopped) return;
    this.watchedToken = this.applied.tokenFile;
    this.watcher = new FileWatcher({
      files: [this.o.file, this.applied.tokenFile],
      debounceMs: DEBOUNCE_MS,
      onChange: () => void this.reload('watch'),
      onError: (msg) => this.o.log.log('warn', msg),
    });
    await this.watcher.start();
  }
}
