// `ensure`: one reconcile pass, then exit with what happened.
import { resolveToken } from '../config/token.js';
import { buildSpec } from '../container/spec.js';
import { Engine } from '../docker/engine.js';
import { convergeContainer } from '../docker/converge.js';
import { EngineUnreachable, ImageMissing } from '../docker/errors.js';
import { preflight } from '../preflight/gather.js';
import type { Command } from './command.js';
import { formatResult } from './doctor.js';
import { EXIT } from './exit.js';
import { loadForCommand } from './config-arg.js';

export const ensureCommand: Command = {
  help: `Usage: gptoss-supervisor ensure [--config PATH]

One reconcile pass: a container with the configured name and spec ends up running.
  absent                    -> created and started
  running, same spec        -> adopted, untouched (also a container made by hand with the guide's command)
  stopped, same spec        -> started
  different spec            -> stopped gracefully (container.stopTimeout), removed, created, started
Before it creates or starts a container it runs the pre-start checks of \`doctor\` (tiktoken
files, model cache folder, HF token, port, GPU memory) and starts nothing when one fails.
It does not wait for the model to load; \`gptoss-supervisor run\` supervises.

Exit codes: 0 already as configured (nothing changed), 2 created, started or recreated,
1 invalid config, 5 Docker refused an operation, 6 a pre-start check failed (nothing started),
7 Docker engine unreachable, 8 image missing, 64 usage error.
`,
  options: {},
  async run(values) {
    const loaded = await loadForCommand(values['config']);
    if (!loaded) return EXIT.config;
    const { config } = loaded;
    const token = await resolveToken(config.hfToken);
    const spec = buildSpec(config, token?.value);
    const engine = new Engine();
    try {
      await engine.ping();
      const res = await convergeContainer(engine, spec, token?.value, {
        stopTimeoutMs: config.container.stopTimeout,
        onPlan: (outcome, reason) =>
          process.stderr.write(
            `${spec.name}: ` +
              `${outcome === 'recreated' ? 'recreating' : outcome === 'created' ? 'creating' : 'starting'}: ` +
              `${reason}\n`,
          ),
        beforeStart: async () => {
          const { results, blocker } = await preflight({ config, engine, tokenSource: token?.source });
          for (const r of results) if (r.status === 'warn') process.stderr.write(`${formatResult(r)}\n`);
          return blocker;
        },
      });
      if ('held' in res) {
        process.stderr.write(`${formatResult(res.held)}\nnothing was started\n`);
        return EXIT.prereq;
      }
      process.stdout.write(`${spec.name} ${res.outcome} (${res.id.slice(0, 12)}): ${res.reason}\n`);
      return res.outcome === 'adopted' ? EXIT.ok : EXIT.changed;
    } catch (err) {
      process.stderr.write(`gptoss-supervisor ensure: ${(err as Error).message}\n`);
      if (err instanceof EngineUnreachable) return EXIT.engine;
      if (err instanceof ImageMissing) return EXIT.image;
      return EXIT.failed;
    }
  },
};
