import { describe, expect, it } from 'vitest';
import { createClient, ProducerBufferFullError, StorageFullError } from '../../../src/client/index.ts';
import { json, storedFor, stub, type Seen } from './stub.ts';

let seq = 0;
function batchAnswer(req: Seen): Record<string, unknown>[] {
  return req.body.split('\n').filter(Boolean).map((l) => storedFor(l, ++seq));
}

describe('producer', () => {
  it('appends within lingerMs share one batch; each caller gets its own event', async () => {
    const s = await stub((req, res) => json(res, 201, batchAnswer(req)));
    const p = createClient({ url: s.url }).producer({ lingerMs: 30 });
    const a = p.append({ n: 1 });
    await new Promise((r) => setTimeout(r, 5));
    const b = p.append({ n: 2 });
    const [ea, eb] = await Promise.all([a, b]);
    expect([ea.n, eb.n]).toEqual([1, 2]);
    expect(eb.sequence).toBe(ea.sequence + 1);
    expect(s.seen).toHaveLength(1);
    expect(s.seen[0]!.headers['content-type']).toBe('application/x-ndjson');
    expect(s.seen[0]!.body).toBe('{"n":1}\n{"n":2}\n');
    await p.close();
  });

  it('maxBatchEvents and maxBatchBytes cut batches; maxInFlight 1 sends them one after another in call order', async () => {
    let inFlight = 0;
    let maxSeen = 0;
    const s = await stub(async (req, res) => {
      inFlight++;
      maxSeen = Math.max(maxSeen, inFlight);
      await new Promise((r) => setTimeout(r, 20));
      inFlight--;
      json(res, 201, batchAnswer(req));
    });
    const p = createClient({ url: s.url }).producer({ lingerMs: 1000, maxBatchEvents: 4, maxBatchBytes: 60 });
    // 10 events of 20 bytes each line: bytes cut at 3 events (60), events would cut at 4.
    const all = await Promise.all(Array.from({ length: 10 }, (_, i) => p.append({ pad: 'x'.repeat(9), i })));
    expect(all.map((e) => e.i)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    const sizes = s.seen.map((r) => r.body.split('\n').filter(Boolean).length);
    expect(sizes.every((n) => n <= 3)).toBe(true);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(10);
    expect(maxSeen).toBe(1);
    const order = s.seen.flatMap((r) => r.body.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { i: number }).i));
    expect(order).toEqual(all.map((e) => e.i));
    expect(new Set(s.seen.map((r) => r.headers['idempotency-key'])).size).toBe(s.seen.length);
    await p.close();
  });

  it('flush() sends without waiting for the linger; a refused batch rejects each caller with the typed error', async () => {
    const s = await stub((req, res, n) => (n === 1 ? json(res, 201, batchAnswer(req)) : json(res, 507, { error: 'storage_full', message: 'full', freeBytes: 1, reserveBytes: 2 })));
    const p = createClient({ url: s.url }).producer({ lingerMs: 60_000 });
    const a = p.append({ a: 1 });
    await p.flush();
    expect((await a).a).toBe(1);
    const rest = Array.from({ length: 3 }, (_, i) => p.append({ b: i }).catch((e: unknown) => e));
    await p.flush();
    for (const r of await Promise.all(rest)) expect(r).toBeInstanceOf(StorageFullError);
    expect(s.seen).toHaveLength(2);
    expect(p.stats).toEqual({ batches: 2, events: 1, failedBatches: 1 });
  });

  it('bounded memory: beyond maxBufferedBytes, append is refused at once', async () => {
    const s = await stub(() => undefined); // never answers: everything stays buffered
    const p = createClient({ url: s.url, requestTimeoutMs: 60_000 }).producer({ lingerMs: 0, maxBufferedBytes: 100 });
    void p.append({ first: 'in flight' }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 20));
    void p.append({ pad: 'x'.repeat(50) }).catch(() => undefined);
    await expect(p.append({ pad: 'y'.repeat(60) })).rejects.toBeInstanceOf(ProducerBufferFullError);
    expect(() => createClient({ url: s.url }).producer({ maxBatchEvents: 0 })).toThrow(RangeError);
  });
});
