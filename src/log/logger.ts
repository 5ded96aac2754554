// Log records out: readable lines in a terminal, pino JSON on request; secrets scrubbed from all of it.
import { pino, type Logger as Pino } from 'pino';

export type Level = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'text' | 'json';

export interface Logger {
  log(level: Level, msg: string, fields?: Record<string, unknown>): void;
  /** Adds a value that must never be written (the HF token); every later record is scrubbed of it. */
  secret(value: string | undefined): void;
}

const ORDER: Record<Level, number> = { debug: 20, info: 30, warn: 40, error: 50 };

export interface LoggerOptions {
  format: LogFormat;
  level: Level;
  /** Where lines go; stderr by default. */
  write?: (line: string) => void;
}

export function createLogger(opts: LoggerOptions): Logger {
  const secrets: string[] = [];
  const scrub = (text: string): string => secrets.reduce((t, s) => t.split(s).join('********'), text);
  const scrubFields = (f: Record<string, unknown> | undefined): Record<string, unknown> | undefined =>
    f && secrets.length ? (JSON.parse(scrub(JSON.stringify(f))) as Record<string, unknown>) : f;
  const write = opts.write ?? ((line: string) => process.stderr.write(line));
  let json: Pino | undefined;
  if (opts.format === 'json') {
    json = pino({ level: opts.level, base: null, timestamp: pino.stdTimeFunctions.isoTime }, { write: (s: string) => write(s) });
  }
  return {
    secret(value) {
      // Very short values would scrub ordinary words; a real token is 30+ characters.
      if (value && value.length >= 8 && !secrets.includes(value)) secrets.push(value);
    },
    log(level, msg, fields) {
      if (ORDER[level] < ORDER[opts.level]) return;
      const m = scrub(msg);
      const f = scrubFields(fields);
      if (json) {
        json[level](f ?? {}, m);
        return;
      }
      const time = new Date().toISOString().replace('T', ' ').slice(0, 19);
      write(`${time} ${level.padEnd(5)} ${m}\n`);
    },
  };
}
