/**
 * `GET /events/stream`: a Server-Sent Events stream of the log from `after` (or the
 * `Last-Event-ID` header, which wins: EventSource resends it on reconnect), handed to
 * the FollowerHub (follow.ts) once the headers are out.
 *
 * Guarantees: a position behind retention gets the 410 JSON body before any stream
 * starts; a bad position is a 400; during shutdown a 503. One stream per connection
 * (`connection: close`).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { requireReadable, type RouteContext } from './context.ts';
import { HttpError } from './errors.ts';
import { badQuery, goneBody } from './read-routes.ts';

const streamQuery = z.object({ after: z.coerce.number().int().min(0).default(0) });
const LAST_EVENT_ID_RE = /^\d{1,15}$/;

export function registerStreamRoute(app: FastifyInstance, ctx: RouteContext): void {
  const { store, followers, metrics } = ctx;
  app.get('/events/stream', async (req, reply) => {
    requireReadable(ctx);
    const q = streamQuery.safeParse(req.query);
    if (!q.success) throw badQuery(q.error);
    let after = q.data.after;
    const lastId = req.headers['last-event-id'];
    if (lastId !== undefined) {
      // The header wins: EventSource reconnects to the same URL (the first `after`) and sends it.
      if (typeof lastId !== 'string' || !LAST_EVENT_ID_RE.test(lastId.trim())) throw new HttpError(400, 'bad_request', 'Last-Event-ID must be the sequence of the last event received (a non-negative integer)');
      after = Number(lastId.trim());
    }
    const gone = goneBody(store, after);
    if (gone !== undefined) return reply.code(410).type('application/json; charset=utf-8').send(gone);
    if (followers.closed || ctx.shuttingDown()) throw new HttpError(503, 'not_ready', 'the server is shutting down');
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
      // One stream per connection: the socket goes when the stream ends.
      connection: 'close',
    });
    req.raw.socket.setNoDelay(true);
    req.raw.socket.setKeepAlive(true, 30_000);
    res.write(`retry: 1000\n: events after ${after}\n\n`);
    metrics.httpRequest('/events/stream', 'GET', 200);
    followers.addStream(res, after);
  });
}
