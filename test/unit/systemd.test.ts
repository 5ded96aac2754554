import { spawn } from 'node:child_process';
import { join } from 'node:path';
import test from 'ava';
import { extendDue, readyDue } from '../../src/core/machine/ready.js';
import { sendDatagram, socketAddress } from '../../src/util/dgram.js';
import { encodeRecord, fieldName, journalFields, MESSAGE_IDS } from '../../src/log/journal.js';
import { formatNotify, notifierFromEnv } from '../../src/systemd/notify.js';
import { createLogger } from '../../src/log/logger.js';
import { until } from '../helpers/poll.js';
import { tempDir } from '../helpers/temp.js';

test('notify: one field per line, STATUS kept on one line', (t) => {
  t.is(formatNotify({ READY: 1, STATUS: 'a\nb' }).toString(), 'READY=1\nSTATUS=a b');
});

test('notify: outside systemd it is inactive; the watchdog interval is half of WATCHDOG_USEC, our pid only', (t) => {
  t.false(notifierFromEnv({}).active);
  t.is(notifierFromEnv({ NOTIFY_SOCKET: '/run/x', WATCHDOG_USEC: '60000000' }, 5).watchdogIntervalMs, 30_000);
  t.is(
    notifierFromEnv({ NOTIFY_SOCKET: '/run/x', WATCHDOG_USEC: '60000000', WATCHDOG_PID: '4' }, 5).watchdogIntervalMs,
    undefined,
  );
});

test('abstract socket names start with a NUL byte', (t) => {
  t.deepEqual([...socketAddress('@sd')], [0, 115, 100]);
  t.is(socketAddress('/run/systemd/notify').toString(), '/run/systemd/notify');
});

const readyRows: Array<[string, string, boolean]> = [
  ['serving', 'starting', false],
  ['serving', 'loading', false],
  ['serving', 'serving', true],
  ['serving', 'backoff', true],
  ['serving', 'crashloop', true],
  ['serving', 'waiting', true],
  ['started', 'starting', true],
  ['started', 'loading', true],
  ['serving', 'stopping', false],
  ['started', 'stopped', false],
];
for (const [mode, phase, want] of readyRows) {
  test(`READY=1 with notify.ready ${mode} in ${phase}: ${want}`, (t) => {
    t.is(readyDue(mode as 'serving', phase as 'loading'), want);
  });
}

test('start-up is extended only while a load is under way', (t) => {
  t.true(extendDue('loading'));
  t.false(extendDue('crashloop'));
});

test('journal fields: names upper-cased, the MESSAGE_ID of the event, values as strings', (t) => {
  t.is(fieldName('restartCount'), 'RESTART_COUNT');
  t.is(fieldName('containerId'), 'CONTAINER_ID');
  const f = journalFields(
    { priority: 4, message: 'm', event: 'restart-scheduled', fields: { exitCode: 137, oomKilled: false } },
    'gptoss-supervisor',
  );
  t.deepEqual(Object.fromEntries(f), {
    MESSAGE: 'm',
    PRIORITY: '4',
    SYSLOG_IDENTIFIER: 'gptoss-supervisor',
    GPTOSS_EVENT: 'restart-scheduled',
    MESSAGE_ID: MESSAGE_IDS['restart-scheduled'],
    EXIT_CODE: '137',
    OOM_KILLED: 'false',
  });
});

test('journal encoding: plain KEY=value, and the length-prefixed form for multi-line values', (t) => {
  t.is(encodeRecord([['A', 'x']]).toString(), 'A=x\n');
  const b = encodeRecord([['M', 'a\nb']]);
  t.is(b.subarray(0, 2).toString(), 'M\n');
  t.is(b.readBigUInt64LE(2), 3n);
  t.is(b.subarray(10).toString(), 'a\nb\n');
});

test('MESSAGE_IDs are 128-bit hex and distinct', (t) => {
  const ids = Object.values(MESSAGE_IDS);
  t.true(ids.every((i) => /^[0-9a-f]{32}$/.test(i)));
  t.is(new Set(ids).size, ids.length);
});

test('the logger scrubs secrets from messages and fields', (t) => {
  const lines: string[] = [];
  const log = createLogger({ format: 'json', level: 'info', write: (l) => lines.push(l) });
  log.secret('hf_abcdefghijklmnop');
  log.log('info', 'token hf_abcdefghijklmnop here', { tail: ['x hf_abcdefghijklmnop'] });
  t.false(lines.join('').includes('hf_abcdefghijklmnop'));
  t.regex(lines.join(''), /token \*{8} here/);
});

test('under systemd with a dead journal socket: <N> priority prefixes on stderr', (t) => {
  const lines: string[] = [];
  const log = createLogger({
    format: 'journal',
    level: 'info',
    write: (l) => lines.push(l),
    journalSocket: '/nonexistent/socket',
  });
  log.log('error', 'boom');
  t.is(lines.at(-1), '<3>boom\n');
});

test('a datagram reaches an abstract socket and a path socket (python3 listens)', async (t) => {
  const dir = await tempDir(t, 'gptoss-dgram-');
  for (const addr of [`@gptoss-test-${process.pid}`, join(dir, 'notify')]) {
    const py = spawn('python3', [
      '-c',
      [
        'import socket,sys',
        's=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
        `a=sys.argv[1]; s.bind("\\0"+a[1:] if a.startswith("@") else a)`,
        'print("bound", flush=True)',
        's.settimeout(10); print(s.recv(4096).decode(), flush=True)',
      ].join('\n'),
      addr,
    ]);
    t.teardown(() => py.kill());
    let out = '';
    let err = '';
    py.stdout.on('data', (c: Buffer) => (out += c.toString()));
    py.stderr.on('data', (c: Buffer) => (err += c.toString()));
    await until(
      `python3 bound to ${addr}`,
      10_000,
      () => out.includes('bound'),
      () => `stdout ${JSON.stringify(out)}, stderr ${JSON.stringify(err)}`,
    );
    t.is(sendDatagram(addr, Buffer.from('READY=1\nSTATUS=hi')), undefined, addr);
    await new Promise((r) => py.on('exit', r)); // within its 10 s receive timeout
    t.true(out.includes('READY=1\nSTATUS=hi'), `${addr}: ${out}`);
  }
  t.is(sendDatagram(join(dir, 'nobody-here'), Buffer.from('x')), 'ENOENT');
});
