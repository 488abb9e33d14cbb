import { readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LockedError } from '../../../src/storage/lock.ts';
import { EventStore, StoreError, eventBodyJson, eventDraft, requestHash } from '../../../src/storage/store.ts';
import { appendBody, openStore, readAll, segmentPaths, tempDir } from './helpers.ts';

describe('EventStore append and read', () => {
  it('assigns sequences 1, 2, 3 and returns byte-identical events by id and by position', async () => {
    const dir = await tempDir();
    const store = await openStore(dir);
    const a = JSON.parse(await appendBody(store, { type: 'a' }));
    const b = JSON.parse(await appendBody(store, { type: 'b', n: 2 }));
    expect([a.sequence, b.sequence]).toEqual([1, 2]);
    expect(a.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Date(a.createdAt).toISOString()).toBe(a.createdAt);
    expect((await store.getById(b.id))!.toString()).toBe(JSON.stringify(b));
    expect((await store.getById('nope'))).toBeUndefined();
    expect((await store.readAfter(1, 10)).map((x) => x.toString())).toEqual([JSON.stringify(b)]);
    expect(await store.readAfter(2, 10)).toEqual([]);
  });

  it('drops client-sent id/createdAt/sequence in favour of the server values', () => {
    const body = eventBodyJson({ id: 'client', createdAt: 'yesterday', sequence: 99, x: 1 });
    expect(JSON.parse(body)).toEqual({ x: 1 });
    const d = eventDraft(body, '2026-01-01T00:00:00.000Z', 'srv-id');
    expect(JSON.parse(d.pre + 5 + d.post)).toEqual({ id: 'srv-id', createdAt: '2026-01-01T00:00:00.000Z', sequence: 5, x: 1 });
    const empty = eventDraft('{}', '2026-01-01T00:00:00.000Z', 'e');
    expect(JSON.parse(empty.pre + 1 + empty.post)).toEqual({ id: 'e', createdAt: '2026-01-01T00:00:00.000Z', sequence: 1 });
  });

  it('counts bytes, not characters: "Chidé 🎉" survives reopen byte-identical and stats add up', async () => {
    const dir = await tempDir();
    let store = await openStore(dir);
    const stored: string[] = [];
    for (const msg of ['Chidé 🎉', 'ascii', '日本語テキスト', '🎉🎉🎉', 'Chidé 🎉'.repeat(50)]) stored.push(await appendBody(store, { msg }));
    const expectedBytes = stored.reduce((n, s) => n + Buffer.byteLength(s), 0);
    expect(expectedBytes).toBeGreaterThan(stored.reduce((n, s) => n + s.length, 0));
    expect(store.stats()).toMatchObject({ total: 5, bytes: expectedBytes, lastSequence: 5 });
    await store.close();
    store = await openStore(dir);
    expect(store.report!.outcome).toBe('Clean');
    expect(store.stats()).toMatchObject({ total: 5, bytes: expectedBytes });
    expect(await readAll(store)).toEqual(stored);
    for (const s of stored) expect((await store.getById(JSON.parse(s).id))!.toString('utf8')).toBe(s);
  });

  it('appends a batch atomically with consecutive sequences', async () => {
    const dir = await tempDir();
    const store = await openStore(dir);
    await appendBody(store, { first: true });
    const res = await store.append({ events: [eventDraft('{"i":0}'), eventDraft('{"i":1}'), eventDraft('{"i":2}')], batch: true });
    expect(res.firstSequence).toBe(2);
    expect(res.payloads.map((p) => JSON.parse(p.toString()).sequence)).toEqual([2, 3, 4]);
    expect(store.stats().total).toBe(4);
  });

  it('sequence digits grow inside one group commit (9 -> 10, 99 -> 100): payloads, index and reopen agree', async () => {
    const dir = await tempDir();
    let store = await openStore(dir);
    for (let i = 0; i < 7; i++) await appendBody(store, { i });
    // One batch crossing 9 -> 10 and concurrent singles crossing 99 -> 100 share group commits.
    const batch = await store.append({ events: Array.from({ length: 5 }, (_, i) => eventDraft(`{"b":${i},"s":"é"}`)), batch: true });
    expect(batch.payloads.map((p) => JSON.parse(p.toString()).sequence)).toEqual([8, 9, 10, 11, 12]);
    const singles = await Promise.all(Array.from({ length: 100 }, (_, i) => appendBody(store, { c: i, u: '🎉' })));
    expect(singles.map((s) => JSON.parse(s).sequence).sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i + 13));
    const all = await readAll(store);
    expect(all.map((s) => JSON.parse(s).sequence)).toEqual(Array.from({ length: 112 }, (_, i) => i + 1));
    expect(store.stats().bytes).toBe(all.reduce((n, s) => n + Buffer.byteLength(s), 0));
    await store.close();
    store = await openStore(dir);
    expect(store.report!.outcome).toBe('Clean');
    expect(await readAll(store)).toEqual(all);
    for (const s of [...batch.payloads.map((p) => p.toString()), ...singles]) expect((await store.getById(JSON.parse(s).id))!.toString()).toBe(s);
  });

  it('group commit: many concurrent appends share fdatasyncs and all get distinct gap-free sequences', async () => {
    const dir = await tempDir();
    let commits = 0;
    let syncs = 0;
    const store = await openStore(dir, {
      onCommit: (c) => {
        if (c.events > 0) commits++;
      },
      io: {
        datasync: async (fh) => {
          syncs++;
          await fh.datasync();
        },
      },
    });
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => appendBody(store, { i })));
    const seqs = results.map((r) => JSON.parse(r).sequence).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(commits).toBeLessThan(200);
    expect(syncs).toBe(commits);
  });

  it('publishes nothing to readers or stats before the fdatasync returns', async () => {
    const dir = await tempDir();
    let release!: () => void;
    let syncing!: () => void;
    const entered = new Promise<void>((r) => (syncing = r));
    const gate = new Promise<void>((r) => (release = r));
    const store = await openStore(dir, {
      io: {
        datasync: async (fh) => {
          syncing();
          await gate;
          await fh.datasync();
        },
      },
    });
    const p = appendBody(store, { slow: true });
    await entered;
    expect(store.stats().total).toBe(0);
    expect(await store.readAfter(0, 10)).toEqual([]);
    release();
    const ev = JSON.parse(await p);
    expect(store.stats().total).toBe(1);
    expect((await store.getById(ev.id))!.toString()).toBe(JSON.stringify(ev));
  });

  it('a failed fdatasync is never retried: the append fails, the store refuses writes, onFatal fires once', async () => {
    const dir = await tempDir();
    let syncs = 0;
    const fatals: Error[] = [];
    const store = await openStore(dir, {
      onFatal: (e) => fatals.push(e),
      io: {
        datasync: async () => {
          syncs++;
          throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
        },
      },
    });
    const results = await Promise.allSettled([appendBody(store, { a: 1 }), appendBody(store, { a: 2 }), appendBody(store, { a: 3 })]);
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    expect(store.state).toBe('failed');
    expect(store.stats().total).toBe(0);
    await expect(appendBody(store, { later: true })).rejects.toMatchObject({ code: 'failed' });
    expect(syncs).toBe(1);
    expect(fatals).toHaveLength(1);
    expect(fatals[0]!.message).toContain('EIO');
  });

  it('a failed write is not acknowledged and stops the store', async () => {
    const dir = await tempDir();
    const store = await openStore(dir, {
      io: {
        write: async () => {
          throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        },
      },
    });
    await expect(appendBody(store, { a: 1 })).rejects.toBeInstanceOf(StoreError);
    expect(store.state).toBe('failed');
  });

  it('interval and none modes acknowledge after the write and survive a reopen', async () => {
    for (const durability of ['interval', 'none'] as const) {
      const dir = await tempDir();
      let store = await openStore(dir, { durability, fsyncIntervalMs: 5 });
      const ev = await appendBody(store, { durability });
      expect(store.stats().total).toBe(1);
      await store.close();
      store = await openStore(dir, { durability });
      expect((await store.getById(JSON.parse(ev).id))!.toString()).toBe(ev);
    }
  });

  it('rolls segments at the size limit and reads across them', async () => {
    const dir = await tempDir();
    let store = await openStore(dir, { segmentMaxBytes: 4096 });
    const all: string[] = [];
    for (let i = 0; i < 60; i++) all.push(await appendBody(store, { i, pad: 'x'.repeat(100) }));
    expect((await segmentPaths(dir)).length).toBeGreaterThan(2);
    await store.close();
    store = await openStore(dir, { segmentMaxBytes: 4096 });
    expect(store.report!.outcome).toBe('Clean');
    expect(store.report!.segmentsScanned).toBe((await segmentPaths(dir)).length);
    expect(await readAll(store)).toEqual(all);
    all.push(await appendBody(store, { after: 'reopen' }));
    expect(JSON.parse(all.at(-1)!).sequence).toBe(61);
  });
});

describe('idempotency keys', () => {
  it('a retry with the same key and body returns the original event and appends nothing, even after reopen', async () => {
    const dir = await tempDir();
    let store = await openStore(dir);
    const hash = requestHash('application/json', '{"a":1}');
    const first = await store.append({ events: [eventDraft('{"a":1}')], batch: false, idempotencyKey: 'key-1', requestHash: hash });
    const again = await store.append({ events: [eventDraft('{"a":1}')], batch: false, idempotencyKey: 'key-1', requestHash: hash });
    expect(again.replayed).toBe(true);
    expect(again.payloads[0]!.equals(first.payloads[0]!)).toBe(true);
    expect(store.stats().total).toBe(1);
    await store.close();
    store = await openStore(dir);
    const third = await store.append({ events: [eventDraft('{"a":1}')], batch: false, idempotencyKey: 'key-1', requestHash: hash });
    expect(third.replayed).toBe(true);
    expect(third.payloads[0]!.toString()).toBe(first.payloads[0]!.toString());
    await expect(
      store.append({ events: [eventDraft('{"a":2}')], batch: false, idempotencyKey: 'key-1', requestHash: requestHash('application/json', '{"a":2}') }),
    ).rejects.toMatchObject({ code: 'idempotency_conflict' });
    expect(store.stats().total).toBe(1);
  });

  it('concurrent requests with one key append once', async () => {
    const dir = await tempDir();
    const store = await openStore(dir);
    const hash = requestHash('application/json', '{"c":1}');
    const rs = await Promise.all(
      Array.from({ length: 10 }, () => store.append({ events: [eventDraft('{"c":1}')], batch: false, idempotencyKey: 'same', requestHash: hash })),
    );
    expect(rs.filter((r) => !r.replayed)).toHaveLength(1);
    expect(new Set(rs.map((r) => r.payloads[0]!.toString())).size).toBe(1);
    expect(store.stats().total).toBe(1);
  });

  it('a batch key replays the whole batch after reopen', async () => {
    const dir = await tempDir();
    let store = await openStore(dir);
    const hash = requestHash('application/x-ndjson', 'b');
    const first = await store.append({ events: [eventDraft('{"i":1}'), eventDraft('{"i":2}')], batch: true, idempotencyKey: 'bk', requestHash: hash });
    await store.close();
    store = await openStore(dir);
    const again = await store.append({ events: [eventDraft('{"i":1}'), eventDraft('{"i":2}')], batch: true, idempotencyKey: 'bk', requestHash: hash });
    expect(again.replayed).toBe(true);
    expect(again.payloads.map(String)).toEqual(first.payloads.map(String));
  });
});

describe('data-dir lock', () => {
  it('refuses a second opener while the first holds it, and allows it after close', async () => {
    const dir = await tempDir();
    const a = await openStore(dir);
    const b = new EventStore({ dataDir: dir });
    await expect(b.open()).rejects.toBeInstanceOf(LockedError);
    await a.close();
    const c = await openStore(dir);
    expect(c.state).toBe('ready');
  });

  it('takes over a stale lock left by a dead process', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'LOCK'), JSON.stringify({ pid: 2 ** 22 + 12345, processStart: '1', hostname: hostname(), acquiredAt: 'then' }));
    const s = await openStore(dir);
    expect(s.state).toBe('ready');
    expect(JSON.parse(await readFile(join(dir, 'LOCK'), 'utf8')).pid).toBe(process.pid);
  });
});
