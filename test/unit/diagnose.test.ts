// Each diagnosis from the words the real programs print (vLLM, huggingface_hub, Docker), one row each.
import test from 'ava';
import { diagnose } from '../../src/core/rules/diagnose.js';
import { fittingUtilization } from '../../src/core/rules/fit.js';
import type { DiagnosisCode, FailureInput, WaitReason } from '../../src/core/model/diagnosis.js';

const base: Omit<FailureInput, 'lines'> = {
  exitCode: 1,
  oom: false,
  utilization: 0.85,
  maxModelLen: 32768,
  port: 8000,
  encodingsDir: '/vllm/encodings',
  modelId: 'openai/gpt-oss-120b',
  image: 'nvcr.io/nvidia/vllm:25.09-py3',
};

const HARMONY = 'openai_harmony.HarmonyError: error downloading or loading vocab file: failed';
const PORT = "OSError: [Errno 98] error while attempting to bind on address ('0.0.0.0', 8000): address already in use";
const NOT_FOUND = 'huggingface_hub.errors.RepositoryNotFoundError: 404 Client Error. Repository Not Found for url: x';
const KV =
  "ValueError: To serve at least one request with the models's max seq len (131072), (4.5 GiB KV cache is needed, " +
  'which is larger than the available KV cache memory (2.1 GiB). Based on the available memory, the estimated ' +
  'maximum model length is 61440.';

const rows: Array<[string, string[], Partial<FailureInput>, DiagnosisCode, WaitReason | undefined]> = [
  [
    'HarmonyError (encodings missing)',
    [
      'Traceback (most recent call last):',
      '  File "/usr/local/lib/python3.12/dist-packages/openai_harmony/__init__.py", line 689, in load_harmony_encoding',
      'openai_harmony.HarmonyError: error downloading or loading vocab file: failed to download or load vocab file',
    ],
    {},
    'encodings',
    'encodings',
  ],
  [
    'free memory below gpuMemoryUtilization',
    [
      '(EngineCore_0 pid=239) ValueError: Free memory on device (39.6/119.7 GiB) on startup is less than desired GPU ' +
        'memory utilization (0.85, 101.74 GiB). Decrease GPU memory utilization or reduce GPU memory used by other ' +
        'processes.',
    ],
    {},
    'gpu-memory',
    undefined,
  ],
  [
    'CUDA out of memory',
    [
      'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 119.70 ' +
        'GiB of which 1.02 GiB is free.',
    ],
    {},
    'cuda-oom',
    undefined,
  ],
  [
    'HF 401 (gated, bad token)',
    [
      'requests.exceptions.HTTPError: 401 Client Error: Unauthorized for url: ' +
        'https://huggingface.co/api/models/openai/gpt-oss-120b/revision/main',
      'huggingface_hub.errors.GatedRepoError: 401 Client Error: Unauthorized for url: ' +
        'https://huggingface.co/api/models/openai/gpt-oss-120b/revision/main (Request ID: Root=1-abc)',
      'Invalid credentials in Authorization header',
    ],
    {},
    'hf-auth',
    'hf-token',
  ],
  [
    'HF 403 (no access to a gated repo)',
    [
      'huggingface_hub.errors.GatedRepoError: 403 Client Error. Cannot access gated repo for url ' +
        'https://huggingface.co/openai/x/resolve/main/config.json.',
    ],
    {},
    'hf-auth',
    'hf-token',
  ],
  [
    'HF 404 (no such model)',
    [
      '    raise _format(RepositoryNotFoundError, message, response) from e',
      'huggingface_hub.errors.RepositoryNotFoundError: 404 Client Error. Repository Not Found for url: ' +
        'https://huggingface.co/api/models/openai/gpt-oss-12b/revision/main.',
    ],
    {},
    'model-not-found',
    'model',
  ],
  [
    'Docker: port taken by a container',
    [
      'docker start failed (HTTP 500): driver failed programming external connectivity on endpoint vllm-gpt-oss ' +
        '(3f2a): Bind for 0.0.0.0:8000 failed: port is already allocated',
    ],
    { exitCode: null },
    'port-in-use',
    'port',
  ],
  [
    'Docker: port taken by a process',
    [
      'docker start failed (HTTP 500): failed to set up container networking: driver failed programming external ' +
        'connectivity on endpoint x: failed to bind host port for 0.0.0.0:8000:172.17.0.2:8000/tcp: address ' +
        'already in use',
    ],
    { exitCode: null },
    'port-in-use',
    'port',
  ],
  [
    'Docker: no GPU runtime',
    ['docker start failed (HTTP 500): could not select device driver "" with capabilities: [[gpu]]'],
    { exitCode: null },
    'gpu-runtime',
    'gpu-runtime',
  ],
  [
    "Docker: the NVIDIA hook gone from dockerd's PATH",
    [
      'docker start failed (HTTP 500): failed to create task for container: failed to create shim task: OCI runtime ' +
        'create failed: runc create failed: unable to start container process: error during container init: error ' +
        'running hook #0: error running hook: exec: "nvidia-container-runtime-hook": executable file not found in ' +
        '$PATH: unknown',
    ],
    { exitCode: null },
    'gpu-runtime',
    'gpu-runtime',
  ],
  [
    'Docker: image gone',
    ['docker create failed (HTTP 404): No such image: nvcr.io/nvidia/vllm:25.09-py3'],
    { exitCode: null },
    'image-missing',
    'image',
  ],
  [
    'vllm serve refuses a flag (argparse)',
    ['usage: vllm serve [model_tag] [options]', 'vllm serve: error: unrecognized arguments: --max-num-seqz 64'],
    { exitCode: 2 },
    'bad-args',
    'config',
  ],
  ['OOM-killed, nothing in the log', ['INFO: loading weights'], { exitCode: 137, oom: true }, 'oom-killed', undefined],
  [
    'the engine core died (and nothing above says why)',
    ['ERROR 11-24 12:00:00 [core.py:1] EngineCore died unexpectedly, shutting down client.'],
    {},
    'engine-dead',
    undefined,
  ],
  ['something else', ['Segmentation fault (core dumped)'], { exitCode: 139 }, 'unknown', undefined],
];

for (const [name, lines, over, code, waitFor] of rows) {
  test(`diagnosis: ${name} -> ${code}`, (t) => {
    const d = diagnose({ ...base, ...over, lines });
    t.is(d.code, code);
    t.is(d.waitFor, waitFor, waitFor ? 'a restart cannot fix it: wait for the change' : 'restart with backoff');
    t.true(d.summary.length > 10 && d.remedy.length > 10);
  });
}

/**
 * Which failure a tail names when it holds two: not the last line printed, but the rule that explains
 * most (the table's order: a root cause over a symptom such as a CUDA OOM or a dead engine), wherever
 * each line is. On real logs that is what is right: the root cause is printed above the shutdown noise,
 * and the one corpus file with two causes (hf-auth/higgs-audio-123: a 404 that a 401 explains) is
 * right only this way. Each pair is tried in both orders.
 */
const PAIRS: Array<[string, string, string, DiagnosisCode]> = [
  ['a 401 and a HarmonyError', '401 Client Error: Unauthorized for url: x', HARMONY, 'encodings'],
  [
    'a CUDA OOM and a taken port',
    'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2 GiB',
    PORT,
    'port-in-use',
  ],
  ['a missing repository and a refused token', NOT_FOUND, '401 Client Error: Unauthorized for url: x', 'hf-auth'],
  [
    'a dead engine and a KV cache too small',
    'vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue.',
    KV,
    'kv-cache',
  ],
];

for (const [name, a, b, code] of PAIRS) {
  test(`diagnosis: ${name} -> ${code}, in either order`, (t) => {
    t.is(diagnose({ ...base, lines: [a, b] }).code, code, 'first order');
    t.is(diagnose({ ...base, lines: [b, a] }).code, code, 'second order');
  });
}

test('diagnosis: of two lines of the same failure, the last is quoted', (t) => {
  const d = diagnose({ ...base, lines: [PORT, 'noise', PORT.replace('8000', '8001')] });
  t.is(d.code, 'port-in-use');
  t.regex(d.evidence ?? '', /8001/);
});

test('diagnosis: free-memory quotes vLLM figures and suggests a utilization that fits', (t) => {
  const d = diagnose({
    ...base,
    lines: [
      'ValueError: Free memory on device (39.6/119.7 GiB) on startup is less than desired GPU memory utilization ' +
        '(0.85, 101.74 GiB).',
    ],
  });
  t.regex(d.summary, /39\.6 of 119\.7 GiB free.*0\.85 needs \(101\.74 GiB\)/);
  t.regex(d.remedy, /gpuMemoryUtilization to 0\.32/);
});

test('a utilization that fits: floored, with half a GiB of room; none when nothing fits', (t) => {
  t.is(fittingUtilization(39.6, 119.7), 0.32);
  t.is(fittingUtilization(79.2, 79.6), 0.98);
  t.is(fittingUtilization(2, 80), undefined);
});

test('the remedy for a missing encoding names the command that fetches it', (t) => {
  const d = diagnose({
    ...base,
    lines: [
      'openai_harmony.HarmonyError: error downloading or loading vocab file: failed to download or load vocab file',
    ],
  });
  t.regex(d.remedy, /gptoss-supervisor fetch-encodings/);
  t.regex(d.remedy, /\/vllm\/encodings/);
});
