// `doctor`: every prerequisite the guide lists, checked on this host, with the fix for each failure.
import { DEFAULT_CONFIG_PATH } from '../config/load.js';
import { resolveToken } from '../config/token.js';
import { Engine } from '../docker/engine.js';
import { evaluate, type CheckResult } from '../core/rules/checks.js';
import { allFacts } from '../preflight/gather.js';
import type { Command } from './command.js';
import { EXIT } from './exit.js';
import { loadForCommand } from './config-arg.js';
import { join } from 'node:path';
import { goodImage } from '../core/model/rollback.js';
import { readStateIsolated } from '../reader/isolated.js';
import { resolveStateDir } from '../state/store.js';

const MARK: Record<CheckResult['status'], string> = { pass: '✓', warn: '!', fail: '✗' };

export function formatResult(r: CheckResult): string {
  const head = `${MARK[r.status]} ${r.id}: ${r.detail}`;
  return r.fix && r.status !== 'pass' ? `${head}\n    fix: ${r.fix}` : head;
}

/** The last known good spec's image is still here: a rollback runs it by digest (warned, not failed, when gone). */
async function lastGoodCheck(engine: Engine, stateDir: string): Promise<CheckResult> {
  const id = 'last-good';
  const r = await readStateIsolated(join(stateDir, 'state.json'));
  const good = 'record' in r ? r.record.good?.[0] : undefined;
  if (!good)
    return { id, status: 'pass', detail: 'no spec has served through its canary window yet (nothing to go back to)' };
  const ref = goodImage(good);
  const here = await engine.imageInfo(good.imageId).catch(() => undefined);
  const what = `the last known good spec ${good.hash.slice(0, 12)} runs ${ref}`;
  if (here) return { id, status: 'pass', detail: `${what} (present)` };
  return {
    id,
    status: 'warn',
    detail:
      `${what}, and that image is gone from this host: a rollback would have to pull it` +
      (good.digest ? '' : ' (and cannot: it was built here, it has no registry digest)'),
    fix: good.digest
      ? `docker pull ${good.digest}`
      : `rebuild or load the image ${good.image}, or keep images the supervisor may go back to`,
  };
}

export const doctorCommand: Command = {
  help: `Usage: gptoss-supervisor doctor [--config PATH] [--state-dir DIR]

Runs every check the deployment guide asks for, one line each:
  ✓ passed   ! a warning (does not stop the model)   ✗ failed, with the fix on the next line
Checks: the Docker engine answers; the image is present; Docker can give containers a GPU (the
nvidia runtime, CDI, or nvidia-container-runtime-hook) unless container.gpus is none; both tiktoken
files are in paths.encodings and match tiktoken's published SHA-256 (encodings.verify); the model
cache folder exists and is writable; an HF token is set (only a warning when the model is already
cached); the host port is free or held by the model container; enough GPU memory is free for
model.gpuMemoryUtilization (nvidia-smi; /proc/meminfo where memory is unified, as on the GB10);
the image of the last known good spec (where a rollback goes: the state record in --state-dir,
default /var/lib/gptoss-supervisor) is still on this host.

Exit codes: 0 every check passed (warnings allowed), 1 invalid config, 6 a check failed.
`,
  options: { 'state-dir': { type: 'string' } },
  async run(values) {
    const loaded = await loadForCommand(values['config']);
    if (!loaded) return EXIT.config;
    const { config, file } = loaded;
    const token = await resolveToken(config.hfToken);
    const engine = new Engine();
    const facts = await allFacts({ config, engine, tokenSource: token?.source });
    const fetch = `gptoss-supervisor fetch-encodings${file === DEFAULT_CONFIG_PATH ? '' : ` --config ${file}`}`;
    const results = [
      ...evaluate(facts, fetch),
      await lastGoodCheck(engine, resolveStateDir(values['state-dir'] as string | undefined)),
    ];
    for (const r of results) process.stdout.write(`${formatResult(r)}\n`);
    const failed = results.filter((r) => r.status === 'fail').length;
    process.stdout.write(
      failed ? `${failed} of ${results.length} checks failed\n` : `all ${results.length} checks passed\n`,
    );
    return failed ? EXIT.prereq : EXIT.ok;
  },
};
