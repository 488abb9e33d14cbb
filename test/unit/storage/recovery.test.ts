import { readFile, readdir, rm, writeFile, appendFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeRecord } from '../../../src/storage/format.ts';
import { scanLog } from '../../../src/storage/scan.ts';
import { eventDraft } from '../../../src/storage/store.ts';
import { appendBody, openStore, readAll, segmentPaths, tempDir } from './helpers.ts';

/** Start offsets of every record in a segment, plus the end. */
function boundaries(seg: Buffer): number[] {
  const out: number[] = [];
  let p = 0;
  while (p < seg.length) {
    out.push(p);
    p += 8 + seg.readUInt32LE(p);
  }
  out.push(p);
  return out;
}

async function buildLog(n: number): Promise<{ dir: string; events: string[]; seg: Buffer; segPath: string }> {
  const dir = await tempDir();
  const store = await openStore(dir, { durability: 'none' });
  const events: string[] = [];
  for (let i = 0; i < n; i++) events.push(await appendBody(store, { i, msg: i % 2 ? 'Chidé 🎉' : 'plain', pad: 'é'.repeat(i % 5) }));
  await store.close();
  const [segPath] = await segmentPaths(dir);
  return { dir, events, seg: await readFile(segPath!), segPath: segPath! };
}

async function freshDirWith(seg: Buffer): Promise<string> {
  const dir = await tempDir();
  await mkdir(join(dir, 'segments'));
  await writeFile(join(dir, 'segments', '00000000000000000001.seg'), seg);
  return dir;
}

describe('recovery: torn tails', () => {
  it('truncating the log at every byte offset of its last 3 records recovers exactly the complete records', async () => {
    const { events, seg } = await buildLog(8);
    const b = boundaries(seg);
    const from = b[b.length - 4]!;
    let checked = 0;
    for (let cut = from; cut <= seg.length; cut++) {
      const dir = await freshDirWith(seg.subarray(0, cut));
      const scan = await scanLog(dir);
      const complete = b.filter((x) => x <= cut).length - 1;
      expect(scan.recordsRecovered).toBe(complete);
      if (b.includes(cut)) expect(scan.failure).toBeUndefined();
      else expect(scan.failure).toMatchObject({ kind: 'torn', offset: b[complete] });
      checked++;
      await rm(dir, { recursive: true });
    }
    expect(checked).toBe(seg.length - from + 1);
  });

  it('every torn cut of the last record: the tail is kept aside, the log appends, and survives the next restart', async () => {
    const { events, seg } = await buildLog(4);
    const b = boundaries(seg);
    const lastStart = b[b.length - 2]!;
    // Every byte of the last record (a full open/append/reopen cycle per cut point).
    for (let cut = lastStart + 1; cut < seg.length; cut++) {
      const dir = await freshDirWith(seg.subarray(0, cut));
      let store = await openStore(dir, { durability: 'none' });
      const r = store.report!;
      expect(r.outcome).toBe('TornTailTruncated');
      expect(r.recordsRecovered).toBe(3);
      expect(r.bytesTruncated).toBe(cut - lastStart);
      expect((await readFile(r.truncatedTo!)).equals(seg.subarray(lastStart, cut))).toBe(true);
      const added = await appendBody(store, { after: cut });
      expect(JSON.parse(added).sequence).toBe(4);
      await store.close();
      store = await openStore(dir, { durability: 'none' });
      expect(store.report!.outcome).toBe('Clean');
      expect(await readAll(store)).toEqual([...events.slice(0, 3), added]);
      await store.close();
      await rm(dir, { recursive: true });
    }
  });

  it('repeated crash -> restart -> append cycles keep every acknowledged event', async () => {
    const dir = await tempDir();
    const acked: string[] = [];
    for (let round = 0; round < 15; round++) {
      const store = await openStore(dir);
      expect(store.report!.outcome).toBe(round === 0 ? 'Clean' : 'TornTailTruncated');
      expect(await readAll(store)).toEqual(acked);
      for (let i = 0; i < 3; i++) acked.push(await appendBody(store, { round, i, s: 'Chidé 🎉' }));
      await store.close();
      // "Crash" in the middle of the next append: part of a valid record reaches the disk.
      const partial = encodeRecord({ sequence: acked.length + 1, flags: 0, id: 'x'.repeat(36), key: undefined, hash: undefined, payload: '{"torn":true}' });
      const segs = await segmentPaths(dir);
      await appendFile(segs.at(-1)!, partial.subarray(0, 1 + ((round * 7) % (partial.length - 1))));
    }
    const torn = await readdir(join(dir, 'torn'));
    expect(torn.length).toBe(14);
  });

  it('an incomplete batch at the tail is removed whole (no half-visible batch), even when its first records are intact', async () => {
    const dir = await tempDir();
    let store = await openStore(dir);
    const before = await appendBody(store, { single: 1 });
    await store.append({ events: [eventDraft('{"b":1}'), eventDraft('{"b":2}'), eventDraft('{"b":3}')], batch: true });
    await store.close();
    const [segPath] = await segmentPaths(dir);
    const seg = await readFile(segPath!);
    const b = boundaries(seg);
    for (const cut of [b[3]!, b[3]! + 5, b[2]!]) {
      await writeFile(segPath!, seg.subarray(0, cut));
      store = await openStore(dir);
      expect(store.report!.outcome).toBe('TornTailTruncated');
      expect(store.report!.recordsRecovered).toBe(1);
      expect(await readAll(store)).toEqual([before]);
      await store.close();
    }
  });
});

describe('recovery: interior damage is corruption, never skipped', () => {
  it('a bit flip in an interior record (header or payload) is CorruptionDetected at that record; earlier events stay readable', async () => {
    const { events, seg } = await buildLog(10);
    const b = boundaries(seg);
    const victim = 3;
    for (const rel of [0, 2, 5, 9, 17, 30, 40, b[victim + 1]! - b[victim]! - 1]) {
      const bad = Buffer.from(seg);
      bad[b[victim]! + rel]! ^= 0x10;
      const dir = await freshDirWith(bad);
      const store = await openStore(dir);
      expect(store.state).toBe('corrupt');
      const r = store.report!;
      expect(r.outcome).toBe('CorruptionDetected');
      expect(r.corruption).toMatchObject({ segment: 'segments/00000000000000000001.seg', offset: b[victim] });
      expect(r.corruption!.id).toMatch(/^[0-9a-f]{16}$/);
      expect(r.corruption!.reason).toMatch(/valid record follows|sequence gap|invalid record/);
      expect(await readAll(store)).toEqual(events.slice(0, victim));
      await expect(appendBody(store, { no: true })).rejects.toMatchObject({ code: 'corrupt' });
      // Nothing was deleted or truncated.
      await store.close();
      expect((await readFile(join(dir, 'segments', '00000000000000000001.seg'))).equals(bad)).toBe(true);
    }
  });

  it('a bit flip in the tail record is a torn tail (cut and kept aside)', async () => {
    const { events, seg } = await buildLog(5);
    const b = boundaries(seg);
    const bad = Buffer.from(seg);
    bad[b[4]! + 45]! ^= 0x01;
    const dir = await freshDirWith(bad);
    const store = await openStore(dir);
    expect(store.report).toMatchObject({ outcome: 'TornTailTruncated', recordsRecovered: 4, bytesTruncated: seg.length - b[4]! });
    expect(await readAll(store)).toEqual(events.slice(0, 4));
  });

  it('a zeroed 512-byte sector: interior -> corruption, at the very tail -> torn tail', async () => {
    const { seg } = await buildLog(30);
    expect(seg.length).toBeGreaterThan(2048);
    const interior = Buffer.from(seg);
    interior.fill(0, 512, 1024);
    let dir = await freshDirWith(interior);
    let store = await openStore(dir);
    expect(store.report!.outcome).toBe('CorruptionDetected');
    expect(store.report!.corruption!.offset).toBeLessThanOrEqual(512);
    await store.close();
    const tailStart = Math.floor((seg.length - 1) / 512) * 512;
    const tail = Buffer.from(seg);
    tail.fill(0, tailStart);
    const b = boundaries(seg);
    dir = await freshDirWith(tail);
    store = await openStore(dir);
    expect(store.report!.outcome).toBe('TornTailTruncated');
    expect(store.report!.recordsRecovered).toBe(b.filter((x) => x <= tailStart).length - 1);
  });

  it('a gap in sequences (valid checksums) is corruption', async () => {
    const recs = [1, 2, 4, 5].map((s) => encodeRecord({ sequence: s, flags: 0, id: `id-${s}`, key: undefined, hash: undefined, payload: `{"s":${s}}` }));
    const dir = await freshDirWith(Buffer.concat(recs));
    const store = await openStore(dir);
    expect(store.report!.outcome).toBe('CorruptionDetected');
    expect(store.report!.corruption).toMatchObject({ offset: recs[0]!.length + recs[1]!.length, reason: 'sequence gap: found sequence 4, expected 3' });
    expect(store.stats().total).toBe(2);
  });

  it('a missing segment and a damaged sealed segment are corruption', async () => {
    const dir = await tempDir();
    let store = await openStore(dir, { segmentMaxBytes: 4096 });
    for (let i = 0; i < 80; i++) await appendBody(store, { i, pad: 'y'.repeat(100) });
    await store.close();
    const segs = await segmentPaths(dir);
    expect(segs.length).toBeGreaterThanOrEqual(3);
    // Damage the last record of the first (sealed) segment.
    const first = await readFile(segs[0]!);
    const b = boundaries(first);
    const damaged = Buffer.from(first);
    damaged[b[b.length - 2]! + 50]! ^= 0xff;
    await writeFile(segs[0]!, damaged);
    store = await openStore(dir);
    expect(store.report!.corruption).toMatchObject({ segment: 'segments/' + segs[0]!.split('/').pop(), offset: b[b.length - 2] });
    expect(store.report!.corruption!.reason).toContain('sealed segment');
    await store.close();
    await writeFile(segs[0]!, first);
    await rm(segs[1]!);
    store = await openStore(dir);
    expect(store.report!.outcome).toBe('CorruptionDetected');
    expect(store.report!.corruption!.reason).toMatch(/^sequence gap: segment starts at sequence \d+, expected \d+$/);
    expect(store.report!.corruption!.offset).toBe(0);
  });

  it('the corruption id is stable across restarts', async () => {
    const { seg } = await buildLog(6);
    const bad = Buffer.from(seg);
    bad[boundaries(seg)[2]! + 40]! ^= 4;
    const dir = await freshDirWith(bad);
    let store = await openStore(dir);
    const id = store.report!.corruption!.id;
    await store.close();
    store = await openStore(dir);
    expect(store.report!.corruption!.id).toBe(id);
  });
});
