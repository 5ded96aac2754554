// `alert-test`: one test message to each webhook of alerts.webhooks, and what each answered.
import { requestFor, sendOnce } from '../alerts/webhooks.js';
import { createLogger } from '../log/logger.js';
import type { Command } from './command.js';
import { loadForCommand } from './config-arg.js';
import { EXIT } from './exit.js';

export const alertTestCommand: Command = {
  help: `Usage: gptoss-supervisor alert-test [--config PATH]

Sends one test message to each webhook in alerts.webhooks (in its format: json, ntfy, slack),
with the secrets the daemon would use (urlFile, tokenFile: a file or credential:NAME; run it
as root, or through systemd-run for credentials), and prints what each answered. Nothing goes
through the running daemon, and the HF token is in no message.

Exit codes: 0 every webhook answered 2xx, 5 one or more did not, 1 bad config.
`,
  options: {},
  async run(values) {
    const loaded = await loadForCommand(values['config']);
    if (!loaded) return EXIT.config;
    const hooks = loaded.config.alerts.webhooks;
    if (!hooks.length) {
      process.stdout.write(`${loaded.file}: no alerts.webhooks to test\n`);
      return EXIT.ok;
    }
    const log = createLogger({ level: 'warn', format: 'text' });
    const name = loaded.config.model.servedName;
    const alert = {
      event: 'test' as const,
      trouble: false,
      title: `${name}: test message from gptoss-supervisor`,
      message: `alert-test: webhooks of ${loaded.file} reach you. No action needed.`,
      key: 'test',
    };
    let failed = 0;
    for (const w of hooks) {
      let r: { ok: boolean; detail: string };
      try {
        r = await sendOnce(await requestFor(w, alert, (t) => log.scrub(t)));
      } catch (err) {
        r = { ok: false, detail: (err as Error).message };
      }
      if (!r.ok) failed++;
      process.stdout.write(`${w.name} (${w.format}): ${r.ok ? 'sent' : 'FAILED'}, ${r.detail}\n`);
    }
    return failed ? EXIT.failed : EXIT.ok;
  },
};
