import { readFile, stat } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { eventDraft, requestHash, type EventStore } from '../../../src/storage/store.ts';
import { defaultReserveBytes, defaultSegmentBytes, resolveReserve, type StatFsLike } from '../../../src/storage/space.ts';
import { appendBody, openStore, readAll, segmentPaths, tempDir } from './helpers.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * A statfs the test controls: a filesystem of `size` bytes with `free` bytes free, minus
 * (when `dir` is given) what the log's segment files take, like a real filesystem.
 */
function fakeFs(size: number, free: number, dir?: string) {
  const fs = {
    calls: 0,
    free,
    statfs: async (): Promise<StatFsLike> => {
      fs.calls++;
      let used = 0;
      if (dir !== undefined) for (const p of await segmentPaths(dir).catch(() => [])) used += (await stat(p)).size;
      const f = Math.max(0, Math.floor((fs.free - used) / 4096));
      return { bsize: 4096, blocks: Math.floor(size / 4096), bfree: f, bavail: f };
    },
  };
  return fs;
}

const noSpace = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });

async function rejection(p: Promise<unknown>): Promise<{ code?: string; message: string; details?: Record<string, number> }> {
  try {
    await p;
  } catch (err) {
    return err as { code?: string; message: string; details?: Record<string, number> };
  }
  throw new Error('expected a rejection');
}

describe('reserve and segment size defaults', () => {
  it('default reserve is 2% of the filesystem, at least 1 MiB, at most 1 GiB, never below one maximal append', () => {
    expect(defaultReserveBytes(64 * MiB)).toBe(Math.ceil(64 * MiB * 0.02)); // 1.28 MiB
    expect(defaultReserveBytes(16 * MiB)).toBe(MiB); // 2% would be 328 KiB: the 1 MiB floor
    expect(defaultReserveBytes(1024 * MiB)).toBe(Math.ceil(1024 * MiB * 0.02));
    expect(defaultReserveBytes(1024 * 1024 * MiB)).toBe(1024 * MiB); // 1 TiB -> capped at 1 GiB
    expect(defaultReserveBytes(3 * MiB)).toBe(MiB);
    expect(resolveReserve({ default: true }, 64 * MiB, 4 * MiB)).toBe(4 * MiB);
    expect(resolveReserve({ percent: 10 }, 100 * MiB, 64 * KiB)).toBe(10 * MiB);
    expect(resolveReserve({ bytes: 8 * MiB }, 100 * MiB, 64 * KiB)).toBe(8 * MiB);
    expect(resolveReserve({ bytes: 0 }, 100 * MiB, 64 * KiB)).toBe(64 * KiB);
  });

  it('default segment size fits several segments in the volume and the retention limit', () => {
    expect(defaultSegmentBytes(1024 * 1024 * MiB, undefined)).toBe(64 * MiB);
    expect(defaultSegmentBytes(64 * MiB, undefined)).toBe(4 * MiB);
    expect(defaultSegmentBytes(1024 * MiB, 16 * MiB)).toBe(2 * MiB);
    expect(defaultSegmentBytes(3 * MiB, undefined)).toBe(256 * KiB); // floor
    expect(defaultSegmentBytes(undefined, 1000 * 1000)).toBe(256 * KiB);
    expect(defaultSegmentBytes(100 * MiB + 12345, undefined) % (64 * KiB)).toBe(0);
  });
});

describe('free-space guard', () => {
  it('refuses an append that would leave less than the reserve (storage_full), turns full, serves reads and replays, resumes when space is back', async () => {
    const dir = await tempDir();
    const fs = fakeFs(64 * MiB, 2 * MiB, dir);
    const store = await openStore(dir, { reserve: { bytes: MiB }, maxAppendBytes: 64 * KiB, io: { statfs: fs.statfs }, spaceCheckMs: 60_000 });
    expect(store.state).toBe('ready');
    const acked: string[] = [];
    const pad = 'x'.repeat(4000);
    let refusal: Awaited<ReturnType<typeof rejection>> | undefined;
    const hash = requestHash('application/json', 'keyed');
    acked.push((await store.append({ events: [eventDraft('{"keyed":1}')], batch: false, idempotencyKey: 'k1', requestHash: hash })).payloads[0]!.toString());
    for (let i = 0; i < 1000 && refusal === undefined; i++) {
      try {
        acked.push(await appendBody(store, { i, pad }));
      } catch (err) {
        refusal = err as typeof refusal;
      }
    }
    expect(refusal).toBeDefined();
    expect(refusal!.code).toBe('storage_full');
    expect(refusal!.details!.reserveBytes).toBe(MiB);
    expect(refusal!.details!.freeBytes).toBeLessThan(MiB + 8 * KiB);
    // About 1 MiB (2 MiB free - 1 MiB reserve) went in before the refusal, not more.
    const written = store.stats().diskBytes;
    expect(written).toBeGreaterThan(MiB - 16 * KiB);
    expect(written).toBeLessThanOrEqual(MiB);
    expect(store.state).toBe('full');
    expect(store.storage()).toMatchObject({ filesystemBytes: 64 * MiB, reserveBytes: MiB, appendsRefused: 1, logBytes: written });
    // No syscall per append: a thousand appends needed only a handful of statfs calls.
    expect(fs.calls).toBeLessThan(acked.length / 10);
    // While full: every append is refused, reads and idempotent replays still work.
    expect((await rejection(appendBody(store, { small: 1 }))).code).toBe('storage_full');
    const replay = await store.append({ events: [eventDraft('{"keyed":1}')], batch: false, idempotencyKey: 'k1', requestHash: hash });
    expect(replay.replayed).toBe(true);
    expect(replay.payloads[0]!.toString()).toBe(acked[0]);
    expect(await readAll(store)).toEqual(acked);
    expect(store.storage()!.appendsRefused).toBe(2);
    // Space is back (the reserve plus one maximal append): the next check resumes.
    fs.free = written + MiB + 32 * KiB;
    await store.checkSpace();
    expect(store.state).toBe('full'); // not yet: room for one maximal append above the reserve is needed
    fs.free = written + 8 * MiB;
    await store.checkSpace();
    expect(store.state).toBe('ready');
    acked.push(await appendBody(store, { after: 'resume' }));
    expect(JSON.parse(acked.at(-1)!).sequence).toBe(acked.length);
  });

  it('a volume that fills up from outside turns the store full at the next check, and a start on a full volume comes up full', async () => {
    const dir = await tempDir();
    const fs = fakeFs(64 * MiB, 32 * MiB);
    let store: EventStore = await openStore(dir, { reserve: { bytes: MiB }, io: { statfs: fs.statfs }, spaceCheckMs: 60_000 });
    const a = await appendBody(store, { a: 1 });
    fs.free = 512 * KiB;
    await store.checkSpace();
    expect(store.state).toBe('full');
    await store.close();
    store = await openStore(dir, { reserve: { bytes: MiB }, io: { statfs: fs.statfs }, spaceCheckMs: 60_000 });
    expect(store.report!.outcome).toBe('Clean');
    expect(store.state).toBe('full');
    expect(await readAll(store)).toEqual([a]);
    expect((await rejection(appendBody(store, { b: 1 }))).code).toBe('storage_full');
  });

  it('the space timer leaves full by itself (no call from outside)', async () => {
    const dir = await tempDir();
    const fs = fakeFs(64 * MiB, 0);
    const store = await openStore(dir, { reserve: { bytes: MiB }, io: { statfs: fs.statfs }, spaceCheckMs: 20 });
    expect(store.state).toBe('full');
    fs.free = 16 * MiB;
    const deadline = Date.now() + 5000;
    while (store.state !== 'ready' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(store.state).toBe('ready');
    await appendBody(store, { ok: true });
  });
});

describe('ENOSPC from the kernel is not a crash', () => {
  it('ENOSPC on write (after a partial write): the group is refused, the file cut back to the acknowledged end, state full; reopen is Clean', async () => {
    const dir = await tempDir();
    const fs = fakeFs(64 * MiB, 16 * MiB);
    let failNext = false;
    const store = await openStore(dir, {
      reserve: { bytes: MiB },
      spaceCheckMs: 60_000,
      io: {
        statfs: fs.statfs,
        write: async (fh, buf, position) => {
          if (!failNext) return (await fh.write(buf, 0, buf.length, position)).bytesWritten;
          failNext = false;
          // Half of the group reaches the file, then the disk is full (another writer took the space).
          await fh.write(buf, 0, buf.length >> 1, position);
          fs.free = 4096;
          throw noSpace();
        },
      },
    });
    const acked = [await appendBody(store, { a: 1 }), await appendBody(store, { a: 2 })];
    const [seg] = await segmentPaths(dir);
    const before = (await stat(seg!)).size;
    failNext = true;
    const results = await Promise.allSettled([appendBody(store, { lost: 1 }), appendBody(store, { lost: 2 }), appendBody(store, { lost: 3 })]);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'storage_full' });
    }
    expect(store.state).toBe('full');
    expect((await stat(seg!)).size).toBe(before);
    expect(store.stats()).toMatchObject({ total: 2, diskBytes: before });
    expect(await readAll(store)).toEqual(acked);
    expect(store.storage()!.appendsRefused).toBe(3);
    await store.close();
    const again = await openStore(dir, { io: { statfs: fakeFs(64 * MiB, 16 * MiB).statfs } });
    expect(again.report!.outcome).toBe('Clean');
    expect(await readAll(again)).toEqual(acked);
    expect(JSON.parse(await appendBody(again, { next: true })).sequence).toBe(3);
  });

  it('ENOSPC on fdatasync: the unsynced group is cut away and the cut fdatasynced (pages in doubt never stay in the file)', async () => {
    const dir = await tempDir();
    const fs = fakeFs(64 * MiB, 16 * MiB);
    const syncs: string[] = [];
    let failSync = false;
    const store = await openStore(dir, {
      reserve: { bytes: MiB },
      spaceCheckMs: 60_000,
      io: {
        statfs: fs.statfs,
        datasync: async (fh) => {
          if (failSync) {
            failSync = false;
            syncs.push(`fail@${(await fh.stat()).size}`);
            fs.free = 0;
            throw Object.assign(new Error('ENOSPC: no space left on device, fdatasync'), { code: 'ENOSPC' });
          }
          await fh.datasync();
          syncs.push(`ok@${(await fh.stat()).size}`);
        },
      },
    });
    const acked = await appendBody(store, { kept: true });
    const [seg] = await segmentPaths(dir);
    const before = (await stat(seg!)).size;
    failSync = true;
    expect((await rejection(appendBody(store, { unsynced: true }))).code).toBe('storage_full');
    expect(store.state).toBe('full');
    expect((await stat(seg!)).size).toBe(before);
    // The failed fdatasync is not retried on the same pages: the next one syncs the truncation.
    expect(syncs.slice(-2)).toEqual([expect.stringMatching(/^fail@/), `ok@${before}`]);
    expect(await readAll(store)).toEqual([acked]);
    expect((await readFile(seg!)).length).toBe(before);
  });

  it('if cutting back fails, the store fails (fatal, never retried) and the message keeps the ENOSPC', async () => {
    const dir = await tempDir();
    const fatals: Error[] = [];
    const store = await openStore(dir, {
      onFatal: (e) => fatals.push(e),
      io: {
        statfs: fakeFs(64 * MiB, 0 + 2 * MiB).statfs,
        write: async () => {
          throw noSpace();
        },
        truncate: async () => {
          throw Object.assign(new Error('EIO: i/o error, ftruncate'), { code: 'EIO' });
        },
      },
      reserve: { bytes: MiB },
    });
    expect((await rejection(appendBody(store, { a: 1 }))).code).toBe('failed');
    expect(store.state).toBe('failed');
    expect(fatals).toHaveLength(1);
    expect(fatals[0]!.message).toMatch(/ENOSPC.*cutting .* back .* failed: EIO/);
  });

  it('an ENOSPC the filesystem figures contradict is an I/O failure (the space ran out below the filesystem)', async () => {
    const dir = await tempDir();
    const fatals: Error[] = [];
    const store = await openStore(dir, {
      onFatal: (e) => fatals.push(e),
      reserve: { bytes: MiB },
      io: {
        statfs: fakeFs(64 * MiB, 32 * MiB).statfs,
        write: async () => {
          throw noSpace();
        },
      },
    });
    expect((await rejection(appendBody(store, { a: 1 }))).code).toBe('failed');
    expect(store.state).toBe('failed');
    expect(fatals[0]!.message).toMatch(/ENOSPC.*yet the filesystem reports \d+ bytes free/);
  });

  it('EIO on write or fdatasync stays fatal', async () => {
    for (const where of ['write', 'datasync'] as const) {
      const dir = await tempDir();
      const fatals: Error[] = [];
      const eio = async () => {
        throw Object.assign(new Error(`EIO: i/o error, ${where}`), { code: 'EIO' });
      };
      const store = await openStore(dir, { onFatal: (e) => fatals.push(e), io: where === 'write' ? { write: eio } : { datasync: eio } });
      expect((await rejection(appendBody(store, { a: 1 }))).code).toBe('failed');
      expect(store.state).toBe('failed');
      expect((await rejection(appendBody(store, { b: 1 }))).code).toBe('failed');
      expect(fatals).toHaveLength(1);
    }
  });

  it('interval mode: ENOSPC on the background fdatasync is fatal (acknowledged events sit in those pages)', async () => {
    const dir = await tempDir();
    const fatals: Error[] = [];
    const store = await openStore(dir, {
      durability: 'interval',
      fsyncIntervalMs: 1_000_000,
      onFatal: (e) => fatals.push(e),
      io: {
        statfs: fakeFs(64 * MiB, 0 + 2 * MiB).statfs,
        datasync: async () => {
          throw Object.assign(new Error('ENOSPC: no space left on device, fdatasync'), { code: 'ENOSPC' });
        },
      },
      reserve: { bytes: MiB },
    });
    await appendBody(store, { acked: 'in the page cache' });
    await store.syncNow();
    expect(store.state).toBe('failed');
    expect(fatals).toHaveLength(1);
  });
});
