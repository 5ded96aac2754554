// A real Prometheus (Debian's package) scraping one target every second, in a folder of its own.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from './docker.js';
import { scratchDir } from './temp.js';

export interface Prometheus {
  /** The port of its HTTP API. */
  port: number;
  /** The folder it keeps its config and data in (free for other files). */
  dir: string;
  stop(): void;
}

export async function startPrometheus(target: string): Promise<Prometheus> {
  const dir = await scratchDir('gptoss-prom-');
  const port = await freePort();
  await writeFile(
    join(dir, 'prometheus.yml'),
    stringify({
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      scrape_configs: [{ job_name: 'gptoss', static_configs: [{ targets: [target] }] }],
    }),
  );
  const child = spawn(
    'prometheus',
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: 'ignore' },
  );
  return { port, dir, stop: () => child.kill() };
}
