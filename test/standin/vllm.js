#!/usr/bin/env node
// Stand-in for `vllm serve` (nvcr.io/nvidia/vllm:25.09-py3 serving gpt-oss-120b).
// Plain ES module, node built-ins only. Installed in the stand-in image as
// /opt/standin/vllm.mjs and started through /usr/local/bin/vllm.
// See README.md in this directory for the environment variables and the
// /standin/* control endpoints.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';

const VLLM_VERSION = '0.10.1.1+381074ae.nv25.09';
const PID = process.pid;
const ENGINE_PID = PID + 173;
const env = process.env;

// ---------------------------------------------------------------- output ---

process.stdout.on('error', () => {});
process.stderr.on('error', () => {});

function ts() {
  const d = new Date();
  const p = (n) => String(n).padStart(2, '0');
  return `${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
function out(line) {
  process.stdout.write(line + '\n');
}
function err(line) {
  process.stderr.write(line + '\n');
}
/**
 * One state of a tqdm bar, as tqdm writes it when stderr is not a terminal: the first state opens the
 * line, each later one redraws it after a carriage return, and only the bar's close ends the line
 * (Docker's log holds the whole bar back until then; an attach sees each state as it comes).
 */
function bar(text, first, last) {
  process.stderr.write(`${first ? '' : '\r'}${text}${last ? '\n' : ''}`);
}
const API = `(APIServer pid=${PID}) `;
/** A few of the variables vllm/envs.py knows; any other VLLM_* gets its "Unknown ... detected" warning. */
const KNOWN_VLLM_ENV = new Set([
  'VLLM_USE_V1',
  'VLLM_LOGGING_LEVEL',
  'VLLM_WORKER_MULTIPROC_METHOD',
  'VLLM_ATTENTION_BACKEND',
  'VLLM_USE_FLASHINFER_MXFP4_MOE',
  'VLLM_MXFP4_USE_MARLIN',
  'VLLM_CACHE_ROOT',
  'VLLM_API_KEY',
  'VLLM_HOST_IP',
  'VLLM_PORT',
  'VLLM_STANDIN',
]);
const ENG = `(EngineCore_0 pid=${ENGINE_PID}) `;
function info(src, msg, who = API) {
  out(`${who}INFO ${ts()} [${src}] ${msg}`);
}
function warn(src, msg, who = API) {
  out(`${who}WARNING ${ts()} [${src}] ${msg}`);
}
function error(src, msg, who = API) {
  err(`${who}ERROR ${ts()} [${src}] ${msg}`);
}
function uvi(msg) {
  out(`${API}INFO:     ${msg}`);
}

let exiting = false;
function exitAfterFlush(code) {
  if (exiting) return;
  exiting = true;
  let pending = 2;
  const done = () => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
  setTimeout(() => process.exit(code), 1000).unref();
}

// ----------------------------------------------------------- arguments ---

const USAGE = `usage: vllm [-h] [-v] {chat,complete,serve,bench,collect-env,run-batch} ...`;

function usageError(msg) {
  err(USAGE);
  err(`vllm: error: ${msg}`);
  exitAfterFlush(2);
}

function pyRepr(v) {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') return String(v);
  if (v instanceof PyFloat) return Number.isInteger(v.v) ? v.v.toFixed(1) : String(v.v);
  if (Array.isArray(v)) return '[' + v.map(pyRepr).join(', ') + ']';
  return `'${String(v).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
class PyFloat {
  constructor(v) {
    this.v = v;
  }
}

function parseHumanInt(s) {
  const m = /^(\d+(?:\.\d+)?)([kKmMgG]?)$/.exec(String(s));
  if (!m) return NaN;
  const mult = { '': 1, k: 1000, K: 1024, m: 1e6, M: 1024 * 1024, g: 1e9, G: 1024 ** 3 }[m[2]];
  return Math.round(Number(m[1]) * mult);
}

// Returns {cmd, model, opts, nonDefault} or null when it already exited.
function parseArgs(argv) {
  if (argv.length === 0) {
    usageError('the following arguments are required: subparser');
    return null;
  }
  const [cmd, ...rest] = argv;
  if (cmd === '-h' || cmd === '--help') {
    out(USAGE);
    out('');
    out('vLLM CLI (gptoss stand-in). Only `vllm serve MODEL [options]` is implemented.');
    exitAfterFlush(0);
    return null;
  }
  if (cmd === '-v' || cmd === '--version') {
    out(VLLM_VERSION);
    exitAfterFlush(0);
    return null;
  }
  if (cmd !== 'serve') {
    usageError(
      `argument subparser: invalid choice: '${cmd}' (choose from 'chat', 'complete', 'serve', 'bench', 'collect-env', 'run-batch')`,
    );
    return null;
  }
  const opts = { port: 8000, host: undefined };
  const nonDefault = {};
  let modelTag;
  const positionals = [];
  for (let i = 0; i < rest.length; i++) {
    let a = rest[i];
    if (a === '-h' || a === '--help') {
      out('usage: vllm serve [model_tag] [options]');
      exitAfterFlush(0);
      return null;
    }
    if (!a.startsWith('--') || a === '--') {
      positionals.push(a);
      continue;
    }
    let value;
    const eq = a.indexOf('=');
    if (eq > 0) {
      value = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    const name = a.slice(2);
    const key = name.replace(/-/g, '_');
    const takeValue = () => {
      if (value !== undefined) return value;
      if (i + 1 < rest.length && !rest[i + 1].startsWith('--')) return rest[++i];
      usageError(`argument --${name}: expected one argument`);
      return undefined;
    };
    switch (name) {
      case 'model': {
        const v = takeValue();
        if (v === undefined) return null;
        opts.model = v;
        nonDefault.model = v;
        break;
      }
      case 'port': {
        const v = takeValue();
        if (v === undefined) return null;
        if (!/^\d+$/.test(v)) {
          usageError(`argument --port: invalid int value: '${v}'`);
          return null;
        }
        opts.port = Number(v);
        if (opts.port !== 8000) nonDefault.port = opts.port;
        break;
      }
      case 'host': {
        const v = takeValue();
        if (v === undefined) return null;
        opts.host = v;
        nonDefault.host = v;
        break;
      }
      case 'gpu-memory-utilization': {
        const v = takeValue();
        if (v === undefined) return null;
        const f = Number(v);
        if (!Number.isFinite(f)) {
          usageError(`argument --gpu-memory-utilization: invalid float value: '${v}'`);
          return null;
        }
        opts.gpuMemoryUtilization = f;
        nonDefault.gpu_memory_utilization = new PyFloat(f);
        break;
      }
      case 'max-model-len': {
        const v = takeValue();
        if (v === undefined) return null;
        const n = parseHumanInt(v);
        if (!Number.isFinite(n)) {
          usageError(`argument --max-model-len: Invalid value '${v}'`);
          return null;
        }
        opts.maxModelLen = n;
        nonDefault.max_model_len = n;
        break;
      }
      case 'quantization': {
        const v = takeValue();
        if (v === undefined) return null;
        opts.quantization = v;
        nonDefault.quantization = v;
        break;
      }
      case 'served-model-name': {
        const names = [];
        if (value !== undefined) names.push(value);
        else while (i + 1 < rest.length && !rest[i + 1].startsWith('--')) names.push(rest[++i]);
        if (names.length === 0) {
          usageError('argument --served-model-name: expected at least one argument');
          return null;
        }
        opts.servedModelNames = names;
        nonDefault.served_model_name = names;
        break;
      }
      default: {
        // Unknown flags are accepted and echoed: `--flag value` or boolean `--flag`.
        let v = value;
        if (v === undefined && i + 1 < rest.length && !rest[i + 1].startsWith('--')) v = rest[++i];
        if (v === undefined) nonDefault[key] = !name.startsWith('no-');
        else if (/^-?\d+$/.test(v)) nonDefault[key] = Number(v);
        else if (/^-?\d*\.\d+(e-?\d+)?$/i.test(v)) nonDefault[key] = new PyFloat(Number(v));
        else nonDefault[key] = v;
      }
    }
  }
  if (positionals.length > 1) {
    usageError(`unrecognized arguments: ${positionals.slice(1).join(' ')}`);
    return null;
  }
  if (positionals.length === 1) {
    modelTag = positionals[0];
    opts.model = modelTag;
  }
  if (!opts.model) opts.model = 'Qwen/Qwen3-0.6B'; // vLLM's default model
  const ordered = {};
  if (modelTag !== undefined) ordered.model_tag = modelTag;
  Object.assign(ordered, nonDefault);
  if (modelTag !== undefined) ordered.model = modelTag;
  return { cmd, opts, nonDefault: ordered };
}

// ------------------------------------------------------------- settings ---

const parsed = parseArgs(process.argv.slice(2));
if (parsed) main(parsed);

function num(name, dflt) {
  const v = env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : dflt;
}

function main({ opts, nonDefault }) {
  const model = opts.model;
  const servedNames = opts.servedModelNames ?? [model];
  const servedName = servedNames[0];
  const maxModelLen = opts.maxModelLen ?? 131072;
  const gpuUtil = opts.gpuMemoryUtilization ?? 0.9;
  const loadSeconds = num('STANDIN_LOAD_SECONDS', 3);
  const stopSeconds = num('STANDIN_STOP_SECONDS', 0.5);
  const fastFail = env.STANDIN_FAST_FAIL === '1';
  // 119.6955 GiB displays as 119.7 and gives the real-looking 101.74 GiB for 0.85.
  const totalGiB = num('STANDIN_TOTAL_GIB', 119.6955);
  const freeGiB = num('STANDIN_FREE_GIB', 39.6);
  const controlFile = env.STANDIN_CONTROL_FILE || '/standin-control/mode.json';
  const fail = (env.STANDIN_FAIL || '').trim();
  // Tokens the KV cache holds: a longer --max-model-len is refused as vLLM V1 refuses it.
  const kvMaxLen = env.STANDIN_KV_MAX_LEN ? num('STANDIN_KV_MAX_LEN', 0) : undefined;
  const started = Date.now();

  let state = 'loading'; // loading | serving | stopping | dead
  let server = null;
  const timers = new Set();
  const later = (seconds, fn) => {
    const t = setTimeout(
      () => {
        timers.delete(t);
        fn();
      },
      Math.max(0, seconds * 1000),
    );
    timers.add(t);
    return t;
  };
  const clearAll = () => {
    for (const t of timers) clearTimeout(t);
    timers.clear();
  };

  // ------------------------------------------------------------ signals ---
  const hung = new Set();
  function shutdown(sig) {
    if (state === 'stopping' || state === 'dead' || exiting) return;
    const wasServing = state === 'serving';
    state = 'stopping';
    clearAll();
    if (wasServing) {
      uvi('Shutting down');
      uvi('Waiting for application shutdown.');
      uvi('Application shutdown complete.');
      uvi(`Finished server process [${PID}]`);
    } else {
      info('launcher.py:80', `Received ${sig} during startup; aborting engine initialization.`);
      uvi('Shutting down');
    }
    if (server) {
      server.close();
      for (const s of hung) s.destroy();
      server.closeAllConnections?.();
    }
    setTimeout(() => exitAfterFlush(0), stopSeconds * 1000);
  }
  if (env.STANDIN_IGNORE_SIGTERM === '1') {
    process.on('SIGTERM', () => warn('standin', 'Received SIGTERM; ignoring it (STANDIN_IGNORE_SIGTERM=1).'));
  } else {
    process.on('SIGTERM', () => shutdown('SIGTERM'));
  }
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => {});

  // ------------------------------------------------------------- failure ---
  const SITE = '/usr/local/lib/python3.12/dist-packages';
  function die(lines, code = 1) {
    if (exiting || state === 'stopping' || state === 'dead') return;
    state = 'dead';
    clearAll();
    if (server) server.close();
    // stdout and stderr are separate pipes that docker copies independently;
    // let the last stdout lines land first so the error really is the tail.
    process.stdout.write('', () =>
      setTimeout(() => {
        for (const l of lines) err(l);
        exitAfterFlush(code);
      }, 50),
    );
  }
  const engineTraceback = (inner) => [
    `${ENG}ERROR ${ts()} [core.py:700] EngineCore failed to start.`,
    `${ENG}ERROR ${ts()} [core.py:700] Traceback (most recent call last):`,
    `${ENG}ERROR ${ts()} [core.py:700]   File "${SITE}/vllm/v1/engine/core.py", line 691, in run_engine_core`,
    `${ENG}ERROR ${ts()} [core.py:700]     engine_core = EngineCoreProc(*args, **kwargs)`,
    `${ENG}ERROR ${ts()} [core.py:700]                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^`,
    ...inner.map((l) => `${ENG}ERROR ${ts()} [core.py:700] ${l}`),
    `${ENG}Process EngineCore_0:`,
    'Traceback (most recent call last):',
    '  File "/usr/lib/python3.12/multiprocessing/process.py", line 314, in _bootstrap',
    '    self.run()',
    `  File "${SITE}/vllm/v1/engine/core.py", line 704, in run_engine_core`,
    '    raise e',
  ];
  /** The engine core's traceback ending in `inner`, then the API server's "initialization failed" (vLLM V1). */
  const engineInitFailed = (inner) =>
    die([
      ...engineTraceback(inner),
      `${API}RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}`,
    ]);
  const apiPrefix = [
    `${API}Traceback (most recent call last):`,
    `${API}  File "/usr/local/bin/vllm", line 8, in <module>`,
    `${API}    sys.exit(main())`,
    `${API}  File "${SITE}/vllm/entrypoints/cli/main.py", line 54, in main`,
    `${API}    args.dispatch_function(args)`,
    `${API}  File "${SITE}/vllm/entrypoints/cli/serve.py", line 50, in cmd`,
    `${API}    uvloop.run(run_server(args))`,
  ];

  const failures = {
    harmony: () =>
      die([
        ...apiPrefix,
        `${API}  File "${SITE}/vllm/entrypoints/openai/api_server.py", line 1941, in run_server_worker`,
        `${API}    await init_app_state(engine_client, vllm_config, app.state, args)`,
        `${API}  File "${SITE}/vllm/entrypoints/openai/api_server.py", line 1682, in init_app_state`,
        `${API}    state.openai_serving_chat = OpenAIServingChat(`,
        `${API}  File "${SITE}/vllm/entrypoints/openai/serving_chat.py", line 116, in __init__`,
        `${API}    get_stop_tokens_for_assistant_actions())`,
        `${API}  File "${SITE}/vllm/entrypoints/harmony_utils.py", line 47, in get_encoding`,
        `${API}    _harmony_encoding = load_harmony_encoding(`,
        `${API}                        ^^^^^^^^^^^^^^^^^^^^^^`,
        `${API}  File "${SITE}/openai_harmony/__init__.py", line 689, in load_harmony_encoding`,
        `${API}    inner: _PyHarmonyEncoding = _load_harmony_encoding(name)`,
        `${API}                                ^^^^^^^^^^^^^^^^^^^^^^^^^^^^`,
        'openai_harmony.HarmonyError: error downloading or loading vocab file: failed to download or load vocab file',
      ]),
    'free-memory': () => {
      const want = (gpuUtil * totalGiB).toFixed(2);
      const fmt = (x) => (Math.round(x * 10) / 10).toFixed(1);
      const msg = `ValueError: Free memory on device (${fmt(freeGiB)}/${fmt(totalGiB)} GiB) on startup is less than desired GPU memory utilization (${gpuUtil}, ${want} GiB). Decrease GPU memory utilization or reduce GPU memory used by other processes.`;
      die([
        ...engineTraceback([
          `  File "${SITE}/vllm/v1/worker/gpu_worker.py", line 181, in init_device`,
          '    raise ValueError(',
          msg,
        ]),
        `  File "${SITE}/vllm/v1/worker/gpu_worker.py", line 181, in init_device`,
        '    raise ValueError(',
        `${API}RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}`,
        msg,
      ]);
    },
    'cuda-oom': () => {
      const msg =
        'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 119.70 GiB of which 1.02 GiB is free. Including non-PyTorch memory, this process has 116.61 GiB memory in use. Of the allocated memory 113.92 GiB is allocated by PyTorch, and 1.31 GiB is reserved by PyTorch but unallocated.';
      die([
        ...engineTraceback([
          `  File "${SITE}/vllm/v1/worker/gpu_model_runner.py", line 2853, in _dummy_run`,
          '    outputs = self.model(',
          msg,
        ]),
        `  File "${SITE}/torch/cuda/memory.py", line 172, in caching_allocator_alloc`,
        `${API}RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}`,
        'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 119.70 GiB of which 1.02 GiB is free.',
      ]);
    },
    'hf-401': () => {
      const url = `https://huggingface.co/api/models/${model}/revision/main`;
      const rid = `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${crypto.randomBytes(12).toString('hex')}`;
      die([
        ...apiPrefix.slice(0, 1),
        `${API}  File "${SITE}/huggingface_hub/utils/_http.py", line 409, in hf_raise_for_status`,
        `${API}    response.raise_for_status()`,
        `${API}  File "${SITE}/requests/models.py", line 1026, in raise_for_status`,
        `${API}    raise HTTPError(http_error_msg, response=self)`,
        `requests.exceptions.HTTPError: 401 Client Error: Unauthorized for url: ${url}`,
        '',
        'The above exception was the direct cause of the following exception:',
        '',
        ...apiPrefix,
        `${API}  File "${SITE}/transformers/utils/hub.py", line 479, in cached_files`,
        `${API}  File "${SITE}/huggingface_hub/hf_api.py", line 2660, in model_info`,
        `${API}    hf_raise_for_status(r)`,
        `huggingface_hub.errors.GatedRepoError: 401 Client Error: Unauthorized for url: ${url} (Request ID: ${rid})`,
        `Cannot access gated repo for url ${url}.`,
        'Invalid credentials in Authorization header',
      ]);
    },
    // A tiktoken file that is there but not the published one (openai/harmony checks its hash).
    'tiktoken-mismatch': () =>
      die([
        ...apiPrefix,
        `${API}  File "${SITE}/openai_harmony/__init__.py", line 689, in load_harmony_encoding`,
        `${API}    inner: _PyHarmonyEncoding = _load_harmony_encoding(name)`,
        'openai_harmony.HarmonyError: invalid tiktoken vocab file: hash mismatch: computed=' +
          '0f2d5e1c7a4b3e9d8c6f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d, expected=' +
          '446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d',
      ]),
    // An image without kernels for this GPU (the words of vllm#31740 and vllm#43969).
    'unsupported-gpu': () =>
      engineInitFailed([
        `  File "${SITE}/vllm/model_executor/layers/quantization/mxfp4.py", line 190, in process_weights_after_loading`,
        '    raise NotImplementedError(',
        'NotImplementedError: MXFP4 grouped gemm is not supported on this device',
      ]),
    // FlashInfer's JIT for a GPU the image has no kernels for (vllm#31740, on a GB10: its core.py lines).
    'cuda-arch': () =>
      engineInitFailed([
        `  File "${SITE}/flashinfer/compilation_context.py", line 62, in get_nvcc_flags_list`,
        '    raise RuntimeError(',
        'RuntimeError: No supported CUDA architectures found for major versions [10].',
      ]),
    // The KV cache cannot hold one request of max_model_len (vllm/v1/core/kv_cache_utils.py's words);
    // with STANDIN_KV_MAX_LEN the estimate is that capacity.
    'kv-cache': () => {
      const est = kvMaxLen ?? Math.floor(maxModelLen * 0.62);
      engineInitFailed([
        `  File "${SITE}/vllm/v1/core/kv_cache_utils.py", line 686, in check_enough_kv_cache_memory`,
        '    raise ValueError(',
        `ValueError: To serve at least one request with the models's max seq len (${maxModelLen}), (4.54 GiB KV cache is needed, which is larger than the available KV cache memory (2.82 GiB). Based on the available memory, the estimated maximum model length is ${est}. Try increasing \`gpu_memory_utilization\` or decreasing \`max_model_len\` when initializing the engine.`,
      ]);
    },
    'sampler-oom': () =>
      engineInitFailed([
        `  File "${SITE}/vllm/v1/worker/gpu_model_runner.py", line 2411, in _dummy_sampler_run`,
        '    raise RuntimeError(',
        'RuntimeError: CUDA out of memory occurred when warming up sampler with 1024 dummy requests. Please try lowering `max_num_seqs` or `gpu_memory_utilization` when initializing the engine.',
      ]),
    'hf-404': () => {
      const url = `https://huggingface.co/api/models/${model}/revision/main`;
      die([
        ...apiPrefix,
        `${API}  File "${SITE}/huggingface_hub/hf_api.py", line 2660, in model_info`,
        `${API}    hf_raise_for_status(r)`,
        `${API}  File "${SITE}/huggingface_hub/utils/_http.py", line 459, in hf_raise_for_status`,
        `${API}    raise _format(RepositoryNotFoundError, message, response) from e`,
        'Please make sure you specified the correct `repo_id` and `repo_type`.',
        'If you are trying to access a private or gated repo, make sure you are authenticated. For more details, see https://huggingface.co/docs/huggingface_hub/authentication',
        `huggingface_hub.errors.RepositoryNotFoundError: 404 Client Error. Repository Not Found for url: ${url}.`,
      ]);
    },
  };

  // ----------------------------------------------------- startup banner ---
  out(`INFO ${ts()} [__init__.py:216] Automatically detected platform cuda.`);
  info('api_server.py:1896', `vLLM API server version ${VLLM_VERSION}`);
  info(
    'utils.py:328',
    `non-default args: {${Object.entries(nonDefault)
      .map(([k, v]) => `'${k}': ${pyRepr(v)}`)
      .join(', ')}}`,
  );

  for (const k of Object.keys(env)
    .filter((k) => k.startsWith('VLLM_') && !KNOWN_VLLM_ENV.has(k))
    .sort())
    warn('envs.py:1599', `Unknown vLLM environment variable detected: ${k}`);

  // Injected failures decided at start.
  let crashAfter = null;
  let failAt = null; // {at: seconds from start, fn}
  if (fail) {
    let m;
    if ((m = /^exit:(-?\d+)$/.exec(fail))) {
      error('standin', `STANDIN_FAIL=${fail}: exiting with code ${m[1]}`);
      exitAfterFlush(Number(m[1]) & 0xff);
      return;
    } else if ((m = /^crash-after:(\d+(?:\.\d+)?)(?::(\d+))?$/.exec(fail))) {
      crashAfter = { seconds: Number(m[1]), code: m[2] !== undefined ? Number(m[2]) : 1 };
    } else if (fail === 'hf-401' || fail === 'hf-404') {
      failAt = { at: fastFail ? 0 : Math.min(0.2, loadSeconds * 0.05), fn: failures[fail] };
    } else if (fail === 'free-memory') {
      failAt = { at: fastFail ? 0 : loadSeconds * 0.1, fn: failures[fail] };
    } else if (fail === 'harmony') {
      failAt = { at: fastFail ? 0 : loadSeconds / 2, fn: failures.harmony };
    } else if (fail === 'cuda-oom') {
      failAt = { at: fastFail ? 0 : loadSeconds * 0.75, fn: failures['cuda-oom'] };
    } else if (['tiktoken-mismatch', 'unsupported-gpu', 'cuda-arch', 'kv-cache', 'sampler-oom'].includes(fail)) {
      failAt = { at: fastFail ? 0 : loadSeconds * 0.6, fn: failures[fail] };
    } else if (fail === 'oom-kill') {
      failAt = { at: fastFail ? 0 : loadSeconds * 0.3, fn: oomKill };
    } else {
      error('standin', `unknown STANDIN_FAIL value ${JSON.stringify(fail)}; ignoring it`);
    }
  }
  // Natural KV-cache refusal: a --max-model-len above what the cache holds (STANDIN_KV_MAX_LEN).
  if (!failAt && kvMaxLen !== undefined && maxModelLen > kvMaxLen) {
    failAt = { at: fastFail ? 0 : loadSeconds * 0.6, fn: failures['kv-cache'] };
  }
  // Natural free-memory failure when STANDIN_FREE_GIB is set explicitly.
  if (!failAt && env.STANDIN_FREE_GIB && gpuUtil * totalGiB > freeGiB) {
    failAt = { at: fastFail ? 0 : loadSeconds * 0.1, fn: failures['free-memory'] };
  }
  if (gpuUtil <= 0 || gpuUtil > 1) {
    failAt = {
      at: 0,
      fn: () => die([...apiPrefix, `ValueError: GPU memory utilization must be within (0, 1]. Got ${gpuUtil}.`]),
    };
  }
  // Missing tiktoken encodings: the real failure happens when harmony loads,
  // i.e. after the model has been loaded. Checked at that point.
  function encodingsOk() {
    const base = env.TIKTOKEN_ENCODINGS_BASE;
    if (!base) return false;
    for (const f of ['o200k_base.tiktoken', 'cl100k_base.tiktoken']) {
      try {
        const st = fs.statSync(path.join(base, f));
        if (!st.isFile() || st.size === 0) return false;
      } catch {
        return false;
      }
    }
    return true;
  }
  const harmonyAt = fastFail ? 0 : loadSeconds / 2;
  // The encodings check at load/2; a failure due later than that only fires when the check passed
  // (the check dies first otherwise), one due earlier or at once makes the check moot.
  const failEvents = [];
  if (!failAt || failAt.at > harmonyAt)
    failEvents.push({
      at: harmonyAt,
      fn: () => {
        if (!encodingsOk()) failures.harmony();
      },
    });
  if (failAt) failEvents.push(failAt);

  // --------------------------------------------------------- phase timing ---
  // The load is a row of phases (vLLM's own order): start (config, engine init), weights (with the
  // download inside it, between "Using model weights format" and the shards), compile, kv, graphs, api.
  // By default each phase gets its share of STANDIN_LOAD_SECONDS (the shares below put every line at
  // the fraction of the load it always had); STANDIN_PHASES sets a phase's seconds instead, warm
  // caches shorten compile and kv, and a download adds its own time. Durations the lines print are
  // measured on the clock, so they add up to the real elapsed time.
  const L = loadSeconds;
  const SHARE = { start: 0.08, weights: 0.39, compile: 0.15, kv: 0.03, graphs: 0.23, api: 0.12 };
  const PHASE_ALIAS = { starting: 'start', 'kv-cache': 'kv' };
  const phaseName = (x) => (Object.hasOwn(PHASE_ALIAS, x) ? PHASE_ALIAS[x] : x);
  const phaseSecs = {};
  for (const [p, share] of Object.entries(SHARE)) phaseSecs[p] = share * L;
  for (const item of (env.STANDIN_PHASES || '').split(/[\s,]+/).filter(Boolean)) {
    const m = /^([a-z-]+)=(\d+(?:\.\d*)?|\.\d+)$/.exec(item);
    const p = m && phaseName(m[1]);
    if (m && Object.hasOwn(SHARE, p)) phaseSecs[p] = Number(m[2]);
    else
      error(
        'standin',
        `STANDIN_PHASES: ignoring ${JSON.stringify(item)} (expected PHASE=SECONDS, PHASE one of start, weights, compile, kv, graphs, api)`,
      );
  }
  const HANGS = ['download', 'weights', 'compile', 'kv', 'graphs', 'api'];
  let hangPhase = phaseName((env.STANDIN_HANG || '').trim());
  if (hangPhase && !HANGS.includes(hangPhase)) {
    error('standin', `unknown STANDIN_HANG value ${JSON.stringify(hangPhase)}; ignoring it`);
    hangPhase = '';
  }
  const warmFactor = num('STANDIN_WARM_FACTOR', 0.25);

  // Warm caches: a marker the stand-in writes at the end of a cold compile (vLLM's torch.compile cache,
  // in the folder it names) and of the kv phase (FlashInfer's JIT cache). Not writable or not there:
  // cold every time. The folder's hash is stable for a model and max model len. Only in the image
  // (VLLM_STANDIN=1): a run on the host leaves the host's home alone.
  const useCaches = env.VLLM_STANDIN === '1';
  const STAMP = 'written by the gptoss vLLM stand-in';
  const compileHash = crypto.createHash('sha256').update(`${model}\0${maxModelLen}`).digest('hex').slice(0, 10);
  const compileDir = path.join(
    env.VLLM_CACHE_ROOT || '/root/.cache/vllm',
    'torch_compile_cache',
    compileHash,
    'rank_0_0',
    'backbone',
  );
  const compileMarker = path.join(compileDir, 'vllm_compile_cache.py');
  // FlashInfer's JIT cache: $FLASHINFER_WORKSPACE_BASE (default: home)/.cache/flashinfer (flashinfer/jit/env.py).
  const flashinferMarker = path.join(
    env.FLASHINFER_WORKSPACE_BASE || '/root',
    '.cache',
    'flashinfer',
    'gptoss-standin-jit-cache.txt',
  );
  const hasMarker = (f) => {
    if (!useCaches) return false;
    try {
      return fs.readFileSync(f, 'utf8').includes(STAMP);
    } catch {
      return false;
    }
  };
  const writeMarker = (f, text) => {
    if (!useCaches) return;
    try {
      fs.mkdirSync(path.dirname(f), { recursive: true });
      fs.writeFileSync(f, text);
    } catch {
      /* read-only or absent: the next start is cold again */
    }
  };
  const warmCompile = hasMarker(compileMarker);
  const warmFlashinfer = hasMarker(flashinferMarker);

  // The download (huggingface_hub's cache layout, names derived from the model id so a re-run resumes).
  const dl = planDownload();
  function planDownload() {
    const total = Math.round(num('STANDIN_DOWNLOAD_BYTES', 0));
    if (!(total > 0) || model.startsWith('/') || model.startsWith('.')) return null;
    let rate = num('STANDIN_DOWNLOAD_RATE', 10_000_000);
    if (!(rate > 0)) rate = 10_000_000;
    const hub = env.HF_HUB_CACHE || path.join(env.HF_HOME || '/root/.cache/huggingface', 'hub');
    const dir = path.join(hub, `models--${model.split('/').join('--')}`);
    const hex = (algo, s) => crypto.createHash(algo).update(s).digest('hex');
    const d = {
      dir,
      total,
      chunk: Math.max(1, Math.round(rate * 0.25)),
      blob: hex('sha256', `gptoss-standin weights ${model}`),
      revision: hex('sha1', `gptoss-standin revision ${model}`),
      file: 'model-00000-of-00001.safetensors',
    };
    d.final = path.join(dir, 'blobs', d.blob);
    d.incomplete = `${d.final}.incomplete`;
    if (modelComplete(dir)) return null;
    let have = 0;
    try {
      have = fs.statSync(d.incomplete).size;
    } catch {
      /* a new download */
    }
    try {
      if (fs.statSync(d.final).size >= total) have = total;
    } catch {
      /* not downloaded yet */
    }
    d.have = Math.min(have, total);
    d.steps = Math.ceil((total - d.have) / d.chunk);
    return d;
  }
  // Complete: refs/main names a snapshot that holds a .safetensors file, and no blob is still .incomplete.
  function modelComplete(dir) {
    try {
      if (fs.readdirSync(path.join(dir, 'blobs')).some((n) => n.endsWith('.incomplete'))) return false;
      const rev = fs.readFileSync(path.join(dir, 'refs', 'main'), 'utf8').trim();
      const snap = path.join(dir, 'snapshots', rev);
      return fs.readdirSync(snap).some((n) => n.endsWith('.safetensors') && fs.statSync(path.join(snap, n)).isFile());
    } catch {
      return false;
    }
  }
  function dlStart() {
    try {
      fs.mkdirSync(path.join(dl.dir, 'blobs'), { recursive: true });
      if (dl.have < dl.total || !fs.existsSync(dl.final)) {
        fs.closeSync(fs.openSync(dl.incomplete, 'a'));
        fs.truncateSync(dl.incomplete, dl.have);
      }
    } catch {
      /* not writable: the download only takes its time */
    }
  }
  function dlStep(k) {
    try {
      fs.truncateSync(dl.incomplete, Math.min(dl.total, dl.have + k * dl.chunk));
    } catch {
      /* as above */
    }
  }
  function dlFinish() {
    const { dir } = dl;
    const link = (target, at) => {
      try {
        fs.unlinkSync(at);
      } catch {
        /* not there */
      }
      fs.symlinkSync(target, at);
    };
    try {
      if (fs.existsSync(dl.incomplete)) {
        fs.truncateSync(dl.incomplete, dl.total);
        fs.renameSync(dl.incomplete, dl.final);
      }
      // config.json as the hub stores a small (non-LFS) file: a blob named by its git blob sha1.
      const config = `${JSON.stringify({ architectures: ['GptOssForCausalLM'], model_type: 'gpt_oss', _name_or_path: model, standin: STAMP }, null, 2)}\n`;
      const configBlob = crypto
        .createHash('sha1')
        .update(`blob ${Buffer.byteLength(config)}\0${config}`)
        .digest('hex');
      fs.writeFileSync(path.join(dir, 'blobs', configBlob), config);
      const snap = path.join(dir, 'snapshots', dl.revision);
      fs.mkdirSync(snap, { recursive: true });
      link(`../../blobs/${dl.blob}`, path.join(snap, dl.file));
      link(`../../blobs/${configBlob}`, path.join(snap, 'config.json'));
      fs.mkdirSync(path.join(dir, 'refs'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'refs', 'main'), dl.revision);
    } catch {
      /* as above */
    }
  }

  // Windows of the timeline, in order; RANGE is each one's place as fractions of the default load.
  const WIN = ['start', 'weightsA', 'download', 'weightsB', 'compile', 'kv', 'graphs', 'api'];
  const RANGE = {
    start: [0, 0.08],
    weightsA: [0.08, 0.1],
    download: [0.1, 0.1],
    weightsB: [0.1, 0.47],
    compile: [0.47, 0.62],
    kv: [0.62, 0.65],
    graphs: [0.65, 0.88],
    api: [0.88, 1],
  };
  const winSecs = {
    start: phaseSecs.start,
    weightsA: phaseSecs.weights * (0.02 / 0.39),
    download: dl ? dl.steps * 0.25 : 0,
    weightsB: phaseSecs.weights * (0.37 / 0.39),
    compile: phaseSecs.compile * (warmCompile ? warmFactor : 1),
    kv: phaseSecs.kv * (warmFlashinfer ? warmFactor : 1),
    graphs: phaseSecs.graphs,
    api: phaseSecs.api,
  };
  const winStart = {};
  let acc = 0;
  for (const w of WIN) {
    winStart[w] = acc;
    acc += winSecs[w];
  }
  const events = [];
  let seq = 0;
  const atRel = (win, rel, fn, tag) => events.push({ w: WIN.indexOf(win), rel, seq: seq++, fn, tag });
  /** A line at fraction f of the default load, in window `win` (placed at the same spot of the window). */
  const at = (win, f, fn, tag) => {
    const [s, e] = RANGE[win];
    atRel(win, e > s ? (f - s) / (e - s) : 0, fn, tag);
  };
  // Clock marks for the durations the lines print.
  const clock = () => performance.now() / 1000;
  const mark = {};
  const since = (k) => clock() - (mark[k] ?? clock());

  at('start', 0.0, () => info('config.py:723', 'Resolved architecture: GptOssForCausalLM'));
  at('start', 0.0, () => info('config.py:1669', `Using max model len ${maxModelLen}`));
  at('start', 0.0, () => info('config.py:2400', 'Chunked prefill is enabled with max_num_batched_tokens=8192.'));
  at('start', 0.02, () =>
    info(
      'core.py:74',
      `Initializing a V1 LLM engine (v${VLLM_VERSION}) with config: model='${model}', speculative_config=None, tokenizer='${model}', skip_tokenizer_init=False, tokenizer_mode=auto, revision=None, trust_remote_code=False, dtype=torch.bfloat16, max_seq_len=${maxModelLen}, download_dir=None, load_format=auto, tensor_parallel_size=1, pipeline_parallel_size=1, quantization=${opts.quantization ?? 'mxfp4'}, enforce_eager=False, kv_cache_dtype=auto, device_config=cuda, served_model_name=${servedName}, enable_prefix_caching=True, chunked_prefill_enabled=True`,
      ENG,
    ),
  );
  at('start', 0.05, () =>
    info(
      'parallel_state.py:1134',
      'rank 0 in world size 1 is assigned as DP rank 0, PP rank 0, TP rank 0, EP rank 0',
      ENG,
    ),
  );

  // weights (gpu_model_runner.py, default_loader.py, weight_utils.py).
  at(
    'weightsA',
    0.08,
    () => {
      mark.weights = clock();
      info('gpu_model_runner.py:1953', `Starting to load model ${model}...`, ENG);
    },
    'first:weights',
  );
  at('weightsA', 0.09, () => info('cuda.py:328', 'Using Triton backend on V1 engine.', ENG));
  at('weightsA', 0.1, () => {
    mark.shards = clock();
    info('weight_utils.py:296', "Using model weights format ['*.safetensors']", ENG);
  });

  // The download: vLLM 0.10.1's vllm/model_executor/model_loader/weight_utils.py, download_weights_from_hf:
  // snapshot_download(..., tqdm_class=DisabledTqdm) (no progress bars), then
  //   if time_taken > 0.5: logger.info("Time spent downloading weights for %s: %.6f seconds", ...)
  // at weight_utils.py:312 in 0.10.x logs (after "Using model weights format" at weight_utils.py:296).
  atRel(
    'download',
    0,
    () => {
      mark.download = clock();
      if (dl) dlStart();
    },
    'download:start',
  );
  if (dl) {
    for (let k = 1; k <= dl.steps; k++)
      atRel('download', k / dl.steps, () => dlStep(k), k === 1 ? 'download:step1' : undefined);
    atRel('download', 1, () => {
      dlFinish();
      const took = since('download');
      mark.shards = clock();
      if (took > 0.5)
        info('weight_utils.py:312', `Time spent downloading weights for ${model}: ${took.toFixed(6)} seconds`, ENG);
    });
  }

  const shards = 15;
  for (let s = 0; s <= shards; s++) {
    const pct = Math.floor((s / shards) * 100);
    at('weightsB', 0.1 + 0.35 * (s / shards), () =>
      bar(
        `${s === 0 ? ENG : ''}Loading safetensors checkpoint shards: ${String(pct).padStart(3)}% Completed | ${s}/${shards} [00:${String(2 * s).padStart(2, '0')}<00:${String(2 * (shards - s)).padStart(2, '0')},  1.79s/it]`,
        s === 0,
        s === shards,
      ),
    );
  }
  at('weightsB', 0.46, () =>
    info('default_loader.py:262', `Loading weights took ${since('shards').toFixed(2)} seconds`, ENG),
  );
  at('weightsB', 0.47, () => {
    info('gpu_model_runner.py:2007', `Model loading took 65.97 GiB and ${since('weights').toFixed(6)} seconds`, ENG);
    mark.loaded = clock();
  });

  // compile (vllm/compilation/backends.py, monitor.py); cold: "Compiling a graph", warm: "Directly load".
  at(
    'compile',
    0.5,
    () => info('backends.py:548', `Using cache directory: ${compileDir} for vLLM's torch.compile`, ENG),
    'first:compile',
  );
  at('compile', 0.52, () => {
    info('backends.py:559', `Dynamo bytecode transform time: ${since('loaded').toFixed(2)} s`, ENG);
    mark.dynamo = clock();
  });
  if (warmCompile) {
    at('compile', 0.61, () =>
      info(
        'backends.py:161',
        `Directly load the compiled graph(s) for dynamic shape from the cache, took ${since('dynamo').toFixed(3)} s`,
        ENG,
      ),
    );
  } else {
    at('compile', 0.58, () => info('backends.py:194', 'Cache the graph for dynamic shape for later use', ENG));
    at('compile', 0.615, () =>
      info('backends.py:215', `Compiling a graph for dynamic shape takes ${since('dynamo').toFixed(2)} s`, ENG),
    );
  }
  at('compile', 0.62, () => {
    info('monitor.py:34', `torch.compile takes ${since('loaded').toFixed(2)} s in total`, ENG);
    if (!warmCompile)
      writeMarker(
        compileMarker,
        `# ${STAMP}: a cold compile of ${model} (max_model_len ${maxModelLen}) finished here\n{}\n`,
      );
  });

  // kv (gpu_worker.py, kv_cache_utils.py); FlashInfer's JIT runs silently here.
  at(
    'kv',
    0.64,
    () =>
      info(
        'gpu_worker.py:276',
        `Available KV cache memory: ${Math.max(1, gpuUtil * totalGiB - 70.3).toFixed(2)} GiB`,
        ENG,
      ),
    'first:kv',
  );
  at('kv', 0.65, () => info('kv_cache_utils.py:849', 'GPU KV cache size: 410,544 tokens', ENG));
  at('kv', 0.65, () => {
    info(
      'kv_cache_utils.py:853',
      `Maximum concurrency for ${maxModelLen.toLocaleString('en-US')} tokens per request: ${(410544 / maxModelLen).toFixed(2)}x`,
      ENG,
    );
    mark.graphs = clock();
    if (!warmFlashinfer) writeMarker(flashinferMarker, `${STAMP}: FlashInfer JIT kernels built\n`);
  });

  // graphs (gpu_model_runner.py).
  for (let s = 0; s <= 4; s++) {
    at(
      'graphs',
      0.66 + 0.2 * (s / 4),
      () =>
        bar(
          `${s === 0 ? ENG : ''}Capturing CUDA graphs (mixed prefill-decode, PIECEWISE): ${String(s * 25).padStart(3)}%|${'█'.repeat(s * 2).padEnd(8)}| ${Math.round((67 * s) / 4)}/67 [00:${String(3 * s).padStart(2, '0')}<00:${String(3 * (4 - s)).padStart(2, '0')},  5.50it/s]`,
          s === 0,
          s === 4,
        ),
      s === 0 ? 'first:graphs' : undefined,
    );
  }
  at('graphs', 0.88, () =>
    info(
      'gpu_model_runner.py:2708',
      `Graph capturing finished in ${since('graphs').toFixed(0)} secs, took 0.84 GiB`,
      ENG,
    ),
  );

  // api (core.py, then the API server).
  at(
    'api',
    0.9,
    () =>
      info(
        'core.py:214',
        `init engine (profile, create kv cache, warmup model) took ${since('loaded').toFixed(2)} seconds`,
        ENG,
      ),
    'first:api',
  );
  at('api', 0.93, () =>
    info('loggers.py:142', 'Engine 000: vllm cache_config_info with initialization after num_gpu_blocks is: 25659'),
  );
  at('api', 0.95, () =>
    info(
      'serving_responses.py:120',
      "Using default chat sampling params from model: {'temperature': 1.0, 'top_p': 1.0}",
    ),
  );
  at('api', 0.97, () =>
    warn(
      'serving_chat.py:112',
      '"auto" tool choice has been enabled please note that while the parallel_tool_calls client option is preset for compatibility reasons, it will be ignored.',
    ),
  );

  // Injected failures: due at a fraction of the default load, they fire at the same spot of the same
  // phase (before the download when due at its very point).
  for (const f of failEvents) {
    const frac = L > 0 ? f.at / L : 0;
    let win = 'api';
    if (frac < RANGE.start[1]) win = 'start';
    else if (frac <= RANGE.weightsA[1]) win = 'weightsA';
    else win = ['weightsB', 'compile', 'kv', 'graphs'].find((w) => frac < RANGE[w][1]) ?? 'api';
    const [s, e] = RANGE[win];
    atRel(win, Math.max(0, (frac - s) / (e - s)), f.fn);
  }
  atRel('api', 1, () => startServing());

  events.sort((a, b) => a.w - b.w || a.rel - b.rel || a.seq - b.seq);
  for (const ev of events) ev.t = winStart[WIN[ev.w]] + ev.rel * winSecs[WIN[ev.w]];
  let timeline = events;
  if (hangPhase) {
    // The phase's first line (for the download: its first step), then nothing more.
    const tags = hangPhase === 'download' ? ['download:step1', 'download:start'] : [`first:${hangPhase}`];
    const i = tags.map((tag) => events.findIndex((ev) => ev.tag === tag)).find((x) => x >= 0);
    if (i !== undefined) timeline = events.slice(0, i + 1);
    // Nothing else keeps node's event loop alive during the hang (no server, no timer due).
    timers.add(setInterval(() => {}, 3600_000));
  }
  // Host memory taken while loading (STANDIN_LOAD_MEMORY_MIB, over STANDIN_LOAD_MEMORY_SECONDS, default
  // the whole load) and held until the process ends: a load that profiles memory as vLLM's does on
  // unified memory. Each chunk is filled, so the pages are really taken (MemAvailable falls).
  const loadMemMiB = Math.max(0, Math.floor(num('STANDIN_LOAD_MEMORY_MIB', 0)));
  const held = [];
  if (loadMemMiB > 0) {
    const CHUNK = 64;
    const steps = Math.ceil(loadMemMiB / CHUNK);
    const every = num('STANDIN_LOAD_MEMORY_SECONDS', loadSeconds) / steps;
    info('standin', `taking ${loadMemMiB} MiB of host memory while loading (STANDIN_LOAD_MEMORY_MIB)`, ENG);
    const take = (k) => {
      if (state === 'stopping' || state === 'dead') return;
      const mib = Math.min(CHUNK, loadMemMiB - k * CHUNK);
      held.push(Buffer.alloc(mib * 1024 * 1024, 1));
      if (k + 1 < steps) later(every, () => take(k + 1));
      else info('standin', `holding ${loadMemMiB} MiB of host memory until the process ends`, ENG);
    };
    later(0, () => take(0));
  }
  // Memory left behind after the process ends (STANDIN_SHM_MIB): a file in /dev/shm, which --ipc=host
  // shares with the host, never removed by the stand-in (as memory the driver keeps after a failed load).
  const shmMiB = Math.max(0, Math.floor(num('STANDIN_SHM_MIB', 0)));
  if (shmMiB > 0) {
    const file = env.STANDIN_SHM_FILE || `/dev/shm/gptoss-standin-${env.HOSTNAME || PID}`;
    try {
      const fd = fs.openSync(file, 'w', 0o600);
      const block = Buffer.alloc(16 * 1024 * 1024, 1);
      for (let done = 0; done < shmMiB; done += 16) fs.writeSync(fd, block, 0, Math.min(16, shmMiB - done) * 1024 * 1024);
      fs.closeSync(fd);
      info('standin', `left ${shmMiB} MiB in ${file} (STANDIN_SHM_MIB): it stays after the process ends`, ENG);
    } catch (e) {
      error('standin', `STANDIN_SHM_MIB: cannot write ${file}: ${e.message}`);
    }
  }

  const t0 = clock();
  let next = 0;
  function pump() {
    while (next < timeline.length && state === 'loading') {
      const ev = timeline[next];
      const wait = ev.t - (clock() - t0);
      if (wait > 0) {
        later(wait, pump);
        return;
      }
      next++;
      ev.fn();
    }
  }
  later(0, pump);

  // ------------------------------------------------------------- modes ---
  const VALID = {
    health: /^(ok|hang|\d{3})$/,
    chat: /^(ok|hang|harmony|\d{3})$/,
    models: /^(ok|empty|hang|\d{3})$/,
    engine: /^(ok|stall|dead)$/,
    tokenMs: /^\d{1,6}$/,
  };
  const mode = { health: 'ok', chat: 'ok', models: 'ok', engine: 'ok', tokenMs: String(num('STANDIN_TOKEN_MS', 0)) };
  for (const [k, e] of [
    ['health', 'STANDIN_HEALTH'],
    ['chat', 'STANDIN_CHAT'],
    ['models', 'STANDIN_MODELS'],
    ['engine', 'STANDIN_ENGINE'],
  ]) {
    if (env[e] && VALID[k].test(env[e])) mode[k] = env[e];
  }
  function effectiveMode() {
    let fileMode = null;
    try {
      fileMode = JSON.parse(fs.readFileSync(controlFile, 'utf8'));
    } catch {
      /* absent or invalid */
    }
    if (!fileMode || typeof fileMode !== 'object') return mode;
    const m = { ...mode };
    for (const k of Object.keys(VALID)) {
      if (typeof fileMode[k] === 'string' && VALID[k].test(fileMode[k])) m[k] = fileMode[k];
    }
    return m;
  }

  // ------------------------------------------------------------ serving ---
  const stats = { prompt: 0, gen: 0, ok: 0, running: 0, waiting: 0, aborted: 0 };
  let servingSince = 0;
  const chatFailAfter = env.STANDIN_CHAT_FAIL_AFTER ? num('STANDIN_CHAT_FAIL_AFTER', 0) : undefined;
  let chats = 0;
  // Paced answers: a streamed chunk every STANDIN_TOKEN_MS (the mode's tokenMs), a whole answer after all of them.
  // vLLM's time-per-output-token histogram (0.10's name; 0.11 added vllm:inter_token_latency_seconds) counts each.
  const TPOT_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0];
  const tpot = { counts: TPOT_BUCKETS.map(() => 0), sum: 0, count: 0 };
  function observeTpot(seconds, n = 1) {
    for (let i = 0; i < TPOT_BUCKETS.length; i++) if (seconds <= TPOT_BUCKETS[i]) tpot.counts[i] += n;
    tpot.sum += seconds * n;
    tpot.count += n;
  }
  // vLLM's /health is 200 before the server is warm (vllm#30700): completions wait this long after it.
  const warmupSeconds = num('STANDIN_WARMUP_SECONDS', 0);
  // vLLM's stats line every STANDIN_STATS_SECONDS (10 s as vLLM's), as V1's loggers.py prints it; like
  // vLLM, quiet (debug) once two intervals in a row had no throughput.
  const statsEvery = num('STANDIN_STATS_SECONDS', 10);
  let lastStats = { prompt: 0, gen: 0, quiet: 0 };
  function statsTick() {
    const prompt = (stats.prompt - lastStats.prompt) / statsEvery;
    const gen = (stats.gen - lastStats.gen) / statsEvery;
    const quiet = prompt === 0 && gen === 0 ? lastStats.quiet + 1 : 0;
    lastStats = { prompt: stats.prompt, gen: stats.gen, quiet };
    if (quiet < 2)
      info(
        'loggers.py:123',
        `Engine 000: Avg prompt throughput: ${prompt.toFixed(1)} tokens/s, Avg generation throughput: ${gen.toFixed(1)} tokens/s, Running: ${stats.running} reqs, Waiting: ${stats.waiting} reqs, GPU KV cache usage: ${(stats.running * 0.4).toFixed(1)}%, Prefix cache hit rate: 0.0%`,
      );
    later(statsEvery, statsTick);
  }
  // The engine dies under a running API server: vLLM's lines (vllm/v1/engine/core_client.py,
  // exceptions.py); /health answers what the health mode says (200 on images that do not check).
  let deadSaid = false;
  function engineDeadLines() {
    if (deadSaid) return;
    deadSaid = true;
    error('core.py:711', 'EngineCore encountered a fatal error.', ENG);
    err(`${ENG}Traceback (most recent call last):`);
    err(`${ENG}  File "${SITE}/vllm/v1/engine/core.py", line 702, in run_engine_core`);
    err(`${ENG}    engine_core.run_busy_loop()`);
    err(`${ENG}torch.AcceleratorError: CUDA error: an illegal memory access was encountered`);
    error('core_client.py:564', 'EngineCore died unexpectedly, shutting down client.');
    error('async_llm.py:480', 'AsyncLLM output_handler failed.');
    err(`${API}Traceback (most recent call last):`);
    err(`${API}  File "${SITE}/vllm/v1/engine/async_llm.py", line 439, in output_handler`);
    err(`${API}    outputs = await engine_core.get_output_async()`);
    err(
      `${API}vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue. See stack trace (above) for the root cause.`,
    );
  }

  function sendJson(res, status, obj, headers = {}) {
    const body = JSON.stringify(obj);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      ...headers,
    });
    res.end(body);
  }
  function vllmError(res, status, type, message) {
    sendJson(res, status, { object: 'error', message, type, param: null, code: status });
  }
  function hang(req, res) {
    hung.add(req.socket);
    req.socket.on('close', () => hung.delete(req.socket));
  }
  function access(req, status) {
    const addr = req.socket.remoteAddress?.replace(/^::ffff:/, '') ?? '-';
    uvi(
      `${addr}:${req.socket.remotePort} - "${req.method} ${req.url} HTTP/${req.httpVersion}" ${status} ${http.STATUS_CODES[status] ?? ''}`,
    );
  }
  function readBody(req) {
    return new Promise((resolve) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', () => resolve(''));
    });
  }

  async function handle(req, res) {
    const url = new URL(req.url, 'http://x');
    const p = url.pathname;
    const m = effectiveMode();
    res.on('finish', () => access(req, res.statusCode));
    if (m.engine === 'dead') engineDeadLines();

    if (p === '/health' && (req.method === 'GET' || req.method === 'HEAD')) {
      if (m.health === 'hang') return hang(req, res);
      const code = m.health === 'ok' ? 200 : Number(m.health);
      res.writeHead(code, { 'content-length': 0 });
      return res.end();
    }
    if (p === '/ping' && req.method === 'GET') {
      res.writeHead(200, { 'content-length': 0 });
      return res.end();
    }
    if (p === '/version' && req.method === 'GET') return sendJson(res, 200, { version: VLLM_VERSION });
    if (p === '/v1/models' && req.method === 'GET') {
      if (m.models === 'hang') return hang(req, res);
      if (/^\d{3}$/.test(m.models)) return vllmError(res, Number(m.models), 'InternalServerError', 'injected failure');
      const created = Math.floor(started / 1000);
      const data =
        m.models === 'empty'
          ? []
          : servedNames.map((id) => ({
              id,
              object: 'model',
              created,
              owned_by: 'vllm',
              root: model,
              parent: null,
              max_model_len: maxModelLen,
              permission: [
                {
                  id: `modelperm-${crypto.randomBytes(16).toString('hex')}`,
                  object: 'model_permission',
                  created,
                  allow_create_engine: false,
                  allow_sampling: true,
                  allow_logprobs: true,
                  allow_search_indices: false,
                  allow_view: true,
                  allow_fine_tuning: false,
                  organization: '*',
                  group: null,
                  is_blocking: false,
                },
              ],
            }));
      return sendJson(res, 200, { object: 'list', data });
    }
    if (p === '/metrics' && req.method === 'GET' && env.STANDIN_METRICS !== 'off') {
      const lbl = `engine="0",model_name="${servedName}"`;
      const body = [
        '# HELP vllm:num_requests_running Number of requests in model execution batches.',
        '# TYPE vllm:num_requests_running gauge',
        `vllm:num_requests_running{${lbl}} ${stats.running.toFixed(1)}`,
        '# HELP vllm:num_requests_waiting Number of requests waiting to be processed.',
        '# TYPE vllm:num_requests_waiting gauge',
        `vllm:num_requests_waiting{${lbl}} ${stats.waiting.toFixed(1)}`,
        '# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.',
        '# TYPE vllm:kv_cache_usage_perc gauge',
        `vllm:kv_cache_usage_perc{${lbl}} ${(stats.running * 0.004).toFixed(3)}`,
        '# HELP vllm:prompt_tokens_total Number of prefill tokens processed.',
        '# TYPE vllm:prompt_tokens_total counter',
        `vllm:prompt_tokens_total{${lbl}} ${stats.prompt.toFixed(1)}`,
        '# HELP vllm:generation_tokens_total Number of generation tokens processed.',
        '# TYPE vllm:generation_tokens_total counter',
        `vllm:generation_tokens_total{${lbl}} ${stats.gen.toFixed(1)}`,
        '# HELP vllm:request_success_total Count of successfully processed requests.',
        '# TYPE vllm:request_success_total counter',
        `vllm:request_success_total{${lbl},finished_reason="stop"} ${stats.ok.toFixed(1)}`,
        '# HELP standin:requests_aborted_total Requests whose client went away before the answer was done.',
        '# TYPE standin:requests_aborted_total counter',
        `standin:requests_aborted_total ${stats.aborted.toFixed(1)}`,
        '# HELP vllm:time_per_output_token_seconds Histogram of time per output token in seconds.',
        '# TYPE vllm:time_per_output_token_seconds histogram',
        ...TPOT_BUCKETS.map(
          (b, i) => `vllm:time_per_output_token_seconds_bucket{${lbl},le="${b.toFixed(3).replace(/0+$/, '').replace(/\.$/, '.0')}"} ${tpot.counts[i].toFixed(1)}`,
        ),
        `vllm:time_per_output_token_seconds_bucket{${lbl},le="+Inf"} ${tpot.count.toFixed(1)}`,
        `vllm:time_per_output_token_seconds_count{${lbl}} ${tpot.count.toFixed(1)}`,
        `vllm:time_per_output_token_seconds_sum{${lbl}} ${tpot.sum}`,
        '',
      ].join('\n');
      res.writeHead(200, {
        'content-type': 'text/plain; version=0.0.4; charset=utf-8',
        'content-length': Buffer.byteLength(body),
      });
      return res.end(body);
    }
    if (p === '/v1/chat/completions' && req.method === 'POST') {
      const raw = await readBody(req);
      if (m.chat === 'hang') {
        stats.running++;
        req.socket.on('close', () => stats.running--);
        return hang(req, res);
      }
      // A stalled engine: the request is taken, no token ever comes (running first, then queued).
      if (m.engine === 'stall') {
        const key = stats.running < 1 ? 'running' : 'waiting';
        stats[key]++;
        req.socket.on('close', () => stats[key]--);
        return hang(req, res);
      }
      if (m.engine === 'dead')
        return vllmError(
          res,
          500,
          'InternalServerError',
          'EngineCore encountered an issue. See stack trace (above) for the root cause.',
        );
      // A server that answers its first completions, then fails every one (STANDIN_CHAT_FAIL_AFTER).
      if (chatFailAfter !== undefined && chats >= chatFailAfter)
        return vllmError(res, 500, 'InternalServerError', `completion ${++chats} failed (STANDIN_CHAT_FAIL_AFTER)`);
      if (chatFailAfter !== undefined) chats++;
      // gpt-oss's output parser failing on a reply (openai/harmony): the engine itself is fine.
      if (m.chat === 'harmony')
        return vllmError(res, 500, 'InternalServerError', 'Unexpected token 12606 while expecting start token 200006');
      if (/^\d{3}$/.test(m.chat))
        return vllmError(
          res,
          Number(m.chat),
          'InternalServerError',
          'EngineCore encountered an issue. See stack trace (above) for the root cause.',
        );
      let body;
      try {
        body = JSON.parse(raw);
      } catch {
        return vllmError(res, 400, 'BadRequestError', 'Invalid JSON body');
      }
      if (!body || !Array.isArray(body.messages) || body.messages.length === 0) {
        return vllmError(
          res,
          400,
          'BadRequestError',
          "[{'type': 'missing', 'loc': ('body', 'messages'), 'msg': 'Field required'}]",
        );
      }
      if (body.model !== undefined && body.model !== null && !servedNames.includes(body.model)) {
        return vllmError(res, 404, 'NotFoundError', `The model \`${body.model}\` does not exist.`);
      }
      const promptText = body.messages
        .map((x) => (typeof x?.content === 'string' ? x.content : JSON.stringify(x?.content ?? '')))
        .join(' ');
      const promptTokens = 60 + promptText.split(/\s+/).filter(Boolean).length;
      let words = (env.STANDIN_REPLY || 'Hello! I am the gpt-oss stand-in, and I am up.').split(' ');
      let finish = 'stop';
      const maxTok = body.max_completion_tokens ?? body.max_tokens;
      if (Number.isInteger(maxTok) && maxTok > 0 && maxTok < words.length) {
        words = words.slice(0, maxTok);
        finish = 'length';
      }
      const content = words.join(' ');
      const reasoning = 'The user greets; reply briefly.';
      const completionTokens = words.length + 7;
      stats.prompt += promptTokens;
      stats.gen += completionTokens;
      stats.ok++;
      const id = `chatcmpl-${crypto.randomBytes(16).toString('hex')}`;
      const created = Math.floor(Date.now() / 1000);
      const modelName = body.model ?? servedName;
      // Warm-up and pacing: the request runs until its answer is done; a client that goes away cancels it.
      const warmLeft = servingSince + warmupSeconds * 1000 - Date.now();
      let gone = false;
      stats.running++;
      res.on('close', () => {
        if (!res.writableFinished) {
          gone = true;
          stats.aborted++;
        }
      });
      const pause = (ms) => new Promise((r) => setTimeout(r, ms));
      const tokenMs = Number(m.tokenMs) || 0;
      try {
        if (warmLeft > 0) await pause(warmLeft);
        if (gone) return;
        if (body.stream === true) {
          res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
          const chunk = (delta, fin = null) =>
            res.write(
              `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: modelName, choices: [{ index: 0, delta, logprobs: null, finish_reason: fin }] })}\n\n`,
            );
          chunk({ role: 'assistant', content: '' });
          chunk({ reasoning_content: reasoning });
          let last = performance.now();
          for (let i = 0; i < words.length; i++) {
            if (tokenMs) await pause(tokenMs);
            if (gone) return;
            chunk({ content: (i ? ' ' : '') + words[i] });
            const t = performance.now();
            observeTpot((t - last) / 1000);
            last = t;
          }
          chunk({}, finish);
          res.write('data: [DONE]\n\n');
          return res.end();
        }
        const began = performance.now();
        if (tokenMs) await pause(tokenMs * words.length);
        if (gone) return;
        observeTpot((performance.now() - began) / 1000 / words.length, words.length);
      } finally {
        stats.running--;
      }
      return sendJson(res, 200, {
        id,
        object: 'chat.completion',
        created,
        model: modelName,
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              content,
              refusal: null,
              annotations: null,
              audio: null,
              function_call: null,
              tool_calls: [],
              reasoning_content: reasoning,
            },
            logprobs: null,
            finish_reason: finish,
            stop_reason: null,
          },
        ],
        service_tier: null,
        system_fingerprint: null,
        usage: {
          prompt_tokens: promptTokens,
          total_tokens: promptTokens + completionTokens,
          completion_tokens: completionTokens,
          prompt_tokens_details: null,
        },
        prompt_logprobs: null,
        kv_transfer_params: null,
      });
    }
    if (p === '/standin/mode') {
      if (req.method === 'GET')
        return sendJson(res, 200, { ...m, file: fs.existsSync(controlFile) ? controlFile : null });
      if (req.method === 'POST' || req.method === 'PUT') {
        let body;
        try {
          body = JSON.parse((await readBody(req)) || '{}');
        } catch {
          return sendJson(res, 400, { error: 'invalid JSON' });
        }
        if (!body || typeof body !== 'object') return sendJson(res, 400, { error: 'expected a JSON object' });
        for (const [k, v] of Object.entries(body)) {
          if (!(k in VALID))
            return sendJson(res, 400, { error: `unknown key ${k}; expected health, chat, models, engine, tokenMs` });
          if (typeof v !== 'string' || !VALID[k].test(v))
            return sendJson(res, 400, { error: `invalid value for ${k}: ${JSON.stringify(v)}` });
        }
        Object.assign(mode, body);
        if (mode.engine === 'dead') engineDeadLines();
        info('standin', `mode set to ${JSON.stringify(mode)}`);
        return sendJson(res, 200, { ...mode });
      }
    }
    if (p === '/standin/exit' && req.method === 'POST') {
      let body = {};
      try {
        body = JSON.parse((await readBody(req)) || '{}') || {};
      } catch {
        /* defaults */
      }
      const code = Number.isInteger(body.code) ? body.code & 0xff : 1;
      sendJson(res, 202, { exiting: code });
      setTimeout(() => engineDied(code), Math.max(0, Number(body.delaySeconds) || 0) * 1000);
      return;
    }
    return sendJson(res, 404, { detail: 'Not Found' });
  }

  function engineDied(code) {
    if (exiting || state === 'stopping' || state === 'dead') return;
    error('core_client.py:564', 'EngineCore died unexpectedly, shutting down client.');
    die(
      [
        `${API}vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue. See stack trace (above) for the root cause.`,
      ],
      code,
    );
    for (const s of hung) s.destroy();
  }

  function startServing() {
    server = http.createServer((req, res) => {
      handle(req, res).catch((e) => {
        err(`${API}ERROR ${ts()} [standin] handler error: ${e?.stack ?? e}`);
        if (!res.headersSent) vllmError(res, 500, 'InternalServerError', String(e));
      });
    });
    server.keepAliveTimeout = 5000;
    server.on('error', (e) => {
      if (e.code === 'EADDRINUSE') die([...apiPrefix, `${API}OSError: [Errno 98] Address already in use`]);
      else die([...apiPrefix, `${API}OSError: ${e.message}`]);
    });
    const shownHost = opts.host ?? '0.0.0.0';
    info('api_server.py:1971', `Starting vLLM API server 0 on http://${shownHost}:${opts.port}`);
    server.listen(opts.port, opts.host, () => {
      if (state !== 'loading') return;
      state = 'serving';
      servingSince = Date.now();
      info('launcher.py:36', 'Available routes are:');
      for (const r of ['/health', '/ping', '/version', '/v1/models', '/v1/chat/completions', '/metrics'])
        info('launcher.py:44', `Route: ${r}, Methods: ${r === '/v1/chat/completions' ? 'POST' : 'GET'}`);
      uvi(`Started server process [${PID}]`);
      uvi('Waiting for application startup.');
      uvi('Application startup complete.');
      uvi(`Uvicorn running on http://${shownHost}:${opts.port} (Press CTRL+C to quit)`);
      if (crashAfter) later(crashAfter.seconds, () => engineDied(crashAfter.code));
      later(statsEvery, statsTick);
    });
  }

  // Allocate memory until the kernel OOM-kills us. Refuses to run without a
  // cgroup memory limit (it would eat the host) unless STANDIN_OOM_UNSAFE=1.
  function oomKill() {
    let limit = Infinity;
    for (const f of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
      try {
        const s = fs.readFileSync(f, 'utf8').trim();
        if (s !== 'max') {
          limit = Number(s);
          break;
        }
      } catch {
        /* next */
      }
    }
    if (!(limit < 64 * 1024 ** 3) && env.STANDIN_OOM_UNSAFE !== '1') {
      error(
        'standin',
        'STANDIN_FAIL=oom-kill needs a container memory limit (docker run --memory 256m --memory-swap 256m); refusing and exiting 3',
      );
      exitAfterFlush(3);
      return;
    }
    info('gpu_model_runner.py:1953', 'Allocating host memory until the OOM killer fires (STANDIN_FAIL=oom-kill)', ENG);
    const hog = [];
    const step = () => {
      for (let i = 0; i < 4; i++) hog.push(Buffer.alloc(16 * 1024 * 1024, 1));
      setImmediate(step);
    };
    step();
  }
}
