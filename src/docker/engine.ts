// Thin adapter over dockerode: Engine API calls in, typed results and errors out. No policy here.
import '../util/lazy-deps.js';
import Docker from 'dockerode';
import { PassThrough, type Duplex } from 'node:stream';
import type { Inspected } from '../container/same.js';
import type { ContainerSpec } from '../container/spec.js';
import { withDeadline } from '../util/deadline.js';
import type { ContainerEngine, GpuSupport, ImageInfo } from './engine-api.js';
import { DockerFailed, EngineUnreachable, ImageMissing, PullFailed, Raced } from './errors.js';
import { onJsonLines } from './json-lines.js';
import { readLogTail } from './log-stream.js';
import { TAIL_CHARS } from '../core/rules/exit-tail.js';
import type { PullEvent } from './pull-progress.js';

interface HttpError {
  statusCode?: number;
  code?: string;
  json?: { message?: string } | null;
  message?: string;
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ENOENT',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EACCES',
  'EHOSTUNREACH',
]);

function detail(err: HttpError): string {
  return (err.json?.message ?? err.message ?? 'no detail given').trim();
}

/** A hung dockerd must not hold the supervisor's operations forever. */
const CALL_TIMEOUT_MS = 30_000;

function within<T>(p: Promise<T>, ms: number): Promise<T> {
  return withDeadline(p, ms, () =>
    Object.assign(new Error(`no answer within ${Math.round(ms / 1000)}s`), { code: 'ETIMEDOUT' }),
  );
}

/**
 * The log a live follow starts with (the run's lines before the attach): at most this many of the
 * last lines, and characters of them. An adopted container may have logged for weeks.
 */
const PAST_LINES = 2000;
const PAST_CHARS = 1024 * 1024;

/** Container actions the event stream reports; the supervisor looks after each. */
const EVENT_ACTIONS = ['create', 'start', 'die', 'oom', 'stop', 'destroy', 'kill'];

/** Maps a dockerode failure to our errors; `what` names the call for the message. */
function translate(what: string, err: unknown, image?: string): Error {
  const e = err as HttpError;
  if (e.code && CONNECTION_CODES.has(e.code)) return new EngineUnreachable(`${e.code} on ${what}`);
  if (e.statusCode === 404 && image && /image/i.test(detail(e))) return new ImageMissing(image);
  if (e.statusCode === 409 || e.statusCode === 404) return new Raced(`${what}: ${detail(e)}`);
  return new DockerFailed(what, e.statusCode, detail(e));
}

export class Engine implements ContainerEngine {
  readonly docker: Docker;

  /** Uses DOCKER_HOST when set, else the local socket, as the docker CLI does. */
  constructor(docker?: Docker) {
    this.docker = docker ?? new Docker();
  }

  async ping(): Promise<void> {
    try {
      await within(this.docker.ping(), CALL_TIMEOUT_MS);
    } catch (err) {
      const e = translate('ping', err);
      throw e instanceof EngineUnreachable ? e : new EngineUnreachable(detail(err as HttpError));
    }
  }

  /** The container with this name or id, or undefined when there is none. */
  async inspect(nameOrId: string): Promise<Inspected | undefined> {
    try {
      return (await within(this.docker.getContainer(nameOrId).inspect(), CALL_TIMEOUT_MS)) as unknown as Inspected;
    } catch (err) {
      if ((err as HttpError).statusCode === 404) return undefined;
      throw translate('inspect', err);
    }
  }

  /** The environment an image sets (so it is not mistaken for drift), empty if unknown. */
  async imageEnv(image: string): Promise<string[]> {
    try {
      const info = await within(this.docker.getImage(image).inspect(), CALL_TIMEOUT_MS);
      return info.Config?.Env ?? [];
    } catch (err) {
      if ((err as HttpError).statusCode === 404) return [];
      throw translate('image inspect', err);
    }
  }

  async imageInfo(image: string): Promise<ImageInfo | undefined> {
    try {
      const info = await within(this.docker.getImage(image).inspect(), CALL_TIMEOUT_MS);
      return { id: info.Id, repoDigests: info.RepoDigests ?? [] };
    } catch (err) {
      if ((err as HttpError).statusCode === 404) return undefined;
      throw translate('image inspect', err);
    }
  }

  async imageExists(image: string): Promise<boolean> {
    return (await this.imageInfo(image)) !== undefined;
  }

  /** Creates the container; a name already taken is `Raced`, a missing image `ImageMissing`. */
  async create(spec: ContainerSpec): Promise<string> {
    try {
      const c = await within(
        this.docker.createContainer({ name: spec.name, ...spec.body } as Docker.ContainerCreateOptions),
        CALL_TIMEOUT_MS,
      );
      return c.id;
    } catch (err) {
      throw translate('create', err, spec.body.Image);
    }
  }

  async start(id: string): Promise<void> {
    try {
      await within(this.docker.getContainer(id).start(), CALL_TIMEOUT_MS);
    } catch (err) {
      if ((err as HttpError).statusCode === 304) return; // already running
      throw translate('start', err);
    }
  }

  /** Graceful stop: SIGTERM, then SIGKILL after `timeoutMs`. Already stopped is fine. */
  async stop(id: string, timeoutMs: number): Promise<void> {
    try {
      await within(
        this.docker.getContainer(id).stop({ t: Math.max(0, Math.ceil(timeoutMs / 1000)) }),
        timeoutMs + CALL_TIMEOUT_MS,
      );
    } catch (err) {
      // Already stopped (304) or already gone (404): either way it is not running.
      if ((err as HttpError).statusCode === 304 || (err as HttpError).statusCode === 404) return;
      throw translate('stop', err);
    }
  }

  async kill(id: string, signal: string): Promise<void> {
    try {
      await within(this.docker.getContainer(id).kill({ signal }), CALL_TIMEOUT_MS);
    } catch (err) {
      // Not running (409) or gone (404): there is nothing left to kill.
      if ((err as HttpError).statusCode === 409 || (err as HttpError).statusCode === 404) return;
      throw translate('kill', err);
    }
  }

  async remove(id: string): Promise<void> {
    try {
      await within(this.docker.getContainer(id).remove({ force: false }), CALL_TIMEOUT_MS);
    } catch (err) {
      // Removal already under way by someone else counts as done: the caller looks again anyway.
      if ((err as HttpError).statusCode === 409 && /already in progress/.test(detail(err as HttpError))) return;
      throw translate('remove', err);
    }
  }

  /** The engine's version, e.g. "28.2.2". */
  async version(): Promise<string> {
    try {
      const v = await within(this.docker.version(), CALL_TIMEOUT_MS);
      return v.Version;
    } catch (err) {
      const e = translate('version', err);
      throw e instanceof EngineUnreachable ? e : new EngineUnreachable(detail(err as HttpError));
    }
  }

  /** What `docker info` says about GPU support: runtimes and CDI. */
  async gpuSupport(): Promise<GpuSupport> {
    try {
      const info = (await within(this.docker.info(), CALL_TIMEOUT_MS)) as {
        Runtimes?: Record<string, unknown>;
        CDISpecDirs?: string[];
        DiscoveredDevices?: Array<{ Source?: string; ID?: string }>;
      };
      return {
        runtimes: Object.keys(info.Runtimes ?? {}),
        cdiSpecDirs: info.CDISpecDirs ?? [],
        cdiDevices: (info.DiscoveredDevices ?? []).filter((d) => d.Source === 'cdi').map((d) => d.ID ?? ''),
      };
    } catch (err) {
      throw translate('info', err);
    }
  }

  /** Names of running containers that publish this host port. */
  async publishers(port: number): Promise<string[]> {
    try {
      const list = await within(this.docker.listContainers({ filters: { publish: [String(port)] } }), CALL_TIMEOUT_MS);
      return list.map((c) => (c.Names?.[0] ?? c.Id.slice(0, 12)).replace(/^\//, ''));
    } catch (err) {
      throw translate('list containers', err);
    }
  }

  /**
   * Pulls an image, telling `onEvent` each progress record as Docker sends it. Resolves when
   * the pull is complete; rejects with `PullFailed` (the engine's words) or when `signal` aborts.
   */
  async pull(
    image: string,
    auth: Record<string, string> | undefined,
    onEvent: (ev: PullEvent) => void,
    signal: AbortSignal,
  ): Promise<void> {
    let stream: NodeJS.ReadableStream & { destroy?: (e?: Error) => void };
    try {
      stream = await within(this.docker.pull(image, auth ? { authconfig: auth } : {}), CALL_TIMEOUT_MS);
    } catch (err) {
      const e = translate('pull', err);
      if (e instanceof EngineUnreachable) throw e;
      throw new PullFailed(detail(err as HttpError));
    }
    await new Promise<void>((resolve, reject) => {
      let failed: string | undefined;
      const abort = () => {
        stream.destroy?.();
        reject(new PullFailed('aborted', true));
      };
      if (signal.aborted) return abort();
      signal.addEventListener('abort', abort, { once: true });
      onJsonLines(stream, (rec) => {
        const ev = rec as PullEvent;
        if (ev.error || ev.errorDetail?.message)
          failed ??= (ev.errorDetail?.message ?? ev.error ?? 'pull failed').trim();
        else onEvent(ev);
      });
      stream.on('error', (err: Error) => {
        signal.removeEventListener('abort', abort);
        reject(new PullFailed(err.message));
      });
      stream.on('end', () => {
        signal.removeEventListener('abort', abort);
        if (failed) reject(new PullFailed(failed));
        else resolve();
      });
    });
  }

  async followLogs(id: string, sinceSec: number): Promise<NodeJS.ReadableStream> {
    try {
      return await within(
        this.docker.getContainer(id).logs({ stdout: true, stderr: true, follow: true, since: Math.floor(sinceSec) }),
        CALL_TIMEOUT_MS,
      );
    } catch (err) {
      throw translate('logs', err);
    }
  }

  /**
   * The log since `sinceSec`, then the container's output live, byte by byte, through an attach:
   * Docker's log holds a line back until its newline, and tqdm's progress bars (the weights, the
   * CUDA graphs) redraw with \r only, so only an attach sees them move. Lines printed between the
   * attach and the read of the log come twice; the readers do not mind.
   */
  async attachOutput(id: string, sinceSec: number): Promise<NodeJS.ReadableStream> {
    const c = this.docker.getContainer(id);
    try {
      const live = (await within(
        c.attach({ stream: true, stdout: true, stderr: true, logs: false }),
        CALL_TIMEOUT_MS,
      )) as unknown as Duplex;
      const held: Buffer[] = [];
      const hold = (b: Buffer) => held.push(b);
      live.on('data', hold);
      // From this run's exact start: a container started again keeps its log, and the last run's
      // final lines must not pass for this one's.
      const { started, tty } = await within(c.inspect(), CALL_TIMEOUT_MS).then(
        (i: { State?: { StartedAt?: string }; Config?: { Tty?: boolean } }) => ({
          started: unixSince(i.State?.StartedAt ?? ''),
          tty: i.Config?.Tty === true,
        }),
        () => ({ started: undefined, tty: false }),
      );
      const since = started ?? Math.floor(sinceSec);
      const past = await this.readLog(id, { since, tail: PAST_LINES }, PAST_CHARS).catch(() => '');
      const out = new PassThrough();
      // As the attach sends it: one frame of stdout where the container has no TTY, raw bytes where it has.
      if (past) out.write(tty ? Buffer.from(past) : frame(past));
      live.off('data', hold);
      for (const b of held) out.write(b);
      live.pipe(out);
      live.on('error', () => out.end());
      out.on('close', () => live.destroy());
      return out;
    } catch (err) {
      throw translate('attach', err);
    }
  }

  /** Docker's event stream for the containers with this name (a prefix match on old engines). */
  events(name: string): Promise<NodeJS.ReadableStream> {
    return this.docker.getEvents({
      filters: { type: ['container'], container: [name], event: EVENT_ACTIONS },
    });
  }

  /**
   * The last lines of the container's log (stdout and stderr interleaved), for diagnosis: each cut to
   * MAX_LINE, the last of them within TAIL_CHARS.
   */
  async logTail(id: string, lines: number): Promise<string> {
    try {
      return await this.readLog(id, { tail: lines }, TAIL_CHARS);
    } catch (err) {
      if ((err as HttpError).statusCode === 404) return '';
      throw translate('logs', err);
    }
  }

  /**
   * The log (not followed) as a stream, read to its end within CALL_TIMEOUT_MS, keeping its last
   * lines within `maxChars`: dockerode would buffer all of Docker's answer first.
   */
  private readLog(id: string, query: { tail: number; since?: number | string }, maxChars: number): Promise<string> {
    const read = new Promise<NodeJS.ReadableStream>((resolve, reject) => {
      this.docker.modem.dial(
        {
          path: `/containers/${encodeURIComponent(id)}/logs?`,
          method: 'GET',
          isStream: true,
          statusCodes: { 200: true, 404: 'no such container', 500: 'server error' },
          options: { stdout: true, stderr: true, follow: false, ...query },
        },
        (err, data) => (err ? reject(err) : resolve(data as NodeJS.ReadableStream)),
      );
    }).then((stream) => {
      const timer = setTimeout(() => destroy(stream), CALL_TIMEOUT_MS);
      return readLogTail(stream, maxChars).finally(() => clearTimeout(timer));
    });
    return within(read, CALL_TIMEOUT_MS + 1000);
  }
}

function destroy(s: NodeJS.ReadableStream): void {
  (s as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
}

/** Text as one frame of Docker's multiplexed stream (stdout): an 8-byte header, then the bytes. */
function frame(text: string): Buffer {
  const body = Buffer.from(text);
  const head = Buffer.alloc(8);
  head[0] = 1;
  head.writeUInt32BE(body.length, 4);
  return Buffer.concat([head, body]);
}

/** Docker's RFC 3339 time (nanoseconds) as the `since` of its log API, `seconds.nanoseconds`. */
export function unixSince(iso: string): string | undefined {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(iso);
  const sec = m ? Date.parse(`${m[1]}Z`) / 1000 : NaN;
  if (!m || !Number.isFinite(sec) || sec <= 0) return undefined;
  return `${sec}.${(m[2] ?? '').padEnd(9, '0')}`;
}
