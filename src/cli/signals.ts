// The daemon's signals: TERM/INT stop, HUP reloads, USR2 hands over; a second INT exits at once.
import type { Logger } from '../log/logger.js';
import { EXIT } from './exit.js';

export interface SignalHandlers {
  log: Logger;
  stop(signal: NodeJS.Signals): void;
  reload(): void;
  handover(): void;
}

export function handleSignals(h: SignalHandlers): { off(): void } {
  let stops = 0;
  const onStop = (sig: NodeJS.Signals) => {
    stops++;
    if (stops > 1 && sig === 'SIGINT') {
      h.log.log('warn', 'second SIGINT: exiting now, the container is left as it is');
      process.exit(EXIT.interrupted);
    }
    h.stop(sig);
  };
  const onHup = () => h.reload();
  const onUsr2 = () => h.handover();
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGHUP', onHup);
  process.on('SIGUSR2', onUsr2);
  return {
    off() {
      process.off('SIGTERM', onStop);
      process.off('SIGINT', onStop);
      process.off('SIGHUP', onHup);
      process.off('SIGUSR2', onUsr2);
    },
  };
}
