// `fetch-encodings`: puts the two tiktoken files into paths.encodings, verified, atomically.
import { DEFAULT_BASE_URL, ENCODINGS } from '../encodings/known.js';
import { fetchEncoding } from '../encodings/fetch.js';
import type { Command } from './command.js';
import { EXIT } from './exit.js';
import { loadForCommand } from './config-arg.js';

export const fetchEncodingsCommand: Command = {
  help: `Usage: gptoss-supervisor fetch-encodings [--config PATH] [--base-url URL] [--no-verify]

Downloads o200k_base.tiktoken and cl100k_base.tiktoken into paths.encodings (/vllm/encodings).
Each is checked against tiktoken's published SHA-256 and renamed into place only when complete
and right: a failed download never leaves a half file under the real name. Files already there
and right are kept.

  --base-url URL   where to download from (default: encodings.baseUrl, else ${DEFAULT_BASE_URL})
  --no-verify      accept any content (custom files; also when encodings.verify is false)

Exit codes: 0 both files in place, 1 invalid config, 5 a download failed or did not verify.
`,
  options: {
    'base-url': { type: 'string' },
    'no-verify': { type: 'boolean' },
  },
  async run(values) {
    const loaded = await loadForCommand(values['config']);
    if (!loaded) return EXIT.config;
    const dir = loaded.config.paths.encodings;
    const base = (values['base-url'] as string | undefined) ?? loaded.config.encodings.baseUrl;
    const verify = values['no-verify'] !== true && loaded.config.encodings.verify;
    let ok = true;
    for (const enc of ENCODINGS) {
      const r = await fetchEncoding(dir, enc, base.endsWith('/') ? base : `${base}/`, verify);
      if (r.result === 'failed') {
        ok = false;
        process.stderr.write(`${enc.file}: ${r.error}\n`);
      } else {
        process.stdout.write(
          `${dir}/${enc.file}: ${r.result === 'present' ? 'already in place' : `fetched (${r.bytes} bytes)`}` +
            `${verify ? ', SHA-256 verified' : ''}\n`,
        );
      }
    }
    return ok ? EXIT.ok : EXIT.failed;
  },
};
