// Pulls an image in the background (minutes): every progress record goes to the state machine.
import { readCapped } from '../../util/read-capped.js';
import type { Event } from '../../core/model/events.js';
import type { ContainerEngine } from '../../docker/engine-api.js';
import { EngineUnreachable, PullFailed } from '../../docker/errors.js';
import { authFor, PullProgress } from '../../docker/pull-progress.js';
import type { Logger } from '../../log/logger.js';

export class Puller {
  private current: { image: string; ac: AbortController } | undefined;

  constructor(
    private readonly engine: ContainerEngine,
    private readonly log: Logger,
    private readonly emit: (ev: Event) => void,
  ) {}

  /** Starts a pull of `image` (one at a time: a pull of another image stops first). */
  start(image: string, registryAuth: string): void {
    if (this.current?.image === image) return;
    this.abort();
    const ac = new AbortController();
    this.current = { image, ac };
    void this.run(image, registryAuth, ac.signal).finally(() => {
      if (this.current?.ac === ac) this.current = undefined;
    });
  }

  abort(): void {
    this.current?.ac.abort();
    this.current = undefined;
  }

  private async run(image: string, registryAuth: string, signal: AbortSignal): Promise<void> {
    const progress = new PullProgress();
    // docker's config.json: a few KiB; a FIFO or a huge file there is not read.
    const file = await readCapped(registryAuth, 256 * 1024);
    const auth = authFor(image, file.ok ? file.data.toString('utf8') : undefined);
    const creds = auth ? ` (credentials for ${auth['serveraddress']} from ${registryAuth})` : '';
    this.log.log('info', `pulling ${image}: it is not on this host${creds}`, { event: 'waiting' });
    try {
      await this.engine.pull(
        image,
        auth,
        (ev) => {
          progress.add(ev);
          this.emit({ type: 'pullProgress', image, summary: progress.summary() });
        },
        signal,
      );
      this.emit({ type: 'pulled', image, summary: progress.summary() });
    } catch (err) {
      const message = (err as Error).message;
      if (err instanceof EngineUnreachable) {
        this.emit({ type: 'pullFailed', image, message, aborted: true });
        this.emit({ type: 'engineLost', message });
        return;
      }
      this.emit({ type: 'pullFailed', image, message, aborted: err instanceof PullFailed && err.aborted });
    }
  }
}
