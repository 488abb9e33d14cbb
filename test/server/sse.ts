/** A raw SSE reader for the server tests: node:http, every byte kept, events parsed by the client's parser. */
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { SseParser, type SseEvent } from '../../src/client/sse.ts';

export interface RawStream {
  status: number;
  headers: IncomingMessage['headers'];
  /** Everything received so far. */
  text(): string;
  events: SseEvent[];
  ended: Promise<void>;
  /** Resolves once `pred` holds for the events received (checked on every chunk). */
  until(pred: (events: SseEvent[], text: string) => boolean, ms?: number): Promise<void>;
  res: IncomingMessage;
  close(): void;
}

export function openStream(url: string, headers: Record<string, string> = {}): Promise<RawStream> {
  return new Promise((resolve, reject) => {
    const req: ClientRequest = request(url, { headers: { accept: 'text/event-stream', ...headers }, agent: false });
    req.once('error', reject);
    req.once('response', (res) => {
      let text = '';
      const parser = new SseParser();
      const events: SseEvent[] = [];
      const watchers = new Set<() => void>();
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
        events.push(...parser.push(d));
        for (const w of watchers) w();
      });
      const ended = new Promise<void>((r) => {
        res.once('end', () => r());
        res.once('close', () => r());
        res.once('error', () => r());
      });
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        text: () => text,
        events,
        ended,
        res,
        until(pred, ms = 20_000) {
          return new Promise<void>((ok, fail) => {
            const check = () => {
              if (pred(events, text)) {
                watchers.delete(check);
                clearTimeout(t);
                ok();
              }
            };
            const t = setTimeout(() => {
              watchers.delete(check);
              fail(new Error(`stream condition not met within ${ms} ms; got ${events.length} events, last bytes ${JSON.stringify(text.slice(-200))}`));
            }, ms);
            watchers.add(check);
            check();
          });
        },
        close() {
          req.destroy();
        },
      });
    });
    req.end();
  });
}
