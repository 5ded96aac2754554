// `export`: the same deployment for a fleet, as a Compose file, Kubernetes objects or a Podman Quadlet unit.
import { composeOf } from '../export/compose.js';
import { deploymentOf } from '../export/deployment.js';
import { CannotExpress, kubernetesOf } from '../export/kubernetes.js';
import { quadletOf } from '../export/quadlet.js';
import type { Command } from './command.js';
import { errLine, loadForCommand } from './config-arg.js';
import { EXIT } from './exit.js';

const FORMATS = {
  compose: composeOf,
  kubernetes: kubernetesOf,
  quadlet: quadletOf,
} as const;

const what = (f: string | boolean | undefined) =>
  f === undefined ? 'no --format given' : `unknown format "${String(f)}"`;

export const exportCommand: Command = {
  help: `Usage: gptoss-supervisor export --format compose|kubernetes|quadlet [--config PATH]

Prints the deployment the config describes for another manager: a Docker Compose file, a
Kubernetes Deployment and Service, or a Podman Quadlet .container unit. The container is the
same (image, command, environment, IPC, ulimits, port, mounts, GPUs, stop grace), with health
checks equal to health.*. Secrets are never printed: the output refers to where they live (the
environment, a Kubernetes Secret, a Podman secret). What the target cannot express is named in a
comment at the top.

Exit codes: 0 printed, 1 invalid config, 5 the config cannot be expressed in that format
(said why), 64 usage error (no or unknown --format).
`,
  options: { format: { type: 'string' } },
  async run(values) {
    const format = values['format'];
    if (typeof format !== 'string' || !(format in FORMATS)) {
      process.stderr.write(
        `gptoss-supervisor export: ${what(format)}; ` + `use --format ${Object.keys(FORMATS).join('|')}\n`,
      );
      return EXIT.usage;
    }
    const loaded = await loadForCommand(values['config']);
    if (!loaded) return EXIT.config;
    try {
      process.stdout.write(FORMATS[format as keyof typeof FORMATS](deploymentOf(loaded.config), loaded.file));
      return EXIT.ok;
    } catch (err) {
      if (!(err instanceof CannotExpress)) throw err;
      process.stderr.write(`${errLine(`gptoss-supervisor export --format ${format}: ${err.message}`)}\n`);
      return EXIT.failed;
    }
  },
};
