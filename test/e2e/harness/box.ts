// A systemd box for end-to-end tests: systemd as PID 1 in a container, the project installed by install.sh.
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { docker, freePort, removeContainer, STANDIN, TEST_MEMLOCK, uniqueName } from '../../helpers/docker.js';
import { genuineEncoding } from '../../helpers/tiktoken.js';

const root = new URL('../../../../', import.meta.url).pathname;
export const TOKEN = 'hf_e2e_SECRET_0123456789abcdefghij';

export type Record = { [k: string]: string };

export function run(cmd: string, args: string[], ms = 120_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: ms, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = !err ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

/** Polls `probe` every 250 ms until it gives a value; fails after `ms` with what it saw last. */
export async function waitFor<T>(
  what: string,
  ms: number,
  probe: () => Promise<T | undefined>,
  seen?: () => Promise<string>,
) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end)
      throw new Error(`timed out after ${ms}ms waiting for ${what}${seen ? `; saw: ${await seen()}` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export class Box {
  readonly name = uniqueName('systemd');
  readonly model = uniqueName('e2e-model');
  shared = '';
  port = 0;
  private installed: Promise<{ code: number; out: string }> | undefined;

  /** Builds the image (cached), boots systemd, and lays out /vllm look-alikes under a shared folder. */
  async boot(): Promise<void> {
    // Shared with the box at the same path (the model container's mounts are host paths). Not under
    // /tmp or /var/tmp, wherever the checkout is: the unit's PrivateTmp= would hide them from it.
    await mkdir('/srv', { recursive: true });
    this.shared = await mkdtemp('/srv/gptoss-e2e-');
    this.port = await freePort();
    await mkdir(join(this.shared, 'vllm/encodings'), { recursive: true });
    await mkdir(join(this.shared, 'vllm/huggingface'), { recursive: true });
    await writeFile(join(this.shared, 'config.yaml'), this.config());
    await writeFile(join(this.shared, 'token'), `${TOKEN}\n`);
    const b = await run('bash', [join(root, 'test/e2e/harness/build-image.sh')], 900_000);
    if (b.code !== 0) throw new Error(`e2e image: ${b.out}`);
    const boot = await run('bash', [join(root, 'test/e2e/harness/boot.sh'), this.name, this.shared], 120_000);
    if (boot.code !== 0) throw new Error(`boot: ${boot.out}`);
  }

  async destroy(): Promise<void> {
    await docker(['rm', '-f', this.name]).catch(() => undefined);
    await removeContainer(this.model);
    if (this.shared) await rm(this.shared, { recursive: true, force: true });
  }

  /** A shell command inside the box. */
  sh(script: string, ms?: number) {
    return run('docker', ['exec', this.name, 'bash', '-c', script], ms);
  }

  /** The unit's journal records, optionally since a `now()` mark, with extra journalctl arguments. */
  async journal(args = '', since?: string): Promise<Record[]> {
    const { out } = await this.sh(`journalctl -u gptoss-supervisor -o json --no-pager ${args}`);
    return out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record)
      .filter((r) => since === undefined || Number(r['__REALTIME_TIMESTAMP']) > Number(since));
  }

  /** A mark for `journal(args, since)`: the box's clock, in µs. */
  async now(): Promise<string> {
    return (await this.sh('date +%s%6N')).out.trim();
  }

  async status(): Promise<string> {
    return (await this.sh('systemctl show -p StatusText --value gptoss-supervisor')).out.trim();
  }

  async until(what: string, ms: number, pattern: RegExp): Promise<void> {
    await waitFor(
      what,
      ms,
      async () => pattern.test(await this.status()) || undefined,
      () => this.status(),
    );
  }

  /** The e2e config: the stand-in image, quick probes, the box's own name and port. */
  config(over: { [k: string]: unknown } = {}): string {
    const base: { [k: string]: unknown } = {
      container: {
        name: this.model,
        image: STANDIN,
        port: this.port,
        bindAddress: '127.0.0.1',
        ulimits: { memlock: TEST_MEMLOCK },
        env: { STANDIN_LOAD_SECONDS: '3' },
        stopTimeout: '10s',
      },
      paths: {
        encodings: join(this.shared, 'vllm/encodings'),
        huggingface: join(this.shared, 'vllm/huggingface'),
        cache: join(this.shared, 'vllm/cache'),
      },
      health: {
        startup: { period: '500ms', timeout: '1m' },
        liveness: { period: '1s', timeout: '1s', failureThreshold: 2 },
        readiness: { period: '1s', timeout: '1s' },
      },
      restart: { initialDelay: '1s', maxDelay: '4s' },
      waits: { recheck: '500ms', gpuRuntimeRecheck: '4s', pullRetry: '4s' },
    };
    for (const [k, v] of Object.entries(over)) base[k] = { ...(base[k] as object), ...(v as object) };
    return stringify(base);
  }

  /**
   * install.sh from the checkout, once per box (the tiktoken files fetched from a local server).
   * Every test depends on it; a failed install fails each of them with its output.
   */
  install(): Promise<{ code: number; out: string }> {
    this.installed ??= this.runInstall();
    return this.installed;
  }

  private async runInstall(): Promise<{ code: number; out: string }> {
    const files = new Map<string, Buffer>();
    for (const n of ['o200k_base', 'cl100k_base'] as const) files.set(`/${n}.tiktoken`, await genuineEncoding(n));
    const server = createServer((req, res) => {
      const body = files.get(req.url ?? '');
      if (body) res.writeHead(200).end(body);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
    try {
      return await this.sh(
        `HF_TOKEN= bash /src/install.sh --no-start --config ${this.shared}/config.yaml ` +
          `--hf-token-file ${this.shared}/token --fetch-encodings --encodings-url ${url}`,
      );
    } finally {
      server.close();
    }
  }

  /**
   * The known state each scenario starts from: installed, Docker up, no drop-ins, the given config
   * in /etc/gptoss, the service serving. Whatever an earlier scenario left behind is put right here.
   */
  async serving(cfg = this.config()): Promise<void> {
    const inst = await this.install();
    if (inst.code !== 0) throw new Error(`install.sh failed, so nothing else can run:\n${inst.out}`);
    await writeFile(join(this.shared, 'scenario.yaml'), cfg);
    const same = (await this.sh(`cmp -s ${this.shared}/scenario.yaml /etc/gptoss/config.yaml`)).code === 0;
    // Drop-ins a scenario made are taken away; install.sh's own for the gate (gate.conf) stays.
    const d = '/etc/systemd/system/gptoss-supervisor.service.d';
    const others = `find ${d} -type f ! -name gate.conf 2>/dev/null`;
    const dropins = (await this.sh(others)).out.trim() !== '';
    await this.sh('systemctl is-active --quiet docker || systemctl start docker');
    if (dropins) await this.sh(`${others} -delete && systemctl daemon-reload`);
    if (!same) await this.sh(`cp ${this.shared}/scenario.yaml /etc/gptoss/config.yaml`);
    const active = (await this.sh('systemctl is-active --quiet gptoss-supervisor')).code === 0;
    if (!active || !same || dropins) await this.sh('systemctl restart gptoss-supervisor', 180_000);
    await this.until('the service serving', 90_000, /^serving/);
  }
}
