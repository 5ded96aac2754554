// One supervised scenario for an integration test: its own container name, port, dirs, state and config.
import { startDaemon, writeConfig, type Daemon } from './daemon.js';
import { freePort, makeDirs, removeContainer, testConfigRaw, uniqueName, type Dirs } from './docker.js';
import { removeScratch, scratchDir } from './temp.js';

/** Quick timings: the same machine, minutes turned into fractions of a second. */
export const QUICK = {
  health: {
    startup: { period: '300ms', timeout: '20s' },
    liveness: { period: '500ms', timeout: '500ms', failureThreshold: 2 },
    readiness: { period: '500ms', timeout: '1s' },
  },
  restart: { initialDelay: '200ms', multiplier: 2, maxDelay: '2s', jitter: 0, crashLoopAfter: 3 },
  waits: { recheck: '300ms', gpuRuntimeRecheck: '2s', pullRetry: '2s' },
};

export interface Setup {
  name: string;
  port: number;
  dirs: Dirs;
  stateDir: string;
  configFile: string;
  /** The YAML-side config written to configFile. */
  raw: Record<string, unknown>;
  daemon: Daemon;
}

const running: Daemon[] = [];

export async function setup(
  tag: string,
  over: Record<string, unknown> = {},
  opts: { start?: boolean; encodings?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<Setup> {
  const name = uniqueName(tag);
  const port = await freePort();
  const dirs = await makeDirs(opts.encodings === false ? { encodings: false } : {});
  const stateDir = await scratchDir('gptoss-state-');
  const raw = testConfigRaw(name, port, dirs, {
    ...QUICK,
    ...over,
    health: { ...QUICK.health, ...(over['health'] as object) },
    restart: { ...QUICK.restart, ...(over['restart'] as object) },
    waits: { ...QUICK.waits, ...(over['waits'] as object) },
  });
  const configFile = await writeConfig(raw);
  const daemon = opts.start === false ? (undefined as unknown as Daemon) : startDaemon(configFile, stateDir, opts.env);
  if (daemon) running.push(daemon);
  return { name, port, dirs, stateDir, configFile, raw, daemon };
}

/** Kills every daemon a test started (for test.afterEach.always). */
export async function stopAll(): Promise<void> {
  for (const d of running.splice(0)) await d.stop('SIGKILL');
  await removeScratch();
}

/** Remembers a daemon started outside `setup`, for `stopAll`. */
export function track(d: Daemon): Daemon {
  running.push(d);
  return d;
}

export async function cleanup(s: Setup): Promise<void> {
  await s.daemon?.stop('SIGKILL');
  await removeContainer(s.name);
}
