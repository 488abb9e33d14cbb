import { readFile, readdir, writeFile, appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ImportError, importNdjson } from '../../../src/storage/import.ts';
import { verifyLog } from '../../../src/storage/verify.ts';
import { appendBody, openStore, readAll, segmentPaths, tempDir } from './helpers.ts';

describe('verify', () => {
  it('reports the same as recovery without changing anything on disk', async () => {
    const dir = await tempDir();
    const store = await openStore(dir);
    for (let i = 0; i < 5; i++) await appendBody(store, { i });
    await store.close();
    expect(await verifyLog(dir)).toMatchObject({ outcome: 'Clean', recordsRecovered: 5, segmentsScanned: 1, dryRun: true });
    const [seg] = await segmentPaths(dir);
    await appendFile(seg!, Buffer.from([1, 2, 3, 4, 5, 6, 7]));
    const before = await readFile(seg!);
    const r = await verifyLog(dir);
    expect(r).toMatchObject({ outcome: 'TornTailTruncated', recordsRecovered: 5, bytesTruncated: 7, dryRun: true });
    expect(r.truncatedTo).toBeUndefined();
    expect((await readFile(seg!)).equals(before)).toBe(true);
    const bad = Buffer.from(before);
    bad[60]! ^= 0x80;
    await writeFile(seg!, bad);
    const c = await verifyLog(dir);
    expect(c.outcome).toBe('CorruptionDetected');
    const opened = await openStore(dir);
    expect(opened.report!.corruption).toEqual(c.corruption);
  });
});

describe('import of a legacy NDJSON log', () => {
  it('keeps ids and createdAt, assigns sequences, allows a torn last line, and skips ids already imported', async () => {
    const dir = await tempDir();
    const src = join(dir, 'legacy.log');
    const lines = [
      JSON.stringify({ id: 'legacy-1', createdAt: '2024-01-01T00:00:00.000Z', type: 'a', msg: 'Chidé 🎉' }),
      JSON.stringify({ id: 'legacy-2', createdAt: '2024-01-01T00:00:01.000Z', sequence: 77, type: 'b' }),
      '',
      JSON.stringify({ id: 'legacy-3', createdAt: '2024-01-01T00:00:02.000Z' }),
    ];
    await writeFile(src, lines.join('\n') + '\n{"id":"legacy-4","createdA');
    const data = join(dir, 'data');
    let store = await openStore(data);
    const rep = await importNdjson(store, src);
    expect(rep).toMatchObject({ imported: 3, tornLastLine: true, firstSequence: 1, lastSequence: 3, blankLines: 1 });
    const e1 = JSON.parse((await store.getById('legacy-1'))!.toString());
    expect(e1).toEqual({ sequence: 1, id: 'legacy-1', createdAt: '2024-01-01T00:00:00.000Z', type: 'a', msg: 'Chidé 🎉' });
    expect(JSON.parse((await store.getById('legacy-2'))!.toString()).sequence).toBe(2);
    await store.close();
    store = await openStore(data);
    const again = await importNdjson(store, src);
    expect(again).toMatchObject({ imported: 0, skippedExisting: 3 });
    expect(await readAll(store)).toHaveLength(3);
  });

  it('rejects a malformed interior line and imports nothing', async () => {
    const dir = await tempDir();
    const src = join(dir, 'legacy.log');
    await writeFile(src, '{"id":"a","createdAt":"x"}\n{broken\n{"id":"b","createdAt":"y"}\n');
    const store = await openStore(join(dir, 'data'));
    await expect(importNdjson(store, src)).rejects.toBeInstanceOf(ImportError);
    await expect(importNdjson(store, src)).rejects.toThrow(/legacy\.log:2: invalid JSON/);
    expect(store.stats().total).toBe(0);
    await writeFile(src, '{"createdAt":"x"}\n');
    await expect(importNdjson(store, src)).rejects.toThrow(/:1: missing string "id"/);
  });
});

describe('repair', () => {
  it('refuses a mismatched id, then moves the corrupt part aside and becomes writable', async () => {
    const dir = await tempDir();
    let store = await openStore(dir);
    const kept: string[] = [];
    for (let i = 0; i < 6; i++) kept.push(await appendBody(store, { i }));
    await store.close();
    const [seg] = await segmentPaths(dir);
    const buf = await readFile(seg!);
    let off = 0;
    for (let i = 0; i < 2; i++) off += 8 + buf.readUInt32LE(off);
    const bad = Buffer.from(buf);
    bad[off + 50]! ^= 0x40;
    await writeFile(seg!, bad);
    store = await openStore(dir);
    const c = store.report!.corruption!;
    expect(c.offset).toBe(off);
    await expect(store.repair('0000000000000000')).rejects.toMatchObject({ code: 'repair_conflict' });
    expect(store.state).toBe('corrupt');
    const after = await store.repair(c.id);
    expect(after.outcome).toBe('Clean');
    expect(store.state).toBe('ready');
    expect(store.lastRepair).toMatchObject({ corruptionId: c.id, bytesMoved: buf.length - off });
    const moved = await readdir(store.lastRepair!.movedTo);
    expect(moved).toHaveLength(1);
    expect((await readFile(join(store.lastRepair!.movedTo, moved[0]!))).equals(bad.subarray(off))).toBe(true);
    const added = await appendBody(store, { afterRepair: true });
    expect(JSON.parse(added).sequence).toBe(3);
    await store.close();
    store = await openStore(dir);
    expect(store.report!.outcome).toBe('Clean');
    expect(await readAll(store)).toEqual([...kept.slice(0, 2), added]);
    await expect(store.repair(c.id)).rejects.toMatchObject({ code: 'repair_conflict' });
  });
});
