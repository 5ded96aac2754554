// Clients of the model, as an OpenAI SDK is one: chat completions, streamed or not, over keep-alive
// connections; each answer judged by what the client got (a refused connection, a cut stream, an error).
import { Agent, request, type IncomingHttpHeaders } from 'node:http';

export interface Answer {
  stream: boolean;
  /** 0: no HTTP answer at all (refused, reset before the headers). */
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** Why the client would call it a failure; undefined when it got a whole, good answer. */
  failure?: string;
  /** ms from the request to the first byte of the body, and to the end. */
  firstByteMs?: number;
  ms: number;
  /** When each body chunk arrived (ms from the request). */
  chunks: number[];
}

export interface ChatOptions {
  stream?: boolean;
  key?: string;
  agent?: Agent;
  path?: string;
  /** Abort after the first body chunk (a client that goes away mid-answer). */
  abortAfterFirstChunk?: boolean;
  /** Told when the first body chunk arrives (the answer is under way). */
  onFirstChunk?: () => void;
  timeoutMs?: number;
}

/** One chat completion through `port` on loopback. Never rejects: a failure is in the answer. */
export function chat(port: number, o: ChatOptions = {}): Promise<Answer> {
  const stream = o.stream === true;
  const body = JSON.stringify({
    model: 'gpt-oss-120b',
    messages: [{ role: 'user', content: 'Say hello.' }],
    ...(stream ? { stream: true } : {}),
  });
  const t0 = performance.now();
  return new Promise((resolve) => {
    const chunks: number[] = [];
    let text = '';
    let done = false;
    const finish = (a: Omit<Answer, 'stream' | 'ms' | 'chunks'>) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ ...a, stream, ms: performance.now() - t0, chunks });
    };
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: o.path ?? '/v1/chat/completions',
        agent: o.agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          ...(o.key ? { authorization: `Bearer ${o.key}` } : {}),
        },
      },
      (res) => {
        const status = res.statusCode ?? 0;
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          chunks.push(performance.now() - t0);
          if (chunks.length === 1) o.onFirstChunk?.();
          text += c;
          if (o.abortAfterFirstChunk) {
            req.destroy();
            finish({ status, headers: res.headers, body: text, firstByteMs: chunks[0] });
          }
        });
        res.on('end', () =>
          finish({
            status,
            headers: res.headers,
            body: text,
            firstByteMs: chunks[0],
            ...judge(status, text, stream),
          }),
        );
        res.on('error', (e) => finish({ status, headers: res.headers, body: text, failure: `cut: ${e.message}` }));
        res.on('close', () => {
          if (!res.complete)
            finish({ status, headers: res.headers, body: text, failure: 'cut: the connection closed mid-answer' });
        });
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      finish({ status: 0, headers: {}, body: text, failure: `no answer in ${o.timeoutMs ?? 60_000}ms` });
    }, o.timeoutMs ?? 60_000);
    req.on('error', (e: NodeJS.ErrnoException) =>
      finish({ status: 0, headers: {}, body: text, failure: `${e.code ?? ''} ${e.message}`.trim() }),
    );
    req.end(body);
  });
}

/** What an SDK would make of an answer: a failure, or none. */
function judge(status: number, text: string, stream: boolean): { failure?: string } {
  if (status !== 200) return { failure: `HTTP ${status}: ${text.slice(0, 200)}` };
  if (!stream) {
    try {
      const j = JSON.parse(text) as { choices?: Array<{ message?: { content?: string } }> };
      return j.choices?.[0]?.message?.content ? {} : { failure: `no content: ${text.slice(0, 200)}` };
    } catch {
      return { failure: `not JSON: ${text.slice(0, 200)}` };
    }
  }
  const events = text.split('\n\n').filter((e) => e.startsWith('data: '));
  const error = events.find((e) => /^data: \{"error"/.test(e));
  if (error) return { failure: `stream ended with an error event: ${error.slice(0, 200)}` };
  return events.at(-1) === 'data: [DONE]' ? {} : { failure: 'stream ended without [DONE]' };
}

/**
 * `count` requests at `perSecond`, every `streamEvery`-th one streamed, each over a keep-alive agent
 * (as an SDK keeps its connections). Resolves with every answer once all have ended.
 */
export async function steady(
  port: number,
  o: { count: number; perSecond: number; streamEvery?: number; key?: string },
): Promise<Answer[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const all: Array<Promise<Answer>> = [];
  try {
    for (let i = 0; i < o.count; i++) {
      const stream = o.streamEvery !== undefined && i % o.streamEvery === 0;
      all.push(chat(port, { stream, agent, ...(o.key ? { key: o.key } : {}) }));
      await new Promise((r) => setTimeout(r, 1000 / o.perSecond));
    }
    return await Promise.all(all);
  } finally {
    agent.destroy();
  }
}

/** The failures among answers, one line each (for an assertion message). */
export const failures = (as: Answer[]) =>
  as.flatMap((a, i) => (a.failure ? [`#${i}${a.stream ? ' (stream)' : ''}: ${a.failure}`] : []));
