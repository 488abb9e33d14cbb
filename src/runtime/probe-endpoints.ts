/**
 * The operator's own HTTP endpoints, on two listeners like controller-runtime:
 * - probes: `/healthz` (the process serves requests) and `/readyz` (every readiness
 *   check passes: caches synced, watches alive) — failing checks are named in the
 *   503 body so `kubectl describe pod` tells why;
 * - metrics: `/metrics` in Prometheus text from the given registry.
 * Port 0 picks a free port (tests); the bound addresses are returned.
 */
import Fastify, { type FastifyInstance } from 'fastify';
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

export async function startEndpoints(opts: {
  probe: { host: string; port: number };
  metrics: { host: string; port: number };
  registry: Registry;
  readiness: () => ReadinessCheck[];
}): Promise<Endpoints> {
  const probes = Fastify({ logger: false });
  probes.get('/healthz', async () => ({ status: 'ok' }));
  probes.get('/readyz', async (_req, reply) => {
    const failing = opts.readiness().flatMap((c) => {
      const reason = c.check();
      return reason === undefined ? [] : [{ check: c.name, reason }];
    });
    if (failing.length > 0) return reply.code(503).send({ ready: false, failing });
    return { ready: true };
  });
  const metrics = Fastify({ logger: false });
  metrics.get('/metrics', async (_req, reply) => {
    reply.header('content-type', opts.registry.contentType);
    return opts.registry.metrics();
  });
  const listen = async (app: FastifyInstance, at: { host: string; port: number }, what: string) => {
    try {
      await app.listen({ host: at.host, port: at.port });
    } catch (error) {
      throw new Error(`cannot listen for ${what} on ${at.host}:${at.port}: ${(error as Error).message}`, { cause: error });
    }
    const addr = app.server.address();
    if (addr === null || typeof addr === 'string') throw new Error(`${what}: no TCP address`);
    return `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  };
  const probeUrl = await listen(probes, opts.probe, 'probes');
  let metricsUrl: string;
  try {
    metricsUrl = await listen(metrics, opts.metrics, 'metrics');
  } catch (error) {
    await probes.close();
    throw error;
  }
  return {
    probeUrl,
    metricsUrl,
    close: async () => {
      await Promise.all([probes.close(), metrics.close()]);
    },
  };
}
