// An in-memory container engine for unit tests of the shell: containers, an event stream, failures on demand.
import { PassThrough } from 'node:stream';
import type { Inspected } from '../../src/container/same.js';
import type { ContainerSpec } from '../../src/container/spec.js';
import { createHash } from 'node:crypto';
import type { ContainerEngine, GpuSupport, ImageInfo } from '../../src/docker/engine-api.js';
import { EngineUnreachable, ImageMissing, Raced } from '../../src/docker/errors.js';
import type { PullEvent } from '../../src/docker/pull-progress.js';

interface Box {
  id: string;
  name: string;
  spec: ContainerSpec;
  running: boolean;
  exitCode: number;
  startedAt: string;
  log: string[];
}

export class FakeEngine implements ContainerEngine {
  readonly boxes = new Map<string, Box>();
  readonly images = new Set<string>();
  /** Every call, in order: `create vllm-gpt-oss`, `start c1`, ... */
  readonly calls: string[] = [];
  down = false;
  /** Runs once before the next create (a race: someone else creates the name first). */
  beforeCreate: (() => void) | undefined;
  private streams: Array<{ name: string; s: PassThrough }> = [];
  private seq = 0;

  constructor(images: string[] = []) {
    for (const i of images) this.images.add(i);
  }

  private check(what: string): void {
    this.calls.push(what);
    if (this.down) throw new EngineUnreachable(`ECONNREFUSED on ${what.split(' ')[0] ?? what}`);
  }

  private byName(nameOrId: string): Box | undefined {
    return [...this.boxes.values()].find((b) => b.name === nameOrId || b.id === nameOrId);
  }

  private emit(b: Box, action: string): void {
    for (const { name, s } of this.streams) {
      if (name === b.name)
        s.write(`${JSON.stringify({ Action: action, Actor: { ID: b.id, Attributes: { name: b.name } } })}\n`);
    }
  }

  /** A container made outside the supervisor (the guide's `docker run`, or another supervisor). */
  put(spec: ContainerSpec, running = true): string {
    const id = `c${++this.seq}`.padEnd(64, '0');
    const b: Box = { id, name: spec.name, spec, running, exitCode: 0, startedAt: new Date().toISOString(), log: [] };
    this.boxes.set(id, b);
    this.emit(b, 'create');
    if (running) this.emit(b, 'start');
    return id;
  }

  /** The model process dies with `code`, its last words in the log. */
  die(name: string, code: number, log: string[] = []): void {
    const b = this.byName(name);
    if (!b) throw new Error(`no container ${name}`);
    b.running = false;
    b.exitCode = code;
    b.log.push(...log);
    this.emit(b, 'die');
  }

  ping(): Promise<void> {
    this.check('ping');
    return Promise.resolve();
  }

  inspect(nameOrId: string): Promise<Inspected | undefined> {
    this.check(`inspect ${nameOrId}`);
    const b = this.byName(nameOrId);
    if (!b) return Promise.resolve(undefined);
    const body = b.spec.body;
    return Promise.resolve({
      Id: b.id,
      Name: `/${b.name}`,
      Image: this.idOf(body.Image),
      State: {
        Status: b.running ? 'running' : 'exited',
        Running: b.running,
        ExitCode: b.exitCode,
        OOMKilled: false,
        StartedAt: b.startedAt,
        FinishedAt: '',
      },
      Config: { Image: body.Image, Cmd: body.Cmd, Env: body.Env, Labels: body.Labels },
      HostConfig: body.HostConfig,
    });
  }

  imageEnv(): Promise<string[]> {
    return Promise.resolve([]);
  }

  imageExists(image: string): Promise<boolean> {
    return Promise.resolve(this.has(image));
  }

  /** An image's ID: a hash of its name (an ID names itself). */
  idOf(image: string): string {
    return image.startsWith('sha256:') ? image : `sha256:${createHash('sha256').update(image).digest('hex')}`;
  }

  private has(image: string): boolean {
    return [...this.images].some((i) => i === image || this.idOf(i) === image);
  }

  imageInfo(image: string): Promise<ImageInfo | undefined> {
    return Promise.resolve(this.has(image) ? { id: this.idOf(image), repoDigests: [] } : undefined);
  }

  create(spec: ContainerSpec): Promise<string> {
    this.check(`create ${spec.name}`);
    const race = this.beforeCreate;
    this.beforeCreate = undefined;
    race?.();
    if (!this.has(spec.body.Image)) return Promise.reject(new ImageMissing(spec.body.Image));
    if (this.byName(spec.name)) return Promise.reject(new Raced(`create: name ${spec.name} is in use`));
    return Promise.resolve(this.put(spec, false));
  }

  start(id: string): Promise<void> {
    this.check(`start ${id.slice(0, 2)}`);
    const b = this.byName(id);
    if (!b) return Promise.reject(new Raced(`start: no container ${id}`));
    b.running = true;
    b.startedAt = new Date().toISOString();
    this.emit(b, 'start');
    return Promise.resolve();
  }

  stop(id: string): Promise<void> {
    this.check(`stop ${id.slice(0, 2)}`);
    const b = this.byName(id);
    if (b?.running) {
      b.running = false;
      this.emit(b, 'die');
      this.emit(b, 'stop');
    }
    return Promise.resolve();
  }

  /** Signals sent by kill(), in order: what the memory guard did. */
  readonly kills: Array<{ id: string; signal: string }> = [];

  kill(id: string, signal: string): Promise<void> {
    this.check(`kill ${id.slice(0, 2)}`);
    this.kills.push({ id, signal });
    const b = this.byName(id);
    if (b?.running) {
      b.running = false;
      this.emit(b, 'kill');
      this.emit(b, 'die');
    }
    return Promise.resolve();
  }

  remove(id: string): Promise<void> {
    this.check(`remove ${id.slice(0, 2)}`);
    const b = this.byName(id);
    if (b) {
      this.boxes.delete(b.id);
      this.emit(b, 'destroy');
    }
    return Promise.resolve();
  }

  version(): Promise<string> {
    return Promise.resolve('fake');
  }

  gpuSupport(): Promise<GpuSupport> {
    return Promise.resolve({ runtimes: ['nvidia'], cdiSpecDirs: [], cdiDevices: [] });
  }

  publishers(): Promise<string[]> {
    return Promise.resolve([]);
  }

  pull(image: string, _auth: unknown, onEvent: (ev: PullEvent) => void): Promise<void> {
    this.check(`pull ${image}`);
    onEvent({ status: 'Pull complete', id: '0123456789ab' });
    this.images.add(image);
    return Promise.resolve();
  }

  logTail(id: string): Promise<string> {
    return Promise.resolve((this.byName(id)?.log ?? []).join('\n'));
  }

  /** The log so far, then nothing more (the fake writes no log while it runs). */
  followLogs(id: string): Promise<NodeJS.ReadableStream> {
    const s = new PassThrough();
    s.write((this.byName(id)?.log ?? []).join('\n'));
    return Promise.resolve(s);
  }

  attachOutput(id: string): Promise<NodeJS.ReadableStream> {
    return this.followLogs(id);
  }

  events(name: string): Promise<NodeJS.ReadableStream> {
    this.check(`events ${name}`);
    const s = new PassThrough();
    this.streams.push({ name, s });
    s.on('close', () => (this.streams = this.streams.filter((x) => x.s !== s)));
    return Promise.resolve(s);
  }
}
