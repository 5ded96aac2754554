// Log records out: the journal (native protocol, priorities and fields) under systemd, readable lines
// in a terminal, pino JSON on request. Secrets are scrubbed from all of it.
import { createRequire } from 'node:module';
import type { Logger as Pino, pino as PinoFactory } from 'pino';
import { PRIORITY, sendToJournal, stderrIsJournal } from './journal.js';
import { hideTokenShapes } from '../util/token-shape.js';

export type Level = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'auto' | 'text' | 'json' | 'journal';

export interface Logger {
  log(level: Level, msg: string, fields?: Record<string, unknown>): void;
  /** Adds a value that must never be written (the HF token); every later record is scrubbed of it. */
  secret(value: string | undefined): void;
  /** The text with every secret replaced, for what leaves by other ways (sd_notify STATUS=). */
  scrub(text: string): string;
  /** The format in use after `auto` was resolved. */
  readonly format: Exclude<LogFormat, 'auto'>;
}

const ORDER: Record<Level, number> = { debug: 20, info: 30, warn: 40, error: 50 };

export interface LoggerOptions {
  format: LogFormat;
  level: Level;
  /** Where lines go; stderr by default. */
  write?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
  journalSocket?: string;
}

/** auto: the journal when stderr is connected to it (systemd), else text. */
export function resolveFormat(format: LogFormat, env: NodeJS.ProcessEnv = process.env): Exclude<LogFormat, 'auto'> {
  if (format !== 'auto') return format;
  return stderrIsJournal(env) ? 'journal' : 'text';
}

/** pino, loaded only for JSON output: under systemd the journal gets records without it (~8 MiB saved). */
function loadPino(): typeof PinoFactory {
  return (createRequire(import.meta.url)('pino') as { pino: typeof PinoFactory }).pino;
}

export function createLogger(opts: LoggerOptions): Logger {
  const secrets: string[] = [];
  const scrub = (text: string): string => hideTokenShapes(secrets.reduce((t, s) => t.split(s).join('********'), text));
  const scrubFields = (f: Record<string, unknown> | undefined): Record<string, unknown> | undefined =>
    f ? (JSON.parse(scrub(JSON.stringify(f))) as Record<string, unknown>) : f;
  const write = opts.write ?? ((line: string) => process.stderr.write(line));
  const format = resolveFormat(opts.format, opts.env);
  const json: Pino | undefined =
    format === 'json'
      ? loadPino()(
          { level: opts.level, base: null, timestamp: loadPino().stdTimeFunctions.isoTime },
          { write: (s: string) => write(s) },
        )
      : undefined;
  let journalBroken = false;
  return {
    format,
    scrub,
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
      if (format === 'journal') {
        const { event, ...rest } = f ?? {};
        const err = sendToJournal(
          { priority: PRIORITY[level], message: m, event: typeof event === 'string' ? event : undefined, fields: rest },
          'gptoss-supervisor',
          opts.journalSocket,
        );
        if (!err) {
          journalBroken = false;
          return;
        }
        // The stream on stderr still reaches the journal; <N> sets the priority there.
        if (!journalBroken)
          write(
            `<4>journal socket unavailable (${err}); logging to stderr without structured fields until it is back\n`,
          );
        journalBroken = true;
        write(`<${PRIORITY[level]}>${m}\n`);
        return;
      }
      const time = new Date().toISOString().replace('T', ' ').slice(0, 19);
      write(`${time} ${level.padEnd(5)} ${m}\n`);
    },
  };
}
