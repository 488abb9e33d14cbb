import { describe, expect, it } from 'vitest';
import {
  BadRequestError,
  createClient,
  EventLogClientError,
  EventLogUnavailableError,
  GoneError,
  IdempotencyConflictError,
  NotFoundError,
  StorageFullError,
  UnauthorizedError,
} from '../../../src/client/index.ts';
import { json, storedFor, stub } from './stub.ts';

const FAST = { attempts: 4, initialDelayMs: 1, maxDelayMs: 5, maxElapsedMs: 5000 };

describe('append', () => {
  it('retries 5xx with the same Idempotency-Key and the same bytes; sends the token', async () => {
    const s = await stub((req, res, n) => {
      if (n <= 2) return json(res, n === 1 ? 503 : 500, { error: 'not_ready', message: 'recovering' });
      json(res, 201, storedFor(req.body, 1));
    });
    const c = createClient({ url: s.url + '/', token: 't0k', retry: FAST });
    const e = await c.append({ type: 'x', s: 'Chidé 🎉' });
    expect(e).toMatchObject({ type: 'x', s: 'Chidé 🎉', sequence: 1 });
    expect(s.seen).toHaveLength(3);
    const keys = new Set(s.seen.map((r) => r.headers['idempotency-key']));
    expect(keys.size).toBe(1);
    expect([...keys][0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Set(s.seen.map((r) => r.body)).size).toBe(1);
    expect(s.seen.every((r) => r.headers.authorization === 'Bearer t0k' && r.headers['content-type'] === 'application/json' && r.url === '/events')).toBe(true);
    // Another logical append: another key.
    s.handler = (req, res) => json(res, 201, storedFor(req.body, 2));
    await c.append({ type: 'y' });
    expect(s.seen[3]!.headers['idempotency-key']).not.toBe(s.seen[0]!.headers['idempotency-key']);
    // A caller's own key is used as is.
    await c.append({ type: 'z' }, { idempotencyKey: 'order-42' });
    expect(s.seen[4]!.headers['idempotency-key']).toBe('order-42');
  });

  it('4xx and 507 are refusals: typed, thrown at once, never retried', async () => {
    const cases: [number, Record<string, unknown>, new (...a: never[]) => EventLogClientError][] = [
      [400, { error: 'invalid_json', message: 'bad' }, BadRequestError],
      [413, { error: 'payload_too_large', message: 'big' }, BadRequestError],
      [401, { error: 'unauthorized', message: 'no' }, UnauthorizedError],
      [404, { error: 'not_found', message: 'no route' }, NotFoundError],
      [410, { error: 'gone', message: 'retention', firstSequence: 77 }, GoneError],
      [422, { error: 'idempotency_conflict', message: 'other body' }, IdempotencyConflictError],
      [507, { error: 'storage_full', message: 'full', freeBytes: 10, reserveBytes: 1024 }, StorageFullError],
    ];
    for (const [status, body, type] of cases) {
      const s = await stub((_req, res) => json(res, status, body));
      const err = await createClient({ url: s.url, retry: FAST }).append({ a: 1 }).catch((e: unknown) => e);
      expect(err, String(status)).toBeInstanceOf(type);
      expect(err).toBeInstanceOf(EventLogClientError);
      expect((err as EventLogClientError).status).toBe(status);
      expect((err as EventLogClientError).code).toBe(body.error);
      expect(s.seen, `${status} was retried`).toHaveLength(1);
      if (err instanceof GoneError) expect(err.firstSequence).toBe(77);
      if (err instanceof StorageFullError) expect([err.freeBytes, err.reserveBytes]).toEqual([10, 1024]);
    }
  });

  it('bounded: EventLogUnavailableError after the attempts, or once maxElapsedMs would pass', async () => {
    const s = await stub((_req, res) => {
      res.writeHead(502);
      res.end('bad gateway (not JSON)');
    });
    const err = await createClient({ url: s.url, retry: FAST }).append({ a: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EventLogUnavailableError);
    expect((err as EventLogUnavailableError).attempts).toBe(4);
    expect((err as EventLogUnavailableError).status).toBe(502);
    expect((err as Error).message).toContain('bad gateway');
    expect(s.seen).toHaveLength(4);
    const s2 = await stub((_req, res) => json(res, 503, { error: 'failed' }));
    const err2 = await createClient({ url: s2.url, retry: { attempts: 1000, initialDelayMs: 40, maxDelayMs: 40, maxElapsedMs: 100 } }).append({ a: 1 }).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(EventLogUnavailableError);
    expect(s2.seen.length).toBeLessThan(10);
  });

  it('no answer (connection refused, timeout) is retried; the attempt timeout ends a hung request', async () => {
    let hung = 0;
    const s = await stub((req, res, n) => {
      if (n === 1) {
        hung++;
        return; // never answers
      }
      json(res, 201, storedFor(req.body, 5));
    });
    const c = createClient({ url: s.url, retry: FAST, requestTimeoutMs: 200 });
    expect((await c.append({ a: 1 })).sequence).toBe(5);
    expect(hung).toBe(1);
    expect(s.seen[0]!.headers['idempotency-key']).toBe(s.seen[1]!.headers['idempotency-key']);
    await s.close();
    const err = await createClient({ url: s.url, retry: { ...FAST, attempts: 2 } }).append({ a: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EventLogUnavailableError);
    expect((err as EventLogUnavailableError).status).toBeUndefined();
    expect((err as Error).message).toMatch(/ECONNREFUSED|fetch failed/);
  });

  it('your own abort stops at once (no retry, your reason)', async () => {
    const s = await stub(() => undefined);
    const ac = new AbortController();
    const p = createClient({ url: s.url, retry: FAST }).append({ a: 1 }, { signal: ac.signal });
    setTimeout(() => ac.abort(new Error('caller gave up')), 50);
    await expect(p).rejects.toThrow('caller gave up');
    expect(s.seen).toHaveLength(1);
  });

  it('refuses values that are not JSON objects before sending; a bad url at construction', async () => {
    const s = await stub((_req, res) => json(res, 201, {}));
    const c = createClient({ url: s.url });
    for (const v of [null, [1], 'x', 3]) await expect(c.append(v as never)).rejects.toThrow(TypeError);
    expect(s.seen).toHaveLength(0);
    expect(() => createClient({ url: 'localhost:8080' })).toThrow(TypeError);
  });
});

describe('appendBatch, read, poll', () => {
  it('appendBatch posts NDJSON with one key; read and poll parse NDJSON pages', async () => {
    const s = await stub((req, res) => {
      if (req.method === 'POST') {
        const lines = req.body.split('\n').filter(Boolean);
        return json(res, 201, lines.map((l, i) => storedFor(l, i + 1)));
      }
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.end(req.url.includes('after=9') ? '' : `${JSON.stringify(storedFor('{"r":1}', 1))}\n${JSON.stringify(storedFor('{"r":2}', 2))}\n`);
    });
    const c = createClient({ url: s.url });
    const stored = await c.appendBatch([{ a: 1 }, { a: 2 }]);
    expect(stored.map((e) => e.a)).toEqual([1, 2]);
    expect(s.seen[0]!.headers['content-type']).toBe('application/x-ndjson');
    expect(s.seen[0]!.body).toBe('{"a":1}\n{"a":2}\n');
    expect(s.seen[0]!.headers['idempotency-key']).toBeDefined();
    expect(await c.appendBatch([])).toEqual([]);
    expect((await c.read(0, 2)).map((e) => e.r)).toEqual([1, 2]);
    expect(s.seen.at(-1)!.url).toBe('/events?after=0&limit=2');
    expect(await c.poll(9, { waitMs: 1500 })).toEqual([]);
    expect(s.seen.at(-1)!.url).toBe('/events?after=9&limit=1000&wait=1500');
  });
});
