import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { postJson, readAllLines, startServer, tempDir, waitState, type Server } from './helpers.ts';

const statusSchema = z.strictObject({
  state: z.enum(['recovering', 'ready', 'full', 'corrupt', 'failed']),
  version: z.string(),
  durability: z.enum(['fsync', 'interval', 'none']),
  startedAt: z.iso.datetime(),
  bootId: z.uuid(),
  recovery: z.strictObject({
    outcome: z.enum(['Clean', 'TornTailTruncated', 'CorruptionDetected']),
    startedAt: z.iso.datetime(),
    durationMs: z.number(),
    segmentsScanned: z.number(),
    bytesScanned: z.number(),
    recordsRecovered: z.number(),
    bytesTruncated: z.number(),
    truncatedTo: z.string().optional(),
    tornCopySkipped: z.string().optional(),
    corruption: z.strictObject({ id: z.string(), segment: z.string(), offset: z.number(), reason: z.string() }).optional(),
  }),
  stats: z.object({ total: z.number(), bytes: z.number(), lastSequence: z.number() }),
  storage: z
    .strictObject({
      filesystemBytes: z.number().int().min(0),
      freeBytes: z.number().int().min(0),
      usedBytes: z.number().int().min(0),
      reserveBytes: z.number().int().min(0),
      logBytes: z.number().int().min(0),
      sideFileBytes: z.number().int().min(0),
      appendsRefused: z.number().int().min(0),
    })
    .optional(),
  retention: z.strictObject({
    maxAgeSeconds: z.number().int().min(0).nullable(),
    maxBytes: z.number().int().min(0).nullable(),
    firstSequence: z.number().int().min(1),
    removedSegments: z.number().int().min(0),
    removedEvents: z.number().int().min(0),
    removedBytes: z.number().int().min(0),
    lastRemovedAt: z.iso.datetime().nullable(),
  }),
  repair: z.object({ corruptionId: z.string(), movedTo: z.string(), bytesMoved: z.number() }).optional(),
});

let server: Server;
let url: string;

async function stats(): Promise<{ total: number; bytes: number; lastSequence: number }> {
  return (await (await fetch(`${url}/stats`)).json()) as { total: number; bytes: number; lastSequence: number };
}

async function expectJsonError(r: Response, status: number): Promise<Record<string, unknown>> {
  expect(r.status).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await r.json()) as Record<string, unknown>;
  expect(typeof body.error).toBe('string');
  expect(typeof body.message).toBe('string');
  return body;
}

beforeAll(async () => {
  const dir = await tempDir();
  server = await startServer(`${dir}/data`);
  url = server.url;
  await waitState(url, ['ready']);
});
afterAll(async () => {
  const r = await server.kill('SIGTERM');
  expect(r.code).toBe(0);
});

describe('HTTP API contract', () => {
  it('POST /events -> 201 with the body plus server id, createdAt and gap-free sequence; client id/createdAt ignored', async () => {
    const before = await stats();
    const r = await postJson(url, { type: 'signup', msg: 'Chidé 🎉', id: 'client-id', createdAt: 'client-time' });
    expect(r.status).toBe(201);
    const text = await r.text();
    const ev = JSON.parse(text);
    expect(ev).toMatchObject({ type: 'signup', msg: 'Chidé 🎉', sequence: before.lastSequence + 1 });
    expect(ev.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(ev.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const after = await stats();
    expect(after.total).toBe(before.total + 1);
    expect(after.bytes - before.bytes).toBe(Buffer.byteLength(text));
    // GET /events/{id} is byte-for-byte what was stored.
    const g = await fetch(`${url}/events/${ev.id}`);
    expect(g.status).toBe(200);
    expect(Buffer.from(await g.arrayBuffer()).equals(Buffer.from(text))).toBe(true);
  });

  it('GET /events/{id} unknown -> 404 JSON', async () => {
    const body = await expectJsonError(await fetch(`${url}/events/does-not-exist`), 404);
    expect(body.error).toBe('not_found');
  });

  it('Idempotency-Key: same body -> 200 with the original, different body -> 422, nothing appended', async () => {
    const key = `k-${Date.now()}`;
    const first = await postJson(url, { pay: 1 }, { 'idempotency-key': key });
    expect(first.status).toBe(201);
    const original = await first.text();
    const total = (await stats()).total;
    const retry = await postJson(url, { pay: 1 }, { 'idempotency-key': key });
    expect(retry.status).toBe(200);
    expect(await retry.text()).toBe(original);
    await expectJsonError(await postJson(url, { pay: 2 }, { 'idempotency-key': key }), 422);
    await expectJsonError(await postJson(url, { pay: 1 }, { 'idempotency-key': 'bad key with spaces' }), 400);
    expect((await stats()).total).toBe(total);
  });

  it('POST /events with application/x-ndjson appends a batch and returns all stored events', async () => {
    const before = await stats();
    const r = await fetch(`${url}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: '{"n":1}\n{"n":2,"s":"🎉"}\r\n\n{"n":3}\n',
    });
    expect(r.status).toBe(201);
    const evs = (await r.json()) as { n: number; sequence: number }[];
    expect(evs.map((e) => e.n)).toEqual([1, 2, 3]);
    expect(evs.map((e) => e.sequence)).toEqual([1, 2, 3].map((i) => before.lastSequence + i));
  });

  it('NDJSON lines are stored as compact JSON without reserved fields, whether framed from the bytes or re-serialised', async () => {
    const lines = ['{"type":"a","n":1}', '{ "type" : "b" , "n" : 2 }', '{"id":"mine","sequence":9,"type":"c"}', '{"type":"d","s":"\\u00e9\\/"}', '{"type":"e","x":1,"x":2}', '{"b":1,"0":"first"}', '{"type":"f","s":"Chidé 🎉"}'];
    const r = await fetch(`${url}/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: lines.join('\n') });
    expect(r.status).toBe(201);
    const stored = (await r.json()) as Record<string, unknown>[];
    const all = await readAllLines(url);
    for (let i = 0; i < lines.length; i++) {
      const e = stored[i]!;
      const { id: _id, createdAt: _c, sequence: _s, ...rest } = JSON.parse(lines[i]!) as Record<string, unknown>;
      // Byte for byte what the append path always stored: server fields first, then the client's object, compact.
      const expected = `{"id":"${e.id}","createdAt":"${e.createdAt}","sequence":${e.sequence}` + (Object.keys(rest).length > 0 ? ',' + JSON.stringify(rest).slice(1) : '}');
      expect(all[(e.sequence as number) - 1]).toBe(expected);
    }
    expect(new Set(stored.map((e) => e.id)).size).toBe(lines.length);
    expect(stored.map((e) => e.id)).not.toContain('mine');
  });

  it('a bad line after good ones is named (400, same message as ever) and nothing of the batch is stored', async () => {
    const before = await stats();
    const r = await fetch(`${url}/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: '{"ok":1}\n{"ok":2}\n{"a": }\n' });
    const body = await expectJsonError(r, 400);
    expect(body.error).toBe('invalid_json');
    expect(body.message).toMatch(/^line 3 is not valid JSON: /);
    expect(await stats()).toEqual(before);
  });

  it('a batch with one bad line is rejected whole (400) and changes nothing', async () => {
    const before = await stats();
    const r = await fetch(`${url}/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: '{"ok":1}\n[1,2]\n{"ok":3}\n' });
    await expectJsonError(r, 400);
    await expectJsonError(await fetch(`${url}/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: '\n\n' }), 400);
    expect(await stats()).toEqual(before);
  });

  it('bad input never changes the log: 400 malformed/non-object/invalid UTF-8, 413 too large, 415 wrong type', async () => {
    const before = await stats();
    expect((await expectJsonError(await postJson(url, '{"a":'), 400)).error).toBe('invalid_json');
    expect((await expectJsonError(await postJson(url, '[1,2]'), 400)).error).toBe('not_an_object');
    await expectJsonError(await postJson(url, 'null'), 400);
    await expectJsonError(await postJson(url, '42'), 400);
    await expectJsonError(await postJson(url, ''), 400);
    const invalidUtf8 = Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    expect((await expectJsonError(await fetch(`${url}/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: invalidUtf8 }), 400)).error).toBe('invalid_utf8');
    const big = JSON.stringify({ pad: 'x'.repeat(1024 * 1024) });
    expect((await expectJsonError(await postJson(url, big), 413)).error).toBe('payload_too_large');
    expect((await expectJsonError(await fetch(`${url}/events`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"a":1}' }), 415)).error).toBe('unsupported_media_type');
    expect(await stats()).toEqual(before);
  });

  it('GET /events?after=SEQ&limit=N -> NDJSON in order; bad query -> 400', async () => {
    for (let i = 0; i < 5; i++) expect((await postJson(url, { page: i })).status).toBe(201);
    const all = await readAllLines(url);
    const seqs = all.map((l) => JSON.parse(l).sequence);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    const r = await fetch(`${url}/events?after=2&limit=2`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    expect((await r.text()).split('\n').filter(Boolean)).toEqual(all.slice(2, 4));
    const end = await fetch(`${url}/events?after=${all.length}`);
    expect(await end.text()).toBe('');
    await expectJsonError(await fetch(`${url}/events?after=-1`), 400);
    await expectJsonError(await fetch(`${url}/events?limit=abc`), 400);
    await expectJsonError(await fetch(`${url}/events?limit=0`), 400);
  });

  it('GET /stats, /status, /healthz, /readyz, /metrics', async () => {
    const s = await stats();
    expect(s.total).toBe(s.lastSequence);
    const status = statusSchema.parse(await (await fetch(`${url}/status`)).json());
    expect(status).toMatchObject({ state: 'ready', durability: 'fsync', recovery: { outcome: 'Clean' } });
    expect(status.stats.total).toBe(s.total);
    expect((await fetch(`${url}/v1/status`)).status).toBe(200);
    expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    for (const name of ['eventlog_appends_total', 'eventlog_appended_bytes_total', 'eventlog_fsync_duration_seconds_bucket', 'eventlog_commit_batch_events_bucket', 'eventlog_recovery_duration_seconds', 'eventlog_recovery_bytes_scanned', 'eventlog_recovery_outcome{outcome="Clean"} 1']) {
      expect(metrics).toContain(name);
    }
    expect(Number(/^eventlog_appends_total (\d+)$/m.exec(metrics)![1])).toBe(s.total);
  });

  it('unknown route -> 404 JSON; repair when not corrupt -> 409; bad repair body -> 400', async () => {
    await expectJsonError(await fetch(`${url}/nope`), 404);
    await expectJsonError(await fetch(`${url}/admin/repair`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"corruptionId":"abc"}' }), 409);
    await expectJsonError(await fetch(`${url}/admin/repair`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }), 400);
  });
});

describe('bearer token', () => {
  it('guards /events*, /stats, /status, /admin with 401 JSON; /healthz, /readyz, /metrics stay open', async () => {
    const dir = await tempDir();
    const s = await startServer(`${dir}/data`, [], { EVENTLOG_AUTH_TOKEN: 's3cret' });
    const auth = { authorization: 'Bearer s3cret' };
    await waitState(s.url, ['ready'], auth);
    for (const [path, init] of [
      ['/events', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }],
      ['/events?after=0', {}],
      ['/events/x', {}],
      ['/stats', {}],
      ['/status', {}],
      ['/admin/repair', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"corruptionId":"x"}' }],
    ] as const) {
      await expectJsonError(await fetch(`${s.url}${path}`, init), 401);
      await expectJsonError(await fetch(`${s.url}${path}`, { ...init, headers: { ...('headers' in init ? init.headers : {}), authorization: 'Bearer wrong' } }), 401);
    }
    expect((await postJson(s.url, { ok: true }, auth)).status).toBe(201);
    expect((await fetch(`${s.url}/stats`, { headers: auth })).status).toBe(200);
    for (const open of ['/healthz', '/readyz', '/metrics']) expect((await fetch(`${s.url}${open}`)).status).toBe(200);
    expect((await s.kill('SIGTERM')).code).toBe(0);
  });
});
