/** A webhook receiver on 127.0.0.1 for alert tests: records each POST, answers as the test's `answer` says. */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ExecutionContext } from 'ava';

export interface Received {
  at: number;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  json: Record<string, unknown>;
}

/** `status`: answer with it; `hang`: read the request and never answer. */
export type Answer = number | 'hang';

export interface Receiver {
  url: string;
  received: Received[];
  /** Requests whose body has arrived, answered or not. */
  attempts: number;
  /** Requests left unanswered and still open. */
  hanging: () => number;
}

export async function startReceiver(t: ExecutionContext, answer: (n: number) => Answer = () => 200): Promise<Receiver> {
  const open = new Set<ServerResponse>();
  const r: Receiver = { url: '', received: [], attempts: 0, hanging: () => [...open].filter((res) => !res.destroyed && !res.writableEnded && !res.socket?.destroyed).length };
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (s: string) => (body += s));
    req.on('end', () => {
      const n = r.attempts++;
      const a = answer(n);
      if (a === 'hang') {
        open.add(res);
        res.on('close', () => open.delete(res));
        return;
      }
      if (a >= 200 && a < 300) {
        let json: Record<string, unknown> = {};
        try {
          json = JSON.parse(body) as Record<string, unknown>;
        } catch {
          // recorded as it came; the test's assertion on the body tells
        }
        r.received.push({ at: Date.now(), path: req.url ?? '', headers: req.headers, body, json });
      }
      res.writeHead(a, { 'content-type': 'text/plain' }).end(a < 300 ? 'ok' : 'error');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return r;
}
