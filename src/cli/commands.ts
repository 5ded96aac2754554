// The commands' table: each command's one-line summary, and its module, loaded only when it runs
// (the daemon, `run`, never loads what the other commands need).
import type { Command } from './command.js';

interface Entry {
  summary: string;
  load(): Promise<Command>;
}

export const COMMANDS: Record<string, Entry> = {
  validate: {
    summary: 'check the config file; every problem at once, as FILE:LINE:COL',
    load: async () => (await import('./validate.js')).validateCommand,
  },
  render: {
    summary: 'print the container as an equivalent `docker run` command (token hidden)',
    load: async () => (await import('./render.js')).renderCommand,
  },
  export: {
    summary: 'print the deployment as a Compose file, Kubernetes objects or a Podman Quadlet unit',
    load: async () => (await import('./export.js')).exportCommand,
  },
  ensure: {
    summary: 'make the container exist and run with the configured spec, once, then exit',
    load: async () => (await import('./ensure.js')).ensureCommand,
  },
  run: {
    summary: 'supervise the container until stopped (what the systemd unit runs)',
    load: async () => (await import('./run.js')).runCommand,
  },
  gate: {
    summary: "the model's front door (what gptoss-gate.service runs; `run` starts it elsewhere)",
    load: async () => (await import('./gate.js')).gateCommand,
  },
  'fetch-encodings': {
    summary: 'download the two tiktoken files into paths.encodings, verified',
    load: async () => (await import('./fetch-encodings.js')).fetchEncodingsCommand,
  },
  'alert-test': {
    summary: 'send a test message to each webhook in alerts.webhooks, and say what each answered',
    load: async () => (await import('./alert-test.js')).alertTestCommand,
  },
  doctor: {
    summary: 'check every prerequisite (Docker, image, GPU runtime, encodings, cache, token, port, GPU memory)',
    load: async () => (await import('./doctor.js')).doctorCommand,
  },
  status: {
    summary: 'what the running daemon is doing (over D-Bus); exit 0 serving, 3 not, 4 no daemon',
    load: async () => (await import('./daemon-client.js')).statusCommand,
  },
  restart: {
    summary: 'restart the model container now, gracefully (root; over D-Bus)',
    load: async () => (await import('./daemon-client.js')).restartCommand,
  },
  rollback: {
    summary: 'go back to the last spec that served, now (root; over D-Bus); the config is not touched',
    load: async () => (await import('./daemon-client.js')).rollbackCommand,
  },
  history: {
    summary: 'the specs that served (last known good), with image digests, times and how each ended',
    load: async () => (await import('./daemon-client.js')).historyCommand,
  },
  reload: {
    summary: 're-read the config in the running daemon (root; over D-Bus), like systemctl reload',
    load: async () => (await import('./daemon-client.js')).reloadCommand,
  },
};
