/**
 * A TCP proxy on 127.0.0.1 that injects the failure a retry must survive: the request is
 * forwarded, the server answers, and the answer is lost (the client's connection is cut
 * the moment the first answer bytes come back). It also counts the HTTP requests it sees.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface FaultProxy {
  url: string;
  /** Cut the next `n` answers (each after its request reached the server and it answered). */
  loseAnswers(n: number): void;
  /** Request lines seen (`POST /events HTTP/1.1`, ...), in order. */
  requests: string[];
  /** Answers cut so far. */
  cut: number;
  close(): Promise<void>;
}

export async function startProxy(targetPort: number): Promise<FaultProxy> {
  let toLose = 0;
  const sockets = new Set<Socket>();
  const state: FaultProxy = {
    url: '',
    requests: [],
    cut: 0,
    loseAnswers(n) {
      toLose = n;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server: Server = createServer((client) => {
    sockets.add(client);
    const upstream = connect({ host: '127.0.0.1', port: targetPort });
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', () => {
      sockets.delete(client);
      upstream.destroy();
    });
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    client.on('error', drop);
    upstream.on('error', drop);
    let head = '';
    client.on('data', (d: Buffer) => {
      // Request lines, for counting (JSON bodies never hold " HTTP/1.1\r\n").
      head += d.toString('latin1');
      let end = 0;
      // Keep-alive: a request line may follow the previous body directly.
      for (const m of head.matchAll(/((?:GET|POST|PUT|DELETE) \/[^\r\n ]* HTTP\/1\.1)\r\n/g)) {
        state.requests.push(m[1]!);
        end = m.index + m[0].length;
      }
      head = head.slice(end).slice(-300);
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (toLose > 0) {
        // The server answered: the request was processed. The client never hears of it.
        toLose--;
        state.cut++;
        drop();
        return;
      }
      client.write(d);
    });
  });
  await new Promise<void>((r) => server.listen({ host: '127.0.0.1', port: 0 }, () => r()));
  const addr = server.address();
  state.url = `http://127.0.0.1:${typeof addr === 'object' && addr !== null ? addr.port : 0}`;
  return state;
}
