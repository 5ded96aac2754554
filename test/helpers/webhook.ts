// A webhook target for alert tests: a local HTTP server that answers 200 (or never) and keeps what it got.
import { createServer, type IncomingMessage, type Server } from 'node:http';

export interface Body {
  headers: IncomingMessage['headers'];
  body: string;
}

export interface Hook {
  url: string;
  bodies: Body[];
  server: Server;
  /** Resolves with the first message that matches, once it has come; the deadline says what came. */
  waitFor(pred: (b: Body) => boolean, ms: number, what: string): Promise<Body>;
}

/** What a message says, whatever its format: the body and the headers (ntfy puts its title there). */
export const said = (b: Body) => b.body + JSON.stringify(b.headers);

/** A webhook target: answers 200 (or never, `slow`) and keeps what it got. */
export async function hook(slow = false): Promise<Hook> {
  const bodies: Body[] = [];
  const waiters: Array<() => void> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      bodies.push({ headers: req.headers, body });
      for (const w of waiters.splice(0)) w();
      if (!slow) res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  async function waitFor(pred: (b: Body) => boolean, ms: number, what: string): Promise<Body> {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = bodies.find(pred);
      if (hit) return hit;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`timed out after ${ms}ms waiting for ${what}; got:\n${bodies.map(said).join('\n')}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
  return { url: `http://127.0.0.1:${port}/hook`, bodies, server, waitFor };
}
