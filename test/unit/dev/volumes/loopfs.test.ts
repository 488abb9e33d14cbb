/**
 * dev/volumes/loopfs.ts on real loop devices and ext4 (needs root: it fails loudly
 * otherwise, it never skips). Each test uses its own temp dir named ".../volumes"
 * and a private attach registry, and checks with `losetup -J -l` and
 * /proc/self/mountinfo that nothing it made is left behind.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, open, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { which } from '../../../../dev/volumes/exec.ts';
import { LoopVolume, MIN_VOLUME_BYTES, OnlineResizeUnsupportedError, onlineResizeSupport, reclaimLeftovers } from '../../../../dev/volumes/loopfs.ts';
import { readRecords } from '../../../../dev/volumes/registry.ts';

const MiB = 1024 * 1024;
let base: string;
let registryDir: string;

function losetupDevices(): Array<{ name: string; 'back-file': string }> {
  const out = execFileSync(which('losetup') ?? 'losetup', ['-J', '-l'], { encoding: 'utf8' });
  if (!out.trim()) return [];
  return (JSON.parse(out) as { loopdevices: Array<{ name: string; 'back-file': string }> }).loopdevices;
}
const attachedUnder = (dir: string): string[] => losetupDevices().filter((d) => d['back-file'].startsWith(dir)).map((d) => `${d.name} ${d['back-file']}`);
async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').filter((l) => l.split(' ')[4]?.startsWith(dir));
}

async function newRoot(label: string): Promise<string> {
  const root = join(await mkdtemp(join(base, `${label}-`)), 'volumes');
  await mkdir(root, { recursive: true });
  return root;
}

/** Write `chunk`-sized blocks to `path` until ENOSPC; returns bytes written and the open handle. */
async function fillUntilFull(path: string, chunk = 64 * 1024): Promise<{ written: number; fh: Awaited<ReturnType<typeof open>> }> {
  const fh = await open(path, 'a');
  const buf = Buffer.alloc(chunk, 0x5a);
  let written = 0;
  for (;;) {
    try {
      const { bytesWritten } = await fh.write(buf);
      written += bytesWritten;
      if (bytesWritten < chunk) break;
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
      break;
    }
  }
  return { written, fh };
}

const sha = async (path: string): Promise<string> => createHash('sha256').update(await readFile(path)).digest('hex');

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('loop-ext4 volume tests need root (loop devices and mount); run them as root — they never skip');
  base = await mkdtemp(join(tmpdir(), 'loopfs-test-'));
  registryDir = join(base, 'registry');
});

afterAll(async () => {
  // Whatever a failed test left: reclaim it, then check the host is clean of our devices.
  if (!base) return;
  const leftMounts = await mountsUnder(base);
  const leftDevices = losetupDevices().filter((d) => d['back-file'].startsWith(base));
  for (const m of leftMounts.map((l) => l.split(' ')[4] ?? '').sort((x, y) => y.length - x.length)) execFileSync(which('umount') ?? 'umount', ['-l', m]);
  for (const d of leftDevices) execFileSync(which('losetup') ?? 'losetup', ['-d', d.name]);
  await rm(base, { recursive: true, force: true });
  expect(leftMounts).toEqual([]);
  expect(leftDevices).toEqual([]);
});

describe('LoopVolume on real ext4', () => {
  it('makes a 16Mi file system that fills up, grows to 32Mi with data intact, and leaves nothing behind', async () => {
    const root = await newRoot('grow');
    const image = join(root, 'v1.img');
    const mountPoint = join(root, 'v1');
    const vol = await LoopVolume.create({ image, mountPoint, bytes: BigInt(16 * MiB), registryDir });
    expect(await vol.deviceBytes()).toBe(BigInt(16 * MiB));
    expect(attachedUnder(root)).toEqual([`${vol.device} ${image}`]);
    expect(await mountsUnder(mountPoint)).toHaveLength(1);
    const before = await vol.statfs();
    // ext4 metadata (journal, inode tables, resize reserve) takes a few percent.
    expect(before.totalBytes).toBeGreaterThan(0.85 * 16 * MiB);
    expect(before.totalBytes).toBeLessThanOrEqual(16 * MiB);
    // -m 0: nothing reserved for root (ext4 keeps only its small delalloc reserve, <= 2%).
    expect(before.availableBytes).toBeGreaterThan(0.97 * before.freeBytes);

    await writeFile(join(mountPoint, 'keep.txt'), 'written before the volume filled up\n');
    const { written, fh } = await fillUntilFull(join(mountPoint, 'fill.bin'));
    expect(written).toBeGreaterThan(0.8 * 16 * MiB);
    expect(written).toBeLessThan(16 * MiB);
    expect((await vol.statfs()).availableBytes).toBeLessThan(64 * 1024);
    await fh.sync();
    const keepHash = await sha(join(mountPoint, 'keep.txt'));
    const fillHash = await sha(join(mountPoint, 'fill.bin'));

    const online = await onlineResizeSupport();
    const t0 = performance.now();
    await vol.growDevice(BigInt(32 * MiB));
    expect(await vol.deviceBytes()).toBe(BigInt(32 * MiB));
    if (online.supported) {
      // The file stays open and writable across the growth.
      await vol.growFilesystem({ online: true });
      const more = await fh.write(Buffer.alloc(MiB, 1));
      expect(more.bytesWritten).toBe(MiB);
      await fh.close();
      console.log(`loopfs: online growth 16Mi -> 32Mi with a file open took ${(performance.now() - t0).toFixed(0)} ms`);
    } else {
      // This kernel refuses ext4 online resize to a process without CAP_SYS_RESOURCE:
      // the error says so and names the volume; the open file is untouched.
      const err = await vol.growFilesystem({ online: true }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OnlineResizeUnsupportedError);
      expect((err as Error).message).toContain('v1.img');
      expect((await vol.statfs()).totalBytes).toBe(before.totalBytes);
      await fh.close();
      await vol.growFilesystem({ online: false });
      console.log(`loopfs: no CAP_SYS_RESOURCE here (${online.reason}); offline growth 16Mi -> 32Mi took ${(performance.now() - t0).toFixed(0)} ms`);
    }
    const after = await vol.statfs();
    expect(after.totalBytes).toBeGreaterThan(before.totalBytes + 15 * MiB);
    expect(await sha(join(mountPoint, 'keep.txt'))).toBe(keepHash);
    if (!online.supported) expect(await sha(join(mountPoint, 'fill.bin'))).toBe(fillHash);
    // And there is room again.
    await writeFile(join(mountPoint, 'after.bin'), Buffer.alloc(4 * MiB, 2));

    await expect(vol.growDevice(BigInt(16 * MiB))).rejects.toThrow(/refusing to shrink/);

    await vol.close();
    expect(attachedUnder(root)).toEqual([]);
    expect(await mountsUnder(root)).toEqual([]);
    expect(await readRecords(registryDir)).not.toContain(vol.device);

    // The image keeps the data: open it again.
    const again = await LoopVolume.open({ image, mountPoint, registryDir });
    expect(await sha(join(mountPoint, 'keep.txt'))).toBe(keepHash);
    expect((await again.statfs()).totalBytes).toBe(after.totalBytes);
    await again.destroy();
    expect(attachedUnder(root)).toEqual([]);
    expect(await mountsUnder(root)).toEqual([]);
    await expect(readFile(image)).rejects.toThrow(/ENOENT/);
  });

  it('rounds a tiny request up to the minimum and refuses a busy unmount instead of forcing it', async () => {
    const root = await newRoot('tiny');
    const vol = await LoopVolume.create({ image: join(root, 't.img'), mountPoint: join(root, 't'), bytes: 1n, registryDir });
    try {
      expect(await vol.deviceBytes()).toBe(MIN_VOLUME_BYTES);
      const fh = await open(join(root, 't', 'held'), 'w');
      try {
        await expect(vol.unmount()).rejects.toThrow(/volume t\.img: `umount .*` failed.*busy/);
        expect(await vol.isMounted()).toBe(true);
      } finally {
        await fh.close();
      }
    } finally {
      await vol.destroy();
    }
    expect(attachedUnder(root)).toEqual([]);
  });
});

describe('reclaimLeftovers after a crash', () => {
  const child = fileURLToPath(new URL('./crash-child.ts', import.meta.url));

  /** A separate process creates a volume, writes to it and is SIGKILLed: its mount and loop device stay. */
  async function crashedVolume(root: string, name: string): Promise<{ image: string; mountPoint: string; device: string }> {
    const image = join(root, `${name}.img`);
    const mountPoint = join(root, name);
    const p = spawn(process.execPath, [child, image, mountPoint, registryDir], { stdio: ['ignore', 'pipe', 'inherit'] });
    const device = await new Promise<string>((resolve, reject) => {
      let out = '';
      p.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        const m = /^ready (\S+)$/m.exec(out);
        if (m) resolve(m[1]!);
      });
      p.on('exit', (code) => reject(new Error(`crash child exited early (${code}): ${out}`)));
    });
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
    expect(attachedUnder(image)).toEqual([`${device} ${image}`]);
    expect(await mountsUnder(mountPoint)).toHaveLength(1);
    return { image, mountPoint, device };
  }

  it('reclaims its own root, and a dead run in another root, but not a live volume of someone else', async () => {
    const mine = await newRoot('own');
    const other = await newRoot('other');
    const live = await newRoot('live');
    const a = await crashedVolume(mine, 'a');
    const b = await crashedVolume(other, 'b');
    // A live volume (owner: this process) in a third root, and a foreign loop device on a non-image file.
    const liveVol = await LoopVolume.create({ image: join(live, 'c.img'), mountPoint: join(live, 'c'), bytes: BigInt(8 * MiB), registryDir });
    const foreignFile = join(live, 'foreign.raw');
    await writeFile(foreignFile, Buffer.alloc(MiB));
    const foreignDev = execFileSync(which('losetup') ?? 'losetup', ['--find', '--show', foreignFile], { encoding: 'utf8' }).trim();
    try {
      const report = await reclaimLeftovers(mine, { registryDir });
      expect(report.errors).toEqual([]);
      expect(report.busy).toEqual([]);
      expect(report.reclaimed).toEqual(
        expect.arrayContaining([
          { device: a.device, image: a.image, reason: 'own-root' },
          { device: b.device, image: b.image, reason: 'dead-owner' },
        ]),
      );
      expect(attachedUnder(mine)).toEqual([]);
      expect(attachedUnder(other)).toEqual([]);
      expect(await mountsUnder(mine)).toEqual([]);
      expect(await mountsUnder(other)).toEqual([]);
      // Untouched: the live volume and the foreign device.
      expect(await liveVol.isMounted()).toBe(true);
      expect(attachedUnder(foreignFile)).toEqual([`${foreignDev} ${foreignFile}`]);
      // The crashed volume's data survived; it opens again.
      const reopened = await LoopVolume.open({ image: a.image, mountPoint: a.mountPoint, registryDir });
      expect(await readFile(join(a.mountPoint, 'data.txt'), 'utf8')).toBe('before the crash\n');
      await reopened.destroy();
    } finally {
      execFileSync(which('losetup') ?? 'losetup', ['-d', foreignDev]);
      await liveVol.destroy();
    }
    expect(attachedUnder(live)).toEqual([]);
  });

  it('reclaims an unrecorded leftover whose data dir was deleted while attached', async () => {
    const gone = await newRoot('gone');
    const d = await crashedVolume(gone, 'd');
    // The crashed run's record is lost too, and its temp dir removed (rm -rf cannot remove the busy mount point).
    await rm(join(registryDir, `${d.device.slice('/dev/'.length)}.json`), { force: true });
    await rm(d.image, { force: true });
    const report = await reclaimLeftovers(await newRoot('fresh'), { registryDir });
    expect(report.reclaimed).toContainEqual({ device: d.device, image: d.image, reason: 'image-deleted' });
    expect(losetupDevices().filter((x) => x.name === d.device && x['back-file'].startsWith(d.image))).toEqual([]);
    expect(await mountsUnder(d.mountPoint)).toEqual([]);
  });
});
