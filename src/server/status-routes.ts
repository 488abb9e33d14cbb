/**
 * Probes and status: `/healthz` (the process answers), `/readyz` (the log serves),
 * `/metrics` (Prometheus text), `/status` and `/v1/status` (the StatusBody the operator
 * polls), `/stats` (the log's counters).
 *
 * Guarantees: all answer during recovery (so the operator sees `recovering`), and
 * `/status`, `/stats` are consistent snapshots (never half of one append). `full` stays
 * ready: reads still work, so the pod stays in the Service (docs/server.md).
 */
import type { FastifyInstance } from 'fastify';
import type { RouteContext } from './context.ts';

export function registerStatusRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { store, metrics } = ctx;
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const s = ctx.state();
    // Full stays ready: reads still work, so the pod stays in the Service (docs/server.md).
    const ready = (s === 'ready' && store.state === 'ready') || (s === 'full' && store.state === 'full');
    return reply.code(ready ? 200 : 503).send({ ready, state: s });
  });
  app.get('/metrics', async (_req, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });
  app.get('/status', async () => ctx.status());
  app.get('/v1/status', async () => ctx.status());
  app.get('/stats', async () => store.stats());
}
