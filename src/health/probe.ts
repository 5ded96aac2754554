// HTTP probes against the published port: /health for start-up and liveness, /v1/models for readiness.
import { createRequire } from 'node:module';

// Required, not imported: an ESM import of node:http evaluates its lazy getters (WebSocket, ...),
// which load undici, Node's fetch: 3 MiB of memory the probes never use.
const { request } = createRequire(import.meta.url)('node:http') as typeof import('node:http');

export interface ProbeResult {
  ok: boolean;
  /** Why it failed, in a few words: `connection refused`, `timeout after 5s`, `HTTP 500`. */
  error?: string;
}

interface Answer {
  status: number;
  body: string;
}

const MAX_BODY = 1 << 20;

/** One request with a hard deadline covering connect, headers and body; a fresh connection each time. */
function httpRequest(
  host: string,
  port: number,
  method: 'GET' | 'POST',
  path: string,
  body: unknown,
  timeoutMs: number,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string | number> = { accept: 'application/json', connection: 'close' };
    if (payload) Object.assign(headers, { 'content-type': 'application/json', 'content-length': payload.length });
    const req = request({ host, port, path, method, agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_BODY) chunks.push(c);
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    // A server that accepts and never answers (a hung vLLM) must not hold the probe forever.
    const timer = setTimeout(
      () => req.destroy(Object.assign(new Error('timeout'), { code: 'PROBE_TIMEOUT' })),
      timeoutMs,
    );
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.end(payload);
  });
}

export function httpGet(host: string, port: number, path: string, timeoutMs: number): Promise<Answer> {
  return httpRequest(host, port, 'GET', path, undefined, timeoutMs);
}

export function httpPostJson(
  host: string,
  port: number,
  path: string,
  body: unknown,
  timeoutMs: number,
): Promise<Answer> {
  return httpRequest(host, port, 'POST', path, body, timeoutMs);
}

function describe(err: unknown, timeoutMs: number): string {
  const code = (err as { code?: string }).code;
  switch (code) {
    case 'PROBE_TIMEOUT':
      return `timeout after ${timeoutMs >= 1000 ? `${Math.round(timeoutMs / 100) / 10}s` : `${timeoutMs}ms`}`;
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'connection reset';
    default:
      return code ? code.toLowerCase() : (err as Error).message;
  }
}

export async function probeHealth(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  try {
    const a = await httpGet(host, port, '/health', timeoutMs);
    // Only 200 is healthy: a dead engine answers 500 on older images and 503 on newer ones.
    return a.status === 200 ? { ok: true } : { ok: false, error: `HTTP ${a.status}` };
  } catch (err) {
    return { ok: false, error: describe(err, timeoutMs) };
  }
}

export async function probeModels(
  host: string,
  port: number,
  servedName: string,
  timeoutMs: number,
): Promise<ProbeResult> {
  let a: Answer;
  try {
    a = await httpGet(host, port, '/v1/models', timeoutMs);
  } catch (err) {
    return { ok: false, error: describe(err, timeoutMs) };
  }
  if (a.status < 200 || a.status >= 300) return { ok: false, error: `/v1/models: HTTP ${a.status}` };
  try {
    const ids = ((JSON.parse(a.body) as { data?: Array<{ id?: unknown }> }).data ?? []).map((m) => m.id);
    return ids.includes(servedName) ? { ok: true } : { ok: false, error: `/v1/models does not list ${servedName}` };
  } catch {
    return { ok: false, error: '/v1/models: not JSON' };
  }
}

/** Where to reach the published port from the host: loopback unless bound to one address. */
export function probeHost(bindAddress: string): string {
  if (bindAddress === '' || bindAddress === '0.0.0.0') return '127.0.0.1';
  if (bindAddress === '::') return '::1';
  return bindAddress;
}

/**
 * What the guide's verification does, in one go: /health answers, /v1/models lists the model,
 * and one small chat completion is answered, all within `timeoutMs`.
 */
export async function deepProbe(
  host: string,
  port: number,
  servedName: string,
  timeoutMs: number,
): Promise<ProbeResult & { detail: string; finding?: 'harmony-parse' }> {
  const t0 = Date.now();
  const left = () => Math.max(1, timeoutMs - (Date.now() - t0));
  const health = await probeHealth(host, port, left());
  if (!health.ok)
    return { ok: false, error: `/health: ${health.error ?? 'failed'}`, detail: `/health: ${health.error ?? 'failed'}` };
  const models = await probeModels(host, port, servedName, left());
  if (!models.ok)
    return { ok: false, error: models.error ?? '/v1/models failed', detail: models.error ?? '/v1/models failed' };
  const ask = {
    model: servedName,
    messages: [{ role: 'user', content: 'Reply with the single word: ok' }],
    max_tokens: 16,
    temperature: 0,
  };
  let a: Answer;
  try {
    a = await httpPostJson(host, port, '/v1/chat/completions', ask, left());
  } catch (err) {
    const why = `chat completion: ${describe(err, timeoutMs)}`;
    return { ok: false, error: why, detail: why };
  }
  if (a.status !== 200) {
    // gpt-oss's output parser failing on one reply is not the engine dying: found, said, not counted.
    const harmony = /HarmonyError|while expecting start token/.exec(a.body);
    if (harmony && (a.status === 500 || a.status === 503)) {
      const why = `harmony-parse: chat completion HTTP ${a.status}: ${errorMessage(a.body)}`;
      return { ok: true, finding: 'harmony-parse', detail: why };
    }
    return { ok: false, error: `chat completion: HTTP ${a.status}`, detail: `chat completion: HTTP ${a.status}` };
  }
  const bad = badAnswer(a.body);
  if (bad) return { ok: false, error: `chat completion: ${bad}`, detail: `chat completion: ${bad}` };
  const ms = Date.now() - t0;
  return {
    ok: true,
    detail: `health, models and a chat completion answered in ${ms >= 1000 ? `${(ms / 1000).toFixed(1)}s` : `${ms}ms`}`,
  };
}

/** The `message` of an OpenAI-style error body, cut short; the body itself when it has none. */
function errorMessage(body: string): string {
  let msg = body;
  try {
    const j = JSON.parse(body) as { message?: unknown; error?: { message?: unknown } | string };
    const m = typeof j.error === 'object' ? j.error.message : (j.message ?? j.error);
    if (typeof m === 'string') msg = m;
  } catch {
    // not JSON: the body as it is
  }
  const one = msg.replace(/\s+/g, ' ').trim();
  return one.length > 160 ? `${one.slice(0, 157)}...` : one;
}

/**
 * What is wrong with a completion that came back 200: none (undefined), no message, an empty one,
 * or garbage (no letter or digit, or mostly replacement and control characters: a broken engine).
 */
export function badAnswer(body: string): string | undefined {
  let msg: { content?: unknown; reasoning_content?: unknown } | undefined;
  try {
    msg = (JSON.parse(body) as { choices?: Array<{ message?: { content?: unknown; reasoning_content?: unknown } }> })
      .choices?.[0]?.message;
  } catch {
    return 'not JSON';
  }
  if (!msg) return 'no answer in the reply';
  const text = [msg.content, msg.reasoning_content].filter((x): x is string => typeof x === 'string').join(' ');
  if (!text.trim()) return 'an empty answer';
  const junk = [...text].filter((c) => c === '\uFFFD' || (c < ' ' && c !== '\n' && c !== '\t' && c !== '\r')).length;
  if (!/[\p{L}\p{N}]/u.test(text) || junk / [...text].length > 0.2)
    return `a garbage answer (${JSON.stringify(text.slice(0, 40))})`;
  return undefined;
}
