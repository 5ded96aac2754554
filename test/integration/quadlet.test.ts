// `export --format quadlet` read by Podman's own Quadlet generator (trixie's podman 5.4, scripts/quadlet.sh):
// the unit it generates runs the guide's container with the health checks and Notify=healthy.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { CLI } from '../helpers/daemon.js';
import { GUIDE_IMAGE, GUIDE_NAME, guideOption, VLLM_SERVE } from '../fixtures/guide.js';
import { tempDir } from '../helpers/temp.js';
import { unitWords } from '../helpers/unit-words.js';

const run = promisify(execFile);
const ROOT = new URL('../../../', import.meta.url).pathname;
const literally = (s: string) => new RegExp(s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'));

test("Podman's Quadlet generator accepts the export and generates the guide's container", async (t) => {
  const quadlet = (await run('bash', [join(ROOT, 'scripts/quadlet.sh')], { timeout: 300_000 })).stdout.trim();
  const dir = await tempDir(t, 'gptoss-quadlet-');
  const config = join(dir, 'config.yaml');
  await writeFile(config, 'container:\n  bindAddress: 127.0.0.1\n');
  const { stdout } = await run(process.execPath, [CLI, 'export', '--format', 'quadlet', '--config', config]);
  await writeFile(join(dir, 'vllm-gpt-oss.container'), stdout);
  const gen = await run(quadlet, ['-dryrun'], { env: { ...process.env, QUADLET_UNIT_DIRS: dir } });
  t.log(gen.stderr.trim() || '(no warnings)');
  const unit = gen.stdout;
  t.regex(unit, /---vllm-gpt-oss\.service---/);
  const exec = /^ExecStart=(.*)$/m.exec(unit)?.[1] ?? '';
  for (const flag of [
    `--name ${GUIDE_NAME}`,
    '--sdnotify=healthy',
    '--ipc=host',
    '--ulimit memlock=-1:-1',
    '--publish 127.0.0.1:8000:8000',
    ...guideOption('-v').map((v) => `-v ${v}`),
    '--device nvidia.com/gpu=all',
    '--secret gptoss-hf-token,type=env,target=HF_TOKEN',
    '--health-interval 10s',
    '--health-retries 3',
    '--health-on-failure kill',
    '--health-startup-retries 90',
    '--stop-timeout 30',
  ])
    t.true(exec.includes(flag), `${flag} in ${exec}`);
  // The guide's image and its command, as far as the quantization.
  t.regex(exec, literally([GUIDE_IMAGE, ...VLLM_SERVE.slice(0, 5)].join(' ')));
  t.regex(unit, /^TimeoutStartSec=960$/m);
  t.regex(unit, /^Restart=always$/m);
});

test('Quadlet reads "%", "$", quotes and spaces back as written: one ExecStart, nothing injected', async (t) => {
  const quadlet = (await run('bash', [join(ROOT, 'scripts/quadlet.sh')], { timeout: 300_000 })).stdout.trim();
  const dir = await tempDir(t, 'gptoss-quadlet-');
  const config = join(dir, 'config.yaml');
  const served = 'gpt 100%n $HOME';
  const template = `{{ '%s' }} "q" \\ end`;
  await writeFile(
    config,
    `model:\n  servedName: ${JSON.stringify(served)}\n  extraArgs: ["--chat-template", ${JSON.stringify(template)}]\n` +
      'container:\n  env:\n    NOTE: "50% of $PATH here"\n',
  );
  const { stdout } = await run(process.execPath, [CLI, 'export', '--format', 'quadlet', '--config', config]);
  await writeFile(join(dir, 'vllm-gpt-oss.container'), stdout);
  const unit = (await run(quadlet, ['-dryrun'], { env: { ...process.env, QUADLET_UNIT_DIRS: dir } })).stdout;
  t.is([...unit.matchAll(/^ExecStart=/gm)].length, 1, unit);
  t.false(/^ExecStart(Pre|Post)=/m.test(unit), unit);
  const words = unitWords(/^ExecStart=(.*)$/m.exec(unit)?.[1] ?? '');
  const at = words.indexOf('--served-model-name');
  t.deepEqual(words.slice(at, at + 4), ['--served-model-name', served, '--chat-template', template]);
  t.true(words.includes('NOTE=50% of $PATH here'), words.join(' | '));
  t.regex(unit, /^Description=gpt 100%%n \$HOME on vLLM/m);
});
