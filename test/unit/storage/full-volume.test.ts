// Real full filesystems (tmpfs, root only): what start-up must do without free space.
import { mountTmpfs, type Tmpfs, fillFilesystem } from '../../support/tmpfs.ts';
import { appendFile, lstat, mkdir, open, readdir, readlink, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireLock, LockedError } from '../../../src/storage/lock.ts';
import { EventStore } from '../../../src/storage/store.ts';
import { appendBody, openStore, segmentPaths } from './helpers.ts';


let fs: Tmpfs;
beforeAll(async () => {
  fs = await mountTmpfs(2 * 1024 * 1024);
});
afterAll(async () => {
  await fs.unmount();
});

describe('start-up on a full volume (tmpfs)', () => {
  it('the lock needs no data block: a symlink LOCK when the JSON cannot be written, exclusive all the same', async () => {
    const dir = join(fs.dir, 'lock');
    await mkdir(dir);
    await fillFilesystem(join(fs.dir, 'filler-lock'));
    const lock = await acquireLock(dir);
    const st = await lstat(join(dir, 'LOCK'));
    expect(st.isSymbolicLink()).toBe(true);
    expect(await readlink(join(dir, 'LOCK'))).toMatch(new RegExp(`^lock:${process.pid}:\\d*:[0-9a-f]{8}$`));
    await expect(acquireLock(dir)).rejects.toBeInstanceOf(LockedError);
    await lock.release();
    expect(await readdir(dir)).toEqual([]);
    await rm(join(fs.dir, 'filler-lock'));
  });

  it('a torn tail on a full volume is cut (copy skipped, reported), the store comes up full and serves every acknowledged event', async () => {
    const dir = join(fs.dir, 'log');
    let store: EventStore = await openStore(dir, { reserve: { bytes: 64 * 1024 }, maxAppendBytes: 16 * 1024 });
    const acked: string[] = [];
    for (let i = 0; i < 20; i++) acked.push(await appendBody(store, { i, msg: 'Chidé 🎉' }));
    await store.close();
    const [seg] = await segmentPaths(dir);
    await appendFile(seg!, Buffer.from('a torn, unacknowledged write'));
    await fillFilesystem(join(fs.dir, 'filler-log'));
    store = await openStore(dir, { reserve: { bytes: 64 * 1024 }, maxAppendBytes: 16 * 1024 });
    expect(store.state).toBe('full');
    expect(store.report).toMatchObject({ outcome: 'TornTailTruncated', bytesTruncated: 28, recordsRecovered: 20 });
    expect(store.report!.truncatedTo).toBeUndefined();
    expect(store.report!.tornCopySkipped).toMatch(/no space/);
    expect((await store.readAfter(0, 100)).map(String)).toEqual(acked);
    expect(store.storage()).toMatchObject({ freeBytes: 0, reserveBytes: 64 * 1024 });
    await expect(appendBody(store, { no: 'space' })).rejects.toMatchObject({ code: 'storage_full' });
    // Space comes back: appends resume without a restart.
    await rm(join(fs.dir, 'filler-log'));
    await store.checkSpace();
    expect(store.state).toBe('ready');
    expect(JSON.parse(await appendBody(store, { space: 'back' })).sequence).toBe(21);
  });

  it('out of inodes: the roll to a new segment fails with ENOSPC, the store turns full; more inodes: it resumes and reads span every segment', async () => {
    const small = await mountTmpfs(8 * 1024 * 1024, 'nr_inodes=8');
    try {
      const dir = join(small.dir, 'log');
      const store = await openStore(dir, { segmentMaxBytes: 4096, reserve: { bytes: 64 * 1024 }, maxAppendBytes: 16 * 1024, spaceCheckMs: 1e9 });
      const acked: string[] = [];
      let refusal: { code?: string } | undefined;
      for (let i = 0; i < 400 && refusal === undefined; i++) {
        try {
          acked.push(await appendBody(store, { i, pad: 'n'.repeat(300) }));
        } catch (err) {
          refusal = err as { code?: string };
        }
      }
      expect(refusal).toMatchObject({ code: 'storage_full' });
      expect(store.state).toBe('full');
      const segs = await segmentPaths(dir);
      expect(segs.length).toBeGreaterThan(1);
      expect((await store.readAfter(0, 1000)).map(String)).toEqual(acked);
      small.remount('nr_inodes=64');
      await store.checkSpace();
      expect(store.state).toBe('ready');
      for (let i = 0; i < 60; i++) acked.push(await appendBody(store, { after: i, pad: 'm'.repeat(300) }));
      expect((await segmentPaths(dir)).length).toBeGreaterThan(segs.length + 1);
      expect((await store.readAfter(0, 1000)).map(String)).toEqual(acked);
      await store.close();
      const again = await openStore(dir, { segmentMaxBytes: 4096 });
      expect(again.report!.outcome).toBe('Clean');
      expect((await again.readAfter(0, 1000)).map(String)).toEqual(acked);
      await again.close();
    } finally {
      await small.unmount();
    }
  });
});
