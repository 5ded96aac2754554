// V8 flags for the daemon (`run`): memory over speed, for a process that mostly waits. Measured by
// `npm run bench` (idle RSS): a young generation of 1 MiB instead of 16, and no optimizing or baseline
// compilers (probes every 10 s never make code hot). The interpreter still runs everything, and
// WebAssembly stays on (--lite-mode would turn it off). Node refuses these in NODE_OPTIONS, so the
// installed command (install.sh) and the tests pass them on the command line.
import { fileURLToPath } from 'node:url';

export const DAEMON_NODE_FLAGS: readonly string[] = [
  '--max-semi-space-size=1',
  '--no-opt',
  '--no-maglev',
  '--no-sparkplug',
];

// `node node-flags.js` prints them for install.sh.
if (process.argv[1] === fileURLToPath(import.meta.url)) process.stdout.write(`${DAEMON_NODE_FLAGS.join(' ')}\n`);
