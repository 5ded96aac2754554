// fetch-encodings against a real HTTP server on loopback, with genuine (rebuilt) tiktoken files.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import test from 'ava';
import { fetchEncoding } from '../../src/encodings/fetch.js';
import { ENCODINGS } from '../../src/encodings/known.js';
import { genuineEncoding } from '../helpers/tiktoken.js';
import { tempDir } from '../helpers/temp.js';

const CLI = new URL('../../src/cli/main.js', import.meta.url).pathname;
type Mode = 'genuine' | 'wrong' | 'cut' | 'endless';

async function serve(mode: Mode): Promise<{ server: Server; url: string }> {
  const files = new Map<string, Buffer>();
  for (const e of ENCODINGS)
    files.set(`/${e.file}`, await genuineEncoding(e.file.replace('.tiktoken', '') as 'o200k_base'));
  const server = createServer((req, res) => {
    const body = files.get(req.url ?? '');
    if (!body) return void res.writeHead(404).end();
    if (mode === 'wrong') return void res.writeHead(200).end(body.subarray(0, body.length - 10));
    if (mode === 'endless') {
      // The file, then more of it, forever: a download must stop at the size the file can be.
      res.writeHead(200);
      const more = () => void (!res.destroyed && res.write(body, () => setImmediate(more)));
      more();
      return;
    }
    if (mode === 'cut') {
      res.writeHead(200, { 'content-length': String(body.length) });
      res.write(body.subarray(0, 100_000));
      setTimeout(() => res.destroy(), 50);
      return;
    }
    res.writeHead(200).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { server, url: `http://127.0.0.1:${port}/` };
}

async function cli(dir: string, args: string[]): Promise<{ code: number; out: string }> {
  const cfg = join(dir, 'config.yaml');
  await writeFile(cfg, `paths:\n  encodings: ${join(dir, 'enc')}\n`);
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'fetch-encodings', '--config', cfg, ...args], (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

const sha = async (p: string) =>
  createHash('sha256')
    .update(await readFile(p))
    .digest('hex');

test('genuine files are fetched, verified against the published SHA-256, and kept on a second run', async (t) => {
  const { server, url } = await serve('genuine');
  const dir = await tempDir(t, 'gptoss-enc-');
  try {
    const r = await cli(dir, ['--base-url', url]);
    t.is(r.code, 0, r.out);
    for (const e of ENCODINGS) t.is(await sha(join(dir, 'enc', e.file)), e.sha256);
    t.regex(r.out, /o200k_base\.tiktoken: fetched \(3613922 bytes\), SHA-256 verified/);
    const again = await cli(dir, ['--base-url', url]);
    t.regex(again.out, /already in place/);
  } finally {
    server.close();
  }
});

for (const mode of ['wrong', 'cut'] as const) {
  test(`a ${mode === 'wrong' ? 'wrong' : 'broken-off'} download leaves nothing under the real name`, async (t) => {
    const { server, url } = await serve(mode);
    const dir = await tempDir(t, 'gptoss-enc-');
    try {
      const r = await cli(dir, ['--base-url', url]);
      t.is(r.code, 5);
      t.regex(r.out, mode === 'wrong' ? /SHA-256 [0-9a-f]{64} is not tiktoken's/ : /GET http/);
      t.deepEqual(await readdir(join(dir, 'enc')), [], 'no file, no partial left behind');
    } finally {
      server.close();
    }
  });
}

test('--no-verify accepts custom files', async (t) => {
  const { server, url } = await serve('wrong');
  const dir = await tempDir(t, 'gptoss-enc-');
  try {
    const r = await cli(dir, ['--base-url', url, '--no-verify']);
    t.is(r.code, 0, r.out);
    t.deepEqual((await readdir(join(dir, 'enc'))).sort(), ['cl100k_base.tiktoken', 'o200k_base.tiktoken']);
  } finally {
    server.close();
  }
});

test('no server: a clear error naming the URL', async (t) => {
  const dir = await tempDir(t, 'gptoss-enc-');
  const { server, url } = await serve('genuine');
  await new Promise((r) => server.close(r));
  const r = await cli(dir, ['--base-url', url]);
  t.is(r.code, 5);
  t.regex(r.out, /GET http:\/\/127\.0\.0\.1:\d+\/o200k_base\.tiktoken: ECONNREFUSED/);
});

test('an endless download is cut off at the published size; nothing is left behind', async (t) => {
  const { server, url } = await serve('endless');
  const dir = await tempDir(t, 'gptoss-enc-');
  try {
    const r = await cli(dir, ['--base-url', url]);
    t.is(r.code, 5);
    t.regex(r.out, /o200k_base\.tiktoken: GET .*: more than 3613922 bytes \(the published file is 3613922 bytes\)/);
    t.deepEqual(await readdir(join(dir, 'enc')), []);
    const custom = await cli(dir, ['--base-url', url, '--no-verify']);
    t.regex(custom.out, /more than 67108864 bytes \(the limit for a custom file is 67108864 bytes\)/);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test('a symlink planted where the partial file used to go is not followed', async (t) => {
  const { server, url } = await serve('genuine');
  const dir = await tempDir(t, 'gptoss-enc-');
  const victim = join(dir, 'victim');
  await writeFile(victim, 'precious\n');
  // The old, predictable name: .FILE.partial-PID (this process fetches, so the PID is ours).
  for (const e of ENCODINGS) await symlink(victim, join(dir, `.${e.file}.partial-${process.pid}`));
  try {
    for (const e of ENCODINGS) t.is((await fetchEncoding(dir, e, url, true)).result, 'fetched');
    t.is(await readFile(victim, 'utf8'), 'precious\n', 'the symlink target is untouched');
    t.is(await sha(join(dir, 'o200k_base.tiktoken')), ENCODINGS[0]?.sha256 ?? '');
  } finally {
    server.close();
  }
});
