// What the supervisor asks of a container engine: the Docker adapter implements it, tests fake it.
import type { Inspected } from '../container/same.js';
import type { ContainerSpec } from '../container/spec.js';
import type { PullEvent } from './pull-progress.js';

export interface ImageInfo {
  id: string;
  repoDigests: string[];
}

export interface GpuSupport {
  runtimes: string[];
  cdiSpecDirs: string[];
  cdiDevices: string[];
}

/**
 * Errors: `EngineUnreachable` when the engine does not answer, `ImageMissing` on create without
 * the image, `Raced` when the name was taken or the container went away meanwhile, `PullFailed`.
 */
export interface ContainerEngine {
  ping(): Promise<void>;
  /** The container with this name or id, or undefined when there is none. */
  inspect(nameOrId: string): Promise<Inspected | undefined>;
  /** The environment an image sets (so it is not mistaken for drift), empty if unknown. */
  imageEnv(image: string): Promise<string[]>;
  imageExists(image: string): Promise<boolean>;
  /** An image's ID and registry digests (`repo@sha256:...`, pulled images only), or undefined when it is not here. */
  imageInfo(image: string): Promise<ImageInfo | undefined>;
  create(spec: ContainerSpec): Promise<string>;
  start(id: string): Promise<void>;
  /** Graceful stop: SIGTERM, then SIGKILL after `timeoutMs`. Already stopped is fine. */
  stop(id: string, timeoutMs: number): Promise<void>;
  /** Sends a signal now (`SIGKILL`: no grace, the memory guard's kill). Not running or gone is fine. */
  kill(id: string, signal: string): Promise<void>;
  remove(id: string): Promise<void>;
  version(): Promise<string>;
  gpuSupport(): Promise<GpuSupport>;
  /** Names of running containers that publish this host port. */
  publishers(port: number): Promise<string[]>;
  pull(
    image: string,
    auth: Record<string, string> | undefined,
    onEvent: (ev: PullEvent) => void,
    signal: AbortSignal,
  ): Promise<void>;
  /** The last lines of the container's log (stdout and stderr interleaved). */
  logTail(id: string, lines: number): Promise<string>;
  /**
   * The container's log from `sinceSec` (Unix seconds) on and as it is written, stdout and stderr
   * as Docker sends them (multiplexed when the container has no TTY: `LogLines` splits them).
   */
  followLogs(id: string, sinceSec: number): Promise<NodeJS.ReadableStream>;
  /** The log since `sinceSec`, then the output live through an attach (progress bars move). */
  attachOutput(id: string, sinceSec: number): Promise<NodeJS.ReadableStream>;
  /** A stream of JSON event records (Docker's /events) for containers with this name. */
  events(name: string): Promise<NodeJS.ReadableStream>;
}
