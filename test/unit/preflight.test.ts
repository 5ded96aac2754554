// Preflight checks as pure functions, the pull's progress and errors, and the facts read from real files.
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { classifyPullError, describePull, type PullFailureKind } from '../../src/core/rules/pull-text.js';
import { authFor, PullProgress, registryOf } from '../../src/docker/pull-progress.js';
import {
  blocker,
  checkEncodings,
  checkHuggingface,
  checkPort,
  checkToken,
  evaluate,
  type Facts,
} from '../../src/core/rules/checks.js';
import { encodingFacts, huggingfaceFact, modelCacheDir, symlinkFacts } from '../../src/preflight/facts.js';
import { encodingsFingerprint, preflight } from '../../src/preflight/gather.js';
import { configSchema } from '../../src/config/schema.js';
import { FakeEngine } from '../helpers/fake-engine.js';
import { writeGenuineEncodings } from '../helpers/tiktoken.js';
import { tempDir } from '../helpers/temp.js';

test('encodings: genuine files verify; a damaged, an empty and a missing one each say so, with the fix', async (t) => {
  const dir = await tempDir(t, 'gptoss-enc-');
  t.deepEqual(
    (await encodingFacts(dir, true)).map((f) => f.state),
    ['missing', 'missing'],
  );
  const missing = checkEncodings({ dir, verify: true, files: await encodingFacts(dir, true) });
  t.is(missing.status, 'fail');
  t.is(missing.waitFor, 'encodings');
  t.is(missing.fix, 'gptoss-supervisor fetch-encodings');
  await writeGenuineEncodings(dir);
  const good = await encodingFacts(dir, true);
  t.deepEqual(
    good.map((f) => f.state),
    ['ok', 'ok'],
  );
  t.is(checkEncodings({ dir, verify: true, files: good }).status, 'pass');
  const fp = encodingsFingerprint(good);
  t.regex(fp ?? '', /^[0-9a-f]{16}$/);
  await writeFile(join(dir, 'o200k_base.tiktoken'), 'IQ== 0\n');
  await writeFile(join(dir, 'cl100k_base.tiktoken'), '');
  const bad = await encodingFacts(dir, true);
  t.deepEqual(
    bad.map((f) => f.state),
    ['mismatch', 'empty'],
  );
  const r = checkEncodings({ dir, verify: true, files: bad }, 'gptoss-supervisor fetch-encodings --config /x.yaml');
  t.regex(
    r.detail,
    /o200k_base\.tiktoken is damaged or not the published file \(SHA-256 [0-9a-f]{12}\.\.\., expected 446a9538cb6c/,
  );
  t.regex(r.detail, /expected 446a9538cb6c\.\.\.\); .*cl100k_base\.tiktoken is empty/);
  t.regex(
    r.fix ?? '',
    /^gptoss-supervisor fetch-encodings --config \/x\.yaml \(replaces damaged files; for custom files set /,
  );
  t.regex(r.fix ?? '', /for custom files set encodings\.verify: false\)$/);
  const custom = await encodingFacts(dir, false);
  t.deepEqual(
    custom.map((f) => f.state),
    ['ok', 'empty'],
    'verify: false accepts any content, not an empty file',
  );
  t.not(encodingsFingerprint(custom), fp, 'different content, different fingerprint');
});

test('model cache folder: missing, a file, fine; the model counts as cached once a snapshot exists', async (t) => {
  const root = await tempDir(t, 'gptoss-hf-');
  const dir = join(root, 'huggingface');
  t.deepEqual(await huggingfaceFact(dir, 'openai/gpt-oss-120b', false), { state: 'missing', modelCached: false });
  await writeFile(dir, 'x');
  t.is((await huggingfaceFact(dir, 'openai/gpt-oss-120b', false)).state, 'not-dir');
  const d2 = join(root, 'hf2');
  await mkdir(join(modelCacheDir(d2, 'openai/gpt-oss-120b'), 'snapshots', 'abc'), { recursive: true });
  t.deepEqual(await huggingfaceFact(d2, 'openai/gpt-oss-120b', false), { state: 'ok', modelCached: true });
  t.is(modelCacheDir('/vllm/huggingface', 'openai/gpt-oss-120b'), '/vllm/huggingface/hub/models--openai--gpt-oss-120b');
  const r = checkHuggingface({ dir, fact: { state: 'missing', modelCached: false }, modelId: 'm' });
  t.deepEqual([r.status, r.fix, r.waitFor], ['fail', `mkdir -p ${dir}`, 'huggingface']);
});

test('HF token: present passes; absent warns when the model is cached, fails when it must be downloaded', (t) => {
  t.is(
    checkToken({ source: 'file /etc/gptoss/hf_token', file: '/etc/gptoss/hf_token', modelCached: false }).status,
    'pass',
  );
  t.is(checkToken({ file: '/etc/gptoss/hf_token', modelCached: true }).status, 'warn');
  const f = checkToken({ file: '/etc/gptoss/hf_token', modelCached: false });
  t.deepEqual([f.status, f.waitFor], ['fail', 'hf-token']);
  t.regex(f.fix ?? '', /\/etc\/gptoss\/hf_token \(mode 0600\)/);
});

test('port: free or ours pass; taken fails naming the holder', (t) => {
  t.is(checkPort({ port: 8000, fact: { state: 'ours' } }).status, 'pass');
  const r = checkPort({ port: 8000, fact: { state: 'taken', holder: 'container other-vllm' } });
  t.deepEqual([r.status, r.detail, r.waitFor], ['fail', 'port 8000 is in use by container other-vllm', 'port']);
  t.is(checkPort({ port: 80, fact: { state: 'unknown', why: 'EACCES' } }).status, 'warn');
});

test('evaluate: the operator order; the first blocking failure is what the daemon waits for', (t) => {
  const facts: Facts = {
    engine: { ok: true, version: 'Docker 28.2.2' },
    image: { present: false, image: 'img' },
    gpuRuntime: { ok: false, runtimes: ['runc'] },
    token: { file: '/t', modelCached: true },
    port: { port: 8000, fact: { state: 'free' } },
    gpuMemory: { status: 'unknown', detail: 'nvidia-smi not found' },
  };
  const res = evaluate(facts);
  t.deepEqual(
    res.map((r) => [r.id, r.status]),
    [
      ['engine', 'pass'],
      ['image', 'fail'],
      ['gpu-runtime', 'fail'],
      ['hf-token', 'warn'],
      ['port', 'pass'],
      ['gpu-memory', 'warn'],
    ],
  );
  t.is(blocker(res)?.id, 'image');
  t.regex(res[2]?.fix ?? '', /nvidia-ctk runtime configure --runtime=docker/);
});

test("pull progress: bytes and layers from Docker's records", (t) => {
  const p = new PullProgress();
  t.is(describePull(p.summary()), 'starting');
  p.add({ status: 'Pulling from nvidia/vllm', id: '25.09-py3' });
  p.add({ status: 'Pulling fs layer', id: 'aaaaaaaaaaaa' });
  p.add({ status: 'Pulling fs layer', id: 'bbbbbbbbbbbb' });
  p.add({
    status: 'Downloading',
    id: 'aaaaaaaaaaaa',
    progressDetail: { current: 1_500_000_000, total: 3_000_000_000 },
  });
  p.add({ status: 'Downloading', id: 'bbbbbbbbbbbb', progressDetail: { current: 200_000_000, total: 6_800_000_000 } });
  t.is(describePull(p.summary()), '1.7 GB of 9.8 GB, 0 of 2 layers');
  p.add({ status: 'Download complete', id: 'aaaaaaaaaaaa' });
  p.add({ status: 'Pull complete', id: 'aaaaaaaaaaaa' });
  p.add({ status: 'Already exists', id: 'cccccccccccc' });
  t.deepEqual(p.summary(), { layers: 3, layersDone: 2, bytes: 3_200_000_000, totalBytes: 9_800_000_000 });
});

const pullErrors: Array<[string, PullFailureKind]> = [
  ['manifest for localhost:5000/x:1 not found: manifest unknown: manifest unknown', 'not-found'],
  [
    "pull access denied for nosuch/image, repository does not exist or may require 'docker login': denied: requested " +
      'access to the resource is denied',
    'not-found',
  ],
  ['Head "http://127.0.0.1:5000/v2/gptoss/vllm/manifests/t": no basic auth credentials', 'auth'],
  ['unauthorized: authentication required', 'auth'],
  ['Get "http://127.0.0.1:5000/v2/": dial tcp 127.0.0.1:5000: connect: connection refused', 'network'],
  ['received unexpected HTTP status: 502 Bad Gateway', 'network'],
  ['unexpected EOF', 'network'],
];
for (const [msg, kind] of pullErrors) {
  test(`pull error "${msg.slice(0, 50)}..." is ${kind}`, (t) => t.is(classifyPullError(msg), kind));
}

test("registry credentials from a docker config.json, matched to the image's registry", (t) => {
  const cfg = JSON.stringify({
    auths: {
      'nvcr.io': { auth: Buffer.from('$oauthtoken:nvapi-secret').toString('base64') },
      'https://index.docker.io/v1/': { auth: Buffer.from('me:pw').toString('base64') },
      'localhost:5000': { username: 'u', password: 'p' },
    },
  });
  t.deepEqual(authFor('nvcr.io/nvidia/vllm:25.09-py3', cfg), {
    username: '$oauthtoken',
    password: 'nvapi-secret',
    serveraddress: 'nvcr.io',
  });
  t.deepEqual(authFor('library/ubuntu:24.04', cfg), { username: 'me', password: 'pw', serveraddress: 'docker.io' });
  t.deepEqual(authFor('localhost:5000/x', cfg), { username: 'u', password: 'p', serveraddress: 'localhost:5000' });
  t.is(authFor('ghcr.io/x/y', cfg), undefined);
  t.is(authFor('nvcr.io/x', 'not json'), undefined);
  t.is(authFor('nvcr.io/x', undefined), undefined);
  t.deepEqual(
    [
      registryOf('nvcr.io/nvidia/vllm:1'),
      registryOf('ubuntu'),
      registryOf('127.0.0.1:5000/a/b'),
      registryOf('gptoss/vllm'),
    ],
    ['nvcr.io', 'docker.io', '127.0.0.1:5000', 'docker.io'],
  );
});

test('a mount that leads elsewhere through a symlink is a warning naming where (Docker mounts that)', async (t) => {
  const dir = await tempDir(t, 'gptoss-link-');
  await mkdir(join(dir, 'real'));
  await symlink(join(dir, 'real'), join(dir, 'hf'));
  const links = await symlinkFacts({ encodings: dir, huggingface: join(dir, 'hf') });
  t.deepEqual(links, [{ key: 'paths.huggingface', path: join(dir, 'hf'), target: join(dir, 'real') }]);
  const r = evaluate({ symlinks: links });
  t.is(r[0]?.status, 'warn');
  t.regex(
    r[0]?.detail ?? '',
    /paths\.huggingface \(.*\/hf\) leads to .*\/real through a symlink: Docker mounts where it leads/,
  );
});

test('a mount leading somewhere refused blocks the start: a link, a folder above, a dangling one', async (t) => {
  const dir = await tempDir(t, 'gptoss-link-');
  await mkdir(join(dir, 'real'));
  await symlink('/etc', join(dir, 'etc-link'));
  // Where nothing is (or where the unit's sandbox hides): still judged by where it leads.
  await symlink('/root/.ssh/gptoss-not-there', join(dir, 'dangling'));
  const links = await symlinkFacts({
    encodings: [join(dir, 'real'), join(dir, 'dangling')],
    huggingface: join(dir, 'etc-link'),
    // Not there yet: Docker would create it, under wherever the link above it leads.
    cache: [join(dir, 'etc-link', 'gptoss-not-there', 'vllm')],
  });
  t.deepEqual(links, [
    { key: 'paths.encodings', path: join(dir, 'dangling'), target: '/root/.ssh/gptoss-not-there' },
    { key: 'paths.huggingface', path: join(dir, 'etc-link'), target: '/etc' },
    {
      key: 'paths.cache',
      path: join(dir, 'etc-link', 'gptoss-not-there', 'vllm'),
      target: '/etc/gptoss-not-there/vllm',
    },
  ]);
  const r = evaluate({ symlinks: links });
  t.is(r[0]?.status, 'fail');
  t.is(r[0]?.waitFor, 'mounts');
  t.regex(
    r[0]?.detail ?? '',
    /paths\.encodings \(.*\/dangling\) leads to \/root\/\.ssh\/gptoss-not-there: .* root's home/,
  );
  t.regex(r[0]?.detail ?? '', /paths\.huggingface \(.*\/etc-link\) leads to \/etc: \/etc is a system folder/);
  t.regex(
    r[0]?.detail ?? '',
    /paths\.cache \(.*\/vllm\) leads to \/etc\/gptoss-not-there\/vllm: .* is a system folder/,
  );
  t.regex(r[0]?.fix ?? '', /a folder of its own/);
  t.is(blocker(r)?.id, 'symlinks');
});

test('paths.cache and its mounted subfolders are looked at before a start, like the other paths', async (t) => {
  const dir = await tempDir(t, 'gptoss-cache-');
  await mkdir(join(dir, 'hf'));
  await mkdir(join(dir, 'enc'));
  await writeGenuineEncodings(join(dir, 'enc'));
  await mkdir(join(dir, 'cache'));
  // The cache folder is fine; one of the subfolders Docker mounts is a link to /etc.
  await symlink('/etc', join(dir, 'cache', 'triton'));
  const config = configSchema.parse({
    paths: { encodings: join(dir, 'enc'), huggingface: join(dir, 'hf'), cache: join(dir, 'cache') },
    gpu: { checkMemory: false },
    container: { port: 1 + (process.pid % 20000) + 40000 },
  });
  const p = await preflight({ config, engine: new FakeEngine(), tokenSource: 'test', gpuRuntime: false });
  const links = p.results.find((r) => r.id === 'symlinks');
  t.is(links?.status, 'fail', JSON.stringify(p.results));
  t.regex(links?.detail ?? '', /paths\.cache \(.*\/cache\/triton\) leads to \/etc/);
  t.is(p.blocker?.id, 'symlinks');
});
