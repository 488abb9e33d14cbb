/**
 * The operator's own HTTP endpoints, on two listeners like controller-runtime:
 * - probes: `/healthz` (the process serves requests) and `/readyz` (every readiness
 *   check passes: caches synced, watches alive) — failing checks are named in the
 *   503 body so `kubectl describe pod` tells why;
 * - metrics: `/metrics` in Prometheus text from the given registry.
 * Port 0 picks a free port (tests); the bound addresses are returned.
 *
 * Plain `node:http`: three GET routes do not need a framework, and fastify costs the
 * operator process about 15 MiB of RSS (docs/benchmarks.md). GET and HEAD are answered;
 * any other method on a route is 405, any other path 404 (JSON bodies).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';

export interface ReadinessCheck {
  name: string;
  /** A reason when not ready, undefined when ready. */
  check(): string | undefined;
}

export interface Endpoints {
  probeUrl: string;
  metricsUrl: string;
  close(): Promise<void>;
}

type Route = () => Promise<{ code: number; type: string; body: string }> | { code: number; type: string; body: string };

const JSON_TYPE = 'application/json; charset=utf-8';
const json = (code: number, value: unknown) => ({ code, type: JSON_TYPE, body: JSON.stringify(value) });

function server(routes: Record<string, Route>): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const route = routes[path];
    const send = (r: { code: number; type: string; body: string }) => {
      res.writeHead(r.code, { 'content-type': r.type, 'content-length': Buffer.byteLength(r.body) });
      res.end(req.method === 'HEAD' ? undefined : r.body);
    };
    if (!route) return send(json(404, { statusCode: 404, error: 'Not Found', message: `Route ${req.method}:${path} not found` }));
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(json(405, { statusCode: 405, error: 'Method Not Allowed', message: `${req.method} is not allowed on ${path}` }));
    Promise.resolve()
      .then(route)
      .then(send, (err: unknown) => send(json(500, { statusCode: 500, error: 'Internal Server Error', message: (err as Error).message })));
  });
}

async function listen(srv: Server, at: { host: string; port: number }, what: string): Promise<string> {
  try {
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(at.port, at.host, () => {
        srv.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    throw new Error(`cannot listen for ${what} on ${at.host}:${at.port}: ${(error as Error).message}`, { cause: error });
  }
  const addr = srv.address();
  if (addr === null || typeof addr === 'string') throw new Error(`${what}: no TCP address`);
  return `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
}

function close(srv: Server): Promise<void> {
  if (!srv.listening) return Promise.resolve();
  return new Promise<void>((resolve) => {
    srv.close(() => resolve());
    // Idle keep-alive connections (a Prometheus scraper) must not hold the close.
    srv.closeIdleConnections();
  });
}

export async function startEndpoints(opts: {
  probe: { host: string; port: number };
  metrics: { host: string; port: number };
  registry: Registry;
  readiness: () => ReadinessCheck[];
}): Promise<Endpoints> {
  const probes = server({
    '/healthz': () => json(200, { status: 'ok' }),
    '/readyz': () => {
      const failing = opts.readiness().flatMap((c) => {
        const reason = c.check();
        return reason === undefined ? [] : [{ check: c.name, reason }];
      });
      return failing.length > 0 ? json(503, { ready: false, failing }) : json(200, { ready: true });
    },
  });
  const metrics = server({
    '/metrics': async () => ({ code: 200, type: opts.registry.contentType, body: await opts.registry.metrics() }),
  });
  const probeUrl = await listen(probes, opts.probe, 'probes');
  let metricsUrl: string;
  try {
    metricsUrl = await listen(metrics, opts.metrics, 'metrics');
  } catch (error) {
    await close(probes);
    throw error;
  }
  return {
    probeUrl,
    metricsUrl,
    close: async () => {
      await Promise.all([close(probes), close(metrics)]);
    },
  };
}
