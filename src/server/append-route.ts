/**
 * `POST /events`: append one event (`application/json`) or an all-or-nothing batch
 * (`application/x-ndjson`), optionally idempotent (`Idempotency-Key`).
 *
 * Guarantees:
 * - The 201 is sent only after the store acknowledged the append, i.e. once it is durable
 *   under the server's mode (store.ts); a replay of a known key answers 200 with
 *   `Idempotent-Replayed: true` and the originally stored events, writing nothing.
 * - Bad input is refused (append-body.ts) before the store sees anything; a store that is
 *   corrupt, failed or recovering answers 503; a full one 507, after an idempotent replay
 *   had its chance (a replay needs no space).
 */
import type { FastifyInstance } from 'fastify';
import { requestHash } from '../storage/store.ts';
import { idempotencyKey, mediaType, parseAppendBody, utf8Body } from './append-body.ts';
import { assertWritable, type RouteContext } from './context.ts';

/** `[p0,p1,...]` in one allocation. */
export function jsonArray(payloads: Buffer[]): Buffer {
  let len = Math.max(payloads.length, 1) + 1; // brackets and commas
  for (let i = 0; i < payloads.length; i++) len += payloads[i]!.length;
  const out = Buffer.allocUnsafe(len);
  out[0] = 0x5b; // [
  let at = 1;
  for (let i = 0; i < payloads.length; i++) {
    if (i > 0) out[at++] = 0x2c; // ,
    const p = payloads[i]!;
    out.set(p, at);
    at += p.length;
  }
  out[at] = 0x5d; // ]
  return out;
}

export function registerAppendRoute(app: FastifyInstance, ctx: RouteContext): void {
  const { store } = ctx;
  app.post('/events', async (req, reply) => {
    // Full: the store refuses (507), after an idempotent replay had its chance (needs no space).
    if (store.state !== 'ready' && store.state !== 'full') assertWritable(ctx);
    const body = utf8Body(req.body);
    const ct = mediaType(req.headers['content-type']);
    const batch = ct === 'application/x-ndjson';
    const key = idempotencyKey(req.headers['idempotency-key']);
    const events = parseAppendBody(body, batch, new Date().toISOString());
    const res = await store.append({
      events,
      batch,
      ...(key !== undefined ? { idempotencyKey: key, requestHash: requestHash(ct, body) } : {}),
    });
    reply.code(res.replayed ? 200 : 201).type('application/json; charset=utf-8');
    if (res.replayed) reply.header('idempotent-replayed', 'true');
    if (!res.batch) return reply.send(res.payloads[0]);
    return reply.send(jsonArray(res.payloads));
  });
}
