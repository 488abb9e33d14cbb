import { readdir, rm, symlink, utimes } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIRST_SEQUENCE_MARKER, planRetention, readFirstSequence, writeFirstSequence } from '../../../src/storage/retention.ts';
import { eventDraft, requestHash, type EventStore, type StoreOptions } from '../../../src/storage/store.ts';
import { verifyLog } from '../../../src/storage/verify.ts';
import { appendBody, openStore, segmentPaths, tempDir, readAll } from './helpers.ts';


const DAY = 86_400_000;
const seg = (base: number, size: number, newestMs?: number) => ({ baseSequence: base, size, newestMs });

describe('planRetention (pure)', () => {
  it('bytes: oldest sealed segments while the total exceeds the limit; never the active one', () => {
    const segs = [seg(1, 100), seg(11, 100), seg(21, 100), seg(31, 100)];
    expect(planRetention(segs, { maxBytes: 400 }, 0)).toBe(0);
    expect(planRetention(segs, { maxBytes: 399 }, 0)).toBe(1);
    expect(planRetention(segs, { maxBytes: 200 }, 0)).toBe(2);
    expect(planRetention(segs, { maxBytes: 1 }, 0)).toBe(3); // the active (last) segment always stays
    expect(planRetention([seg(1, 1e9)], { maxBytes: 1 }, 0)).toBe(0);
    expect(planRetention(segs, {}, 0)).toBe(0);
  });

  it('age: only segments whose newest write is older than maxAge, as a prefix (stops at the first young one)', () => {
    const now = 100 * DAY;
    const segs = [seg(1, 10, now - 9 * DAY), seg(5, 10, now - 8 * DAY), seg(9, 10, now - 1 * DAY), seg(12, 10, now - 30 * DAY), seg(20, 10, now)];
    expect(planRetention(segs, { maxAgeMs: 7 * DAY }, now)).toBe(2);
    expect(planRetention(segs, { maxAgeMs: 8 * DAY }, now)).toBe(1);
    expect(planRetention(segs, { maxAgeMs: 8 * DAY + 1 }, now)).toBe(1); // strictly older than maxAge
    expect(planRetention(segs, { maxAgeMs: 10 * DAY }, now)).toBe(0);
    expect(planRetention([seg(1, 10, undefined), seg(2, 10, 0)], { maxAgeMs: 1 }, now)).toBe(0); // unknown age is kept
    // Either limit removes.
    expect(planRetention(segs, { maxAgeMs: 10 * DAY, maxBytes: 35 }, now)).toBe(2);
  });
});

/**
 * A log of `n` events (~300 bytes each) in 4 KiB segments, written without retention;
 * returns it reopened with `opts` (no periodic check unless asked) and the stored events.
 */
async function buildLog(dir: string, n: number, opts: Partial<StoreOptions> = {}): Promise<{ store: EventStore; events: string[] }> {
  const writer = await openStore(dir, { segmentMaxBytes: 4096 });
  const events: string[] = [];
  for (let i = 0; i < n; i++) events.push(await appendBody(writer, { i, pad: 'r'.repeat(200), s: 'Chidé 🎉' }));
  await writer.close();
  const store = await openStore(dir, { segmentMaxBytes: 4096, spaceCheckMs: 1e9, ...opts });
  return { store, events };
}

const seqOf = (e: string) => JSON.parse(e).sequence as number;

describe('retention in the store', () => {
  it('by bytes: deletes the oldest sealed segments only, reads start at the first retained sequence, ids and keys of deleted events are forgotten', async () => {
    const dir = await tempDir();
    const hash = requestHash('application/json', 'old');
    const w = await openStore(dir, { segmentMaxBytes: 4096 });
    const events = [await appendBody(w, { first: true })];
    events.push((await w.append({ events: [eventDraft('{"old":1}')], batch: false, idempotencyKey: 'old-key', requestHash: hash })).payloads[0]!.toString());
    for (let i = 0; i < 150; i++) events.push(await appendBody(w, { i, pad: 'r'.repeat(200), s: 'Chidé 🎉' }));
    await w.close();
    const store = await openStore(dir, { segmentMaxBytes: 4096, spaceCheckMs: 1e9, retention: { maxBytes: 12 * 1024 } });
    const before = await segmentPaths(dir);
    expect(before.length).toBeGreaterThan(8);
    await store.runRetention();
    const after = await segmentPaths(dir);
    expect(after.length).toBeLessThan(before.length);
    // Oldest first: what is left is exactly the newest segments, the active one included.
    expect(after).toEqual(before.slice(before.length - after.length));
    const first = Number(basename(after[0]!).slice(0, 20));
    const st = store.stats();
    expect(store.firstSequence).toBe(first);
    expect(st.diskBytes).toBeLessThanOrEqual(12 * 1024);
    expect(st.diskBytes + 4096).toBeGreaterThan(12 * 1024); // not more removed than needed
    expect(st).toMatchObject({ lastSequence: events.length, total: events.length - first + 1, segments: after.length });
    expect(await readAll(store)).toEqual(events.slice(first - 1));
    expect(await store.readAfter(0, 5)).toEqual((await store.readAfter(first - 1, 5)));
    const r = store.retentionStatus();
    expect(r).toMatchObject({ maxBytes: 12 * 1024, maxAgeSeconds: null, firstSequence: first, removedSegments: before.length - after.length, removedEvents: first - 1 });
    expect(r.removedBytes).toBeGreaterThan(0);
    expect(new Date(r.lastRemovedAt!).toISOString()).toBe(r.lastRemovedAt);
    // Deleted: unknown by id; a retry of its key appends again (the key is forgotten).
    expect(await store.getById(JSON.parse(events[0]!).id)).toBeUndefined();
    expect(await store.getBySequence(1)).toBeUndefined();
    const retry = await store.append({ events: [eventDraft('{"old":1}')], batch: false, idempotencyKey: 'old-key', requestHash: hash });
    expect(retry.replayed).toBe(false);
    expect(retry.firstSequence).toBe(events.length + 1);
    // Retained: still known.
    const kept = events[events.length - 1]!;
    expect((await store.getById(JSON.parse(kept).id))!.toString()).toBe(kept);
    events.push(retry.payloads[0]!.toString());
    await store.close();
    // A restart is Clean and starts where retention left the log.
    const again = await openStore(dir, { segmentMaxBytes: 4096 });
    expect(again.report!.outcome).toBe('Clean');
    expect(again.firstSequence).toBe(first);
    expect(await readAll(again)).toEqual(events.slice(first - 1));
    await again.close();
    expect(await verifyLog(dir)).toMatchObject({ outcome: 'Clean', recordsRecovered: events.length - first + 1 });
  });

  it('by age with an injectable clock: a segment goes only when its newest write is older than maxAge; the active one never', async () => {
    const dir = await tempDir();
    let now = Date.now();
    const { store, events } = await buildLog(dir, 60, { retention: { maxAgeMs: 7 * DAY }, now: () => now, retentionCheckMs: 1e9 });
    const segs = await segmentPaths(dir);
    expect(segs.length).toBeGreaterThan(3);
    expect(await store.runRetention()).toBeUndefined(); // nothing is 7 days old
    now += 7 * DAY - 60_000;
    expect(await store.runRetention()).toBeUndefined(); // still younger than maxAge
    now += 2 * 60_000;
    const run = await store.runRetention();
    expect(run).toMatchObject({ segments: segs.length - 1 });
    expect(await segmentPaths(dir)).toEqual([segs.at(-1)]);
    expect(await readAll(store)).toEqual(events.slice(store.firstSequence - 1));
    expect(store.retentionStatus()).toMatchObject({ maxAgeSeconds: 7 * 86_400, lastRemovedAt: new Date(now).toISOString() });
  });

  it('by age, an event-time check: old segments (old mtime and createdAt) go, a younger one after them stops the deletion', async () => {
    const dir = await tempDir();
    const w = await openStore(dir, { segmentMaxBytes: 4096 });
    const old = '2020-01-01T00:00:00.000Z';
    for (let i = 0; i < 40; i++) await w.append({ events: [eventDraft(JSON.stringify({ i, pad: 'o'.repeat(200) }), old)], batch: false });
    const oldSegs = await segmentPaths(dir);
    for (let i = 0; i < 40; i++) await appendBody(w, { i, pad: 'n'.repeat(200) });
    await w.close();
    const all = await segmentPaths(dir);
    // The sealed old segments look old on disk too; the last old one also holds new events.
    const t = new Date(old);
    for (const p of oldSegs.slice(0, -1)) await utimes(p, t, t);
    // One more old-looking file after a young one: not removed (only a prefix goes).
    await utimes(all.at(-2)!, t, t);
    const store = await openStore(dir, { segmentMaxBytes: 4096, spaceCheckMs: 1e9, retention: { maxAgeMs: DAY } });
    const run = await store.runRetention();
    expect(run?.segments).toBe(oldSegs.length - 1);
    expect(await segmentPaths(dir)).toEqual(all.slice(oldSegs.length - 1));
  });

  it('a roll runs retention by itself', async () => {
    const dir = await tempDir();
    const store = await openStore(dir, { segmentMaxBytes: 4096, spaceCheckMs: 1e9, retentionCheckMs: 1e9, retention: { maxBytes: 8 * 1024 } });
    for (let i = 0; i < 120; i++) await appendBody(store, { i, pad: 'r'.repeat(200) });
    const deadline = Date.now() + 5000;
    while (store.retentionStatus().removedSegments === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(store.retentionStatus().removedSegments).toBeGreaterThan(0);
  });

  it('a read racing retention returns a contiguous run of events and never fails', async () => {
    const dir = await tempDir();
    const { store, events } = await buildLog(dir, 200, { retention: { maxBytes: 8 * 1024 }, retentionCheckMs: 1e9 });
    const reads = Array.from({ length: 20 }, () => store.readAfter(0, 10_000));
    const [got] = await Promise.all([Promise.all(reads), store.runRetention()]);
    for (const r of got) {
      const seqs = r.map((b) => seqOf(b.toString()));
      expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
      for (const b of r) expect(b.toString()).toBe(events[seqOf(b.toString()) - 1]);
    }
  });
});

describe('retention is crash-safe: every state a crash can leave recovers Clean', () => {
  async function sealedLog(): Promise<{ dir: string; events: string[]; segs: string[]; bases: number[] }> {
    const dir = await tempDir();
    const { store, events } = await buildLog(dir, 80);
    await store.close();
    const segs = await segmentPaths(dir);
    expect(segs.length).toBeGreaterThanOrEqual(5);
    return { dir, events, segs, bases: segs.map((p) => Number(basename(p).slice(0, 20))) };
  }

  it('marker written, nothing or part deleted yet (oldest first), or everything deleted: Clean from the marker on; recovery finishes the deletion', async () => {
    for (const deleted of [0, 1, 3]) {
      const { dir, events, segs, bases } = await sealedLog();
      await writeFirstSequence(dir, bases[3]!); // step 1 done
      for (const p of segs.slice(0, deleted)) await rm(p); // step 2 interrupted after `deleted` unlinks
      const store = await openStore(dir);
      expect(store.report!.outcome).toBe('Clean');
      expect(store.firstSequence).toBe(bases[3]);
      expect(await readAll(store)).toEqual(events.slice(bases[3]! - 1));
      expect(await segmentPaths(dir)).toEqual(segs.slice(3));
      expect(store.retentionStatus()).toMatchObject({ removedSegments: 3 - deleted, firstSequence: bases[3] });
      expect(JSON.parse(await appendBody(store, { after: 'crash' })).sequence).toBe(events.length + 1);
      await store.close();
      expect(await verifyLog(dir)).toMatchObject({ outcome: 'Clean' });
    }
  });

  it('crash between the temporary marker and its rename: the old state stands, nothing is lost', async () => {
    const { dir, events, segs } = await sealedLog();
    await symlink('first-sequence:999', join(dir, `${FIRST_SEQUENCE_MARKER}.tmp`));
    const store = await openStore(dir);
    expect(store.report!.outcome).toBe('Clean');
    expect(store.firstSequence).toBe(1);
    expect(await readAll(store)).toEqual(events);
    expect(await segmentPaths(dir)).toEqual(segs);
    await store.close();
    // The next retention run replaces the leftover.
    const s2 = await openStore(dir, { segmentMaxBytes: 4096, retention: { maxBytes: 1 } });
    await s2.runRetention();
    expect(await readFirstSequence(dir)).toBe(s2.firstSequence);
    expect((await readdir(dir)).filter((n) => n.startsWith(FIRST_SEQUENCE_MARKER))).toEqual([FIRST_SEQUENCE_MARKER]);
  });

  it('a head segment missing without the marker saying so is corruption, never a silent skip', async () => {
    const { dir, segs } = await sealedLog();
    await rm(segs[0]!);
    const store = await openStore(dir);
    expect(store.report!.outcome).toBe('CorruptionDetected');
    expect(store.report!.corruption!.reason).toMatch(/^sequence gap: segment starts at sequence \d+, expected 1$/);
  });

  it('a marker naming a sequence no segment starts at is corruption', async () => {
    const { dir, bases } = await sealedLog();
    await writeFirstSequence(dir, bases[2]! + 1);
    const store = await openStore(dir);
    expect(store.report!.outcome).toBe('CorruptionDetected');
    expect(store.report!.corruption!.reason).toContain(FIRST_SEQUENCE_MARKER);
  });
});
