// `validate`: is the config file valid? Every problem at once, located.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { readSecret } from '../alerts/webhooks.js';
import type { Config } from '../config/schema.js';
import { ipAllow, type WebhookTarget } from '../core/rules/ip-allow.js';
import type { Command } from './command.js';
import { EXIT, UsageError } from './exit.js';
import { loadForCommand } from './config-arg.js';

export const validateCommand: Command = {
  help: `Usage: gptoss-supervisor validate [--config PATH] [--get KEY | --ip-allow]

Checks the config file and prints every problem as FILE:LINE:COL: KEY: what is wrong.
--get KEY prints one value of the valid config, defaults applied (e.g. --get paths.encodings),
for scripts such as install.sh. --ip-allow prints what the unit's IP firewall must let through
beyond loopback (IPAddressAllow=, for install.sh): metrics.allowFrom, and each webhook's address
(its host resolved now; a host by name also gets the public internet, never a private, link-local
or multicast range); nothing when neither is set. What it allowed and why goes to stderr.

Exit codes: 0 valid, 1 invalid or unreadable, 64 usage error (also an unknown KEY).
`,
  options: { get: { type: 'string' }, 'ip-allow': { type: 'boolean' } },
  async run(values) {
    const loaded = await loadForCommand(values['config']);
    if (!loaded) return EXIT.config;
    if (values['ip-allow']) {
      const { allow, notes } = ipAllow({
        allowFrom: loaded.config.metrics.allowRemote ? loaded.config.metrics.allowFrom : [],
        webhooks: await Promise.all(loaded.config.alerts.webhooks.map(target)),
      });
      for (const n of notes) process.stderr.write(`${n}\n`);
      process.stdout.write(`${allow.join(' ')}\n`);
      return EXIT.ok;
    }
    const key = values['get'];
    if (typeof key === 'string') {
      let v: unknown = loaded.config;
      for (const part of key.split('.'))
        v = v && typeof v === 'object' && Object.hasOwn(v, part) ? (v as Record<string, unknown>)[part] : undefined;
      if (v === undefined) throw new UsageError(`no config key ${key}`);
      process.stdout.write(
        `${typeof v === 'object' ? JSON.stringify(v) : typeof v === 'string' ? v : JSON.stringify(v)}\n`,
      );
      return EXIT.ok;
    }
    process.stdout.write(`${loaded.file}: valid\n`);
    return EXIT.ok;
  },
};

/** A webhook's host and what it resolves to now: a URL in a file is read (never printed), a credential's not known. */
async function target(w: Config['alerts']['webhooks'][number]): Promise<WebhookTarget> {
  let url = w.url;
  if (url === undefined && w.urlFile && !w.urlFile.startsWith('credential:'))
    url = await readSecret(w.urlFile).catch(() => undefined);
  let host: string | undefined;
  try {
    host = url === undefined ? undefined : new URL(url).hostname.replace(/^\[|\]$/g, '');
  } catch {
    host = undefined;
  }
  if (host === undefined) return { name: w.name, addresses: [] };
  if (isIP(host)) return { name: w.name, host, addresses: [host] };
  const found = await lookup(host, { all: true }).catch(() => []);
  return { name: w.name, host, addresses: found.map((a) => a.address) };
}
