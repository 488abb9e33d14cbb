/**
 * Reads: `GET /events/:id` (one event by id) and `GET /events?after=&limit=&wait=` (a
 * page of events after a sequence, as NDJSON; with `wait`, a long poll).
 *
 * Guarantees:
 * - Readers only ever see acknowledged events (the store's index), in sequence order.
 * - A reader behind the first retained sequence gets 410 with `firstSequence`: never a
 *   silent skip (goneBody, shared with the stream route).
 * - A long poll is answered by the first commit publishing an event after `after`, or
 *   with an empty page when `wait` ends, the client goes away or the server shuts down.
 * - Bad queries are 400 `bad_request` naming the parameter.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { EventStore } from '../storage/store.ts';
import { requireReadable, type RouteContext } from './context.ts';
import { HttpError } from './errors.ts';
import { MAX_WAIT_MS, parseWaitMs } from './units.ts';

const readQuery = z.object({
  after: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
  wait: z.string().optional(),
});

/** 410 body when `after + 1` is before the first retained sequence, else undefined. */
export function goneBody(store: EventStore, after: number): Record<string, unknown> | undefined {
  const first = store.firstSequence;
  if (after + 1 >= first) return undefined;
  // Never a silent skip: the reader must learn that events it has not seen are gone.
  return { error: 'gone', message: `events after ${after} up to ${first - 1} were removed by retention; the first retained sequence is ${first}: read on with after=${first - 1}`, firstSequence: first };
}

export function badQuery(error: z.ZodError): HttpError {
  const issue = error.issues[0]!;
  return new HttpError(400, 'bad_request', `query ${issue.path.join('.')}: ${issue.message}`);
}

export function registerReadRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { store, followers } = ctx;

  app.get('/events/:id', async (req, reply) => {
    requireReadable(ctx);
    const { id } = req.params as { id: string };
    const payload = await store.getById(id);
    if (payload === undefined) {
      const first = store.firstSequence;
      const note = first > 1 ? ` (retention removed the events before sequence ${first}; their ids are forgotten)` : '';
      throw new HttpError(404, 'not_found', `no event with id ${JSON.stringify(id)}${note}`);
    }
    return reply.type('application/json; charset=utf-8').send(payload);
  });

  app.get('/events', async (req, reply) => {
    requireReadable(ctx);
    const q = readQuery.safeParse(req.query);
    if (!q.success) throw badQuery(q.error);
    const { after, limit } = q.data;
    let waitMs = 0;
    if (q.data.wait !== undefined) {
      const w = parseWaitMs(q.data.wait);
      if (w === undefined) {
        throw new HttpError(400, 'bad_request', `query wait: expected milliseconds (1500) or a duration (30s, 500ms) of at most ${MAX_WAIT_MS / 1000}s, got ${JSON.stringify(q.data.wait)}`);
      }
      waitMs = w;
    }
    const gone = goneBody(store, after);
    if (gone !== undefined) return reply.code(410).type('application/json; charset=utf-8').send(gone);
    let payloads = await store.readAfter(after, limit);
    if (payloads.length === 0 && waitMs > 0) {
      // Long poll: answered by the next commit that publishes an event after `after`.
      const ac = new AbortController();
      const onClose = () => ac.abort();
      reply.raw.once('close', onClose);
      const page = await followers.waitFor(after, limit, waitMs, ac.signal);
      reply.raw.off('close', onClose);
      if (page !== undefined) payloads = page.length > 0 ? page : await store.readAfter(after, limit);
    }
    const parts: Buffer[] = [];
    const nl = Buffer.from('\n');
    for (const p of payloads) parts.push(p, nl);
    return reply.type('application/x-ndjson; charset=utf-8').send(Buffer.concat(parts));
  });
}
