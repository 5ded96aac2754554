// The journal's native protocol: structured records with PRIORITY, MESSAGE_ID and our own fields.
import { fstatSync } from 'node:fs';
import { sendDatagram } from '../util/dgram.js';

export const JOURNAL_SOCKET = '/run/systemd/journal/socket';

/** syslog priorities, as journalctl -p reads them. */
export const PRIORITY = { error: 3, warn: 4, info: 6, debug: 7 } as const;

/**
 * Stable MESSAGE_IDs (journalctl MESSAGE_ID=...) for the events an operator greps for. Never
 * change one: scripts and alerts depend on them. Listed in the README.
 */
export const MESSAGE_IDS: Record<string, string> = {
  'supervisor-started': '6a3b1e0d5c2f4f0e9d1b7a8c4e2f0a11',
  'supervisor-stopping': '6a3b1e0d5c2f4f0e9d1b7a8c4e2f0a12',
  'supervisor-stopped': '6a3b1e0d5c2f4f0e9d1b7a8c4e2f0a13',
  'container-started': '0f4d2a9e7b6c4c1d8e3a5b2c9d0e1f21',
  'container-ready': '0f4d2a9e7b6c4c1d8e3a5b2c9d0e1f22',
  'restart-scheduled': '0f4d2a9e7b6c4c1d8e3a5b2c9d0e1f23',
  'container-restarting': '0f4d2a9e7b6c4c1d8e3a5b2c9d0e1f24',
  'health-failed': '0f4d2a9e7b6c4c1d8e3a5b2c9d0e1f25',
  waiting: '0f4d2a9e7b6c4c1d8e3a5b2c9d0e1f26',
  'docker-lost': '0f4d2a9e7b6c4c1d8e3a5b2c9d0e1f27',
  'docker-back': '0f4d2a9e7b6c4c1d8e3a5b2c9d0e1f28',
  'config-reloaded': 'b7e1c3d5a9f24e6b8c0d2e4f6a8b0c31',
  'config-rejected': 'b7e1c3d5a9f24e6b8c0d2e4f6a8b0c32',
  diagnosis: 'c2d4e6f8a0b24c6d8e0f2a4b6c8d0e41',
  'image-pulled': 'c2d4e6f8a0b24c6d8e0f2a4b6c8d0e42',
  'encodings-changed': 'c2d4e6f8a0b24c6d8e0f2a4b6c8d0e43',
  'load-phase': 'c2d4e6f8a0b24c6d8e0f2a4b6c8d0e44',
  'restart-budget': 'c2d4e6f8a0b24c6d8e0f2a4b6c8d0e45',
  rollback: 'c2d4e6f8a0b24c6d8e0f2a4b6c8d0e46',
  'memory-guard': 'c2d4e6f8a0b24c6d8e0f2a4b6c8d0e47',
  'gpu-telemetry': 'c2d4e6f8a0b24c6d8e0f2a4b6c8d0e48',
  'decode-speed': 'c2d4e6f8a0b24c6d8e0f2a4b6c8d0e49',
};

/** True when stderr is connected to the journal (systemd sets JOURNAL_STREAM=dev:inode). */
export function stderrIsJournal(env: NodeJS.ProcessEnv = process.env): boolean {
  const js = env['JOURNAL_STREAM'];
  if (!js) return false;
  const [dev, ino] = js.split(':');
  try {
    const st = fstatSync(2, { bigint: true });
    return String(st.dev) === dev && String(st.ino) === ino;
  } catch {
    return false;
  }
}

/** camelCase -> CAMEL_CASE; journal field names are upper case, digits and _, not leading _. */
export function fieldName(key: string): string {
  const n = key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9_]/g, '_')
    .toUpperCase()
    .replace(/^_+/, '');
  return /^[0-9]/.test(n) ? `F_${n}` : n;
}

/** One record in the native protocol: KEY=value lines, or KEY\n<u64 length><bytes>\n for multi-line values. */
export function encodeRecord(fields: Array<[string, string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of fields) {
    if (!v.includes('\n')) {
      parts.push(Buffer.from(`${k}=${v}\n`));
      continue;
    }
    const val = Buffer.from(v);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(val.length));
    parts.push(Buffer.from(`${k}\n`), len, val, Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}

export interface JournalEntry {
  priority: number;
  message: string;
  event?: string;
  fields?: Record<string, unknown>;
}

export function journalFields(e: JournalEntry, identifier: string): Array<[string, string]> {
  const out: Array<[string, string]> = [
    ['MESSAGE', e.message],
    ['PRIORITY', String(e.priority)],
    ['SYSLOG_IDENTIFIER', identifier],
  ];
  if (e.event) {
    out.push(['GPTOSS_EVENT', e.event]);
    const id = MESSAGE_IDS[e.event];
    if (id) out.push(['MESSAGE_ID', id]);
  }
  for (const [k, v] of Object.entries(e.fields ?? {})) {
    if (v === undefined || k === 'event') continue;
    out.push([fieldName(k), typeof v === 'string' ? v : JSON.stringify(v)]);
  }
  return out;
}

/** Sends to journald; returns the errno name when it could not (the caller falls back to stderr). */
export function sendToJournal(
  e: JournalEntry,
  identifier = 'gptoss-supervisor',
  socket = JOURNAL_SOCKET,
): string | undefined {
  return sendDatagram(socket, encodeRecord(journalFields(e, identifier)));
}
