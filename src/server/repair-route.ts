/**
 * `POST /admin/repair {"corruptionId": ...}`: the explicit human signal that lets the
 * server move a detected corruption aside and recover again (store.repair).
 *
 * Guarantees: nothing is moved unless the id names the current corruption (else 409
 * `repair_conflict`); a malformed body is a 400 and changes nothing. Answers with the
 * fresh status.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { RouteContext } from './context.ts';
import { HttpError } from './errors.ts';

const repairBody = z.object({ corruptionId: z.string().min(1) });

export function registerRepairRoute(app: FastifyInstance, ctx: RouteContext): void {
  const { store, metrics, log } = ctx;
  app.post('/admin/repair', async (req, reply) => {
    const body = req.body;
    let parsed: unknown;
    try {
      parsed = Buffer.isBuffer(body) ? JSON.parse(body.toString('utf8')) : undefined;
    } catch {
      throw new HttpError(400, 'bad_request', 'the body is not valid JSON');
    }
    const r = repairBody.safeParse(parsed);
    if (!r.success) throw new HttpError(400, 'bad_request', 'expected {"corruptionId": "<id from /status>"}');
    log.warn({ corruptionId: r.data.corruptionId }, 'repair requested over HTTP');
    const report = await store.repair(r.data.corruptionId);
    metrics.onRecovery(report);
    ctx.onRecovered(report);
    return reply.code(200).send(ctx.status());
  });
}
