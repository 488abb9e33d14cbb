import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { createClient, EventLogUnavailableError, GoneError, UnauthorizedError, type StoredEvent } from '../../../src/client/index.ts';
import { json, stub } from './stub.ts';

function sse(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  res.write('retry: 1000\n\n');
}
function ev(res: ServerResponse, seq: number): void {
  res.write(`id: ${seq}\ndata: ${JSON.stringify({ id: `e${seq}`, createdAt: 'x', sequence: seq })}\n\n`);
}
const FAST = { initialDelayMs: 1, maxDelayMs: 5 };

describe('follow', () => {
  it('reconnects after a cut with Last-Event-ID = the last sequence yielded; a replayed event is not yielded twice', async () => {
    const s = await stub((req, res, n) => {
      sse(res);
      const from = Number(req.headers['last-event-id']);
      if (n === 1) {
        ev(res, from + 1);
        ev(res, from + 2);
        setTimeout(() => res.destroy(), 50); // cut mid-stream (after the bytes went out)
      } else if (n === 2) {
        ev(res, from); // already seen: must be skipped
        ev(res, from + 1);
        res.end(); // a clean end is a reconnect too
      } else {
        ev(res, from + 1);
      }
    });
    const seen: number[] = [];
    const reconnects: number[] = [];
    for await (const e of createClient({ url: s.url }).follow(10, { reconnect: FAST, onReconnect: (i) => reconnects.push(i.after) })) {
      seen.push(e.sequence);
      if (seen.length === 4) break;
    }
    expect(seen).toEqual([11, 12, 13, 14]);
    expect(s.seen.map((r) => r.headers['last-event-id'])).toEqual(['10', '12', '13']);
    expect(s.seen.map((r) => r.url)).toEqual(['/events/stream?after=10', '/events/stream?after=12', '/events/stream?after=13']);
    expect(reconnects).toEqual([12, 13]);
    expect(s.seen[0]!.headers.accept).toBe('text/event-stream');
  });

  it('event: gone ends the iterator with GoneError; a 410 answer too', async () => {
    const s = await stub((_req, res) => {
      sse(res);
      ev(res, 1);
      res.write('event: gone\ndata: {"error":"gone","firstSequence":50,"message":"retention"}\n\n');
      res.end();
    });
    const seen: StoredEvent[] = [];
    const err = await (async () => {
      for await (const e of createClient({ url: s.url }).follow(0, { reconnect: FAST })) seen.push(e);
    })().catch((e: unknown) => e);
    expect(seen.map((e) => e.sequence)).toEqual([1]);
    expect(err).toBeInstanceOf(GoneError);
    expect((err as GoneError).firstSequence).toBe(50);
    const s2 = await stub((_req, res) => json(res, 410, { error: 'gone', firstSequence: 7, message: 'x' }));
    const err2 = await (async () => {
      for await (const _e of createClient({ url: s2.url }).follow(0)) break;
    })().catch((e: unknown) => e);
    expect((err2 as GoneError).firstSequence).toBe(7);
    expect(s2.seen).toHaveLength(1);
  });

  it('refusals end it (401, not retried); 5xx and shutdown are retried; attempts bound it when set', async () => {
    const s = await stub((_req, res) => json(res, 401, { error: 'unauthorized', message: 'token' }));
    await expect((async () => {
      for await (const _e of createClient({ url: s.url }).follow(0, { reconnect: FAST })) break;
    })()).rejects.toBeInstanceOf(UnauthorizedError);
    expect(s.seen).toHaveLength(1);

    const s2 = await stub((_req, res, n) => {
      if (n === 1) return json(res, 503, { error: 'not_ready' });
      sse(res);
      if (n === 2) {
        res.write('event: shutdown\ndata: {"reason":"bye"}\n\n');
        res.end();
        return;
      }
      ev(res, 1);
    });
    for await (const e of createClient({ url: s2.url }).follow(0, { reconnect: FAST })) {
      expect(e.sequence).toBe(1);
      break;
    }
    expect(s2.seen).toHaveLength(3);

    const s3 = await stub((_req, res) => json(res, 500, { error: 'internal' }));
    const err = await (async () => {
      for await (const _e of createClient({ url: s3.url }).follow(0, { reconnect: { ...FAST, attempts: 3 } })) break;
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EventLogUnavailableError);
    expect(s3.seen).toHaveLength(3);
  });

  it('a silent connection (no heartbeat) is dropped after idleTimeoutMs and resumed; the signal stops it cleanly', async () => {
    const s = await stub((req, res, n) => {
      sse(res);
      if (n === 1) ev(res, 1); // then silence: a half-open connection
      else ev(res, Number(req.headers['last-event-id']) + 1);
    });
    const ac = new AbortController();
    const seen: number[] = [];
    for await (const e of createClient({ url: s.url }).follow(0, { signal: ac.signal, idleTimeoutMs: 200, reconnect: FAST })) {
      seen.push(e.sequence);
      if (seen.length === 2) ac.abort();
    }
    expect(seen).toEqual([1, 2]);
    expect(s.seen.map((r) => r.headers['last-event-id'])).toEqual(['0', '1']);
  });

  it('a slow consumer is not mistaken for a silent server (the idle clock stops while the loop body runs)', async () => {
    const s = await stub((_req, res) => {
      sse(res);
      ev(res, 1);
      ev(res, 2);
    });
    const seen: number[] = [];
    for await (const e of createClient({ url: s.url }).follow(0, { idleTimeoutMs: 100, reconnect: FAST })) {
      seen.push(e.sequence);
      await new Promise((r) => setTimeout(r, 300));
      if (seen.length === 2) break;
    }
    expect(seen).toEqual([1, 2]);
    expect(s.seen).toHaveLength(1);
  });
});
