// `render`: the container the config asks for, as the `docker run` command an operator would type.
import { resolveToken } from '../config/token.js';
import { MASK, renderDockerRun } from '../container/docker-run.js';
import { buildSpec } from '../container/spec.js';
import type { Command } from './command.js';
import { EXIT } from './exit.js';
import { loadForCommand } from './config-arg.js';

export const renderCommand: Command = {
  help: `Usage: gptoss-supervisor render [--config PATH]

Prints the container the config describes as a \`docker run\` command, one flag per line.
The HF token's value is never printed; only where it comes from.

Exit codes: 0 printed, 1 invalid config, 64 usage error.
`,
  options: {},
  async run(values) {
    const loaded = await loadForCommand(values['config']);
    if (!loaded) return EXIT.config;
    const token = await resolveToken(loaded.config.hfToken);
    // Built with the mask, not the value: the secret never enters what is printed.
    const spec = buildSpec(loaded.config, token ? MASK : undefined);
    process.stdout.write(renderDockerRun(spec, token?.source));
    return EXIT.ok;
  },
};
