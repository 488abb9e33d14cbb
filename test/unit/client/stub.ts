/** A scripted HTTP server on 127.0.0.1 for the client's unit tests: each request is recorded and answered by `handler`. */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { afterEach } from 'vitest';

export interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface Stub {
  url: string;
  seen: Seen[];
  handler: (req: Seen, res: ServerResponse, n: number) => void | Promise<void>;
  close(): Promise<void>;
}

const open: Stub[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});

export async function stub(handler: Stub['handler']): Promise<Stub> {
  const seen: Seen[] = [];
  const st: Stub = { url: '', seen, handler, close: async () => undefined };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s: Seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(s);
      void Promise.resolve(st.handler(s, res, seen.length)).catch((err: unknown) => {
        res.statusCode = 599;
        res.end(String(err));
      });
    });
  });
  await new Promise<void>((r) => server.listen({ host: '127.0.0.1', port: 0 }, () => r()));
  const addr = server.address();
  st.url = `http://127.0.0.1:${typeof addr === 'object' && addr !== null ? addr.port : 0}`;
  st.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  open.push(st);
  return st;
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** What the log server stores for a client body. */
export function storedFor(body: string, sequence: number): Record<string, unknown> {
  return { id: `id-${sequence}`, createdAt: '2026-01-01T00:00:00.000Z', sequence, ...(JSON.parse(body) as object) };
}
