import { describe, expect, it } from 'vitest';
import { missingToolsMessage, VolumeCommandError } from '../../../../dev/volumes/exec.ts';
import {
  hasSysResource,
  isImageName,
  MIN_VOLUME_BYTES,
  mkfsArgs,
  mountsOf,
  parseLoopDevice,
  parseMountInfo,
  parseStartTime,
  selectLeftovers,
  volumeBytes,
  volumePaths,
  type AttachRecord,
  type LeftoverFacts,
  type LoopDevice,
} from '../../../../dev/volumes/plan.ts';

const Mi = 1024n * 1024n;

describe('sizes and mkfs arguments', () => {
  it('never returns less than asked, aligns to 4 KiB and applies the minimum', () => {
    expect(volumeBytes(64n * Mi)).toBe(64n * Mi);
    expect(volumeBytes(1n << 30n)).toBe(1n << 30n);
    expect(volumeBytes(1n)).toBe(MIN_VOLUME_BYTES);
    expect(volumeBytes(100_000_000n)).toBe(100_003_840n); // 100M -> next 4 KiB
    expect(volumeBytes(MIN_VOLUME_BYTES + 1n)).toBe(MIN_VOLUME_BYTES + 4096n);
    expect(() => volumeBytes(-1n)).toThrow(/negative/);
  });

  it('makes small volumes with 1 KiB blocks and a 1 MiB journal, large ones with the defaults, never reserving root blocks', () => {
    const small = mkfsArgs('/v/a.img', 64n * Mi, 'a');
    expect(small).toEqual(expect.arrayContaining(['-m', '0', '-b', '1024', '-J', 'size=1']));
    expect(small.at(-1)).toBe('/v/a.img');
    const large = mkfsArgs('/v/b.img', 1n << 30n);
    expect(large).toContain('-m');
    expect(large).not.toContain('-J');
    expect(large).not.toContain('-b');
  });

  it('names an image and its mount point side by side, and rejects names that could escape', () => {
    expect(volumePaths('/d/volumes', 'pvc-1')).toEqual({ image: '/d/volumes/pvc-1.img', mountPoint: '/d/volumes/pvc-1' });
    expect(() => volumePaths('/d/volumes', '../x')).toThrow();
    expect(() => volumePaths('/d/volumes', 'a.img')).toThrow();
    expect(isImageName('/d/volumes/pvc-1.img')).toBe(true);
    expect(isImageName('/d/volumes/pvc-1.raw')).toBe(false);
  });
});

describe('what the kernel reports', () => {
  it('reads a loop device from sysfs, including a deleted backing file', () => {
    expect(parseLoopDevice('loop3', '/d/volumes/a.img\n', '7:3\n')).toEqual({ device: '/dev/loop3', majMin: '7:3', backingFile: '/d/volumes/a.img', deleted: false });
    expect(parseLoopDevice('loop4', '/d/volumes/a.img (deleted)\n', '7:4\n')).toMatchObject({ backingFile: '/d/volumes/a.img', deleted: true });
  });

  it('parses mountinfo (escaped spaces, optional fields) and orders a device\'s mounts deepest first', () => {
    const text = [
      '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw',
      '40 22 7:3 / /d/volumes/a rw,relatime shared:20 - ext4 /dev/loop3 rw',
      '41 40 7:3 / /d/volumes/a/inner\\040dir rw,relatime - ext4 /dev/loop3 rw',
      '42 22 7:5 / /other rw - ext4 /dev/loop5 rw',
    ].join('\n');
    const mounts = parseMountInfo(text);
    expect(mounts).toHaveLength(4);
    expect(mounts[2]).toEqual({ id: 41, majMin: '7:3', mountPoint: '/d/volumes/a/inner dir', fsType: 'ext4', source: '/dev/loop3' });
    expect(mountsOf({ device: '/dev/loop3', majMin: '7:3' }, mounts).map((m) => m.mountPoint)).toEqual(['/d/volumes/a/inner dir', '/d/volumes/a']);
  });

  it('reads CAP_SYS_RESOURCE (bit 24) from CapEff, and a start time past a process name with spaces', () => {
    expect(hasSysResource('CapInh:\t0\nCapEff:\t000001ffffffffff\n')).toBe(true);
    expect(hasSysResource('CapEff:\t000001fffeffffff\n')).toBe(false); // the sandbox this was written in
    expect(hasSysResource('')).toBe(false);
    const stat = '123 (node (worker) x) S 1 123 123 0 -1 4194560 100 0 0 0 5 6 0 0 20 0 11 0 98765 1000 200';
    expect(parseStartTime(stat)).toBe('98765');
  });
});

describe('selectLeftovers', () => {
  const dev = (n: number, backingFile: string, deleted = false): LoopDevice => ({ device: `/dev/loop${n}`, majMin: `7:${n}`, backingFile, deleted });
  const rec = (n: number, image: string, ownerPid: number): AttachRecord => ({ device: `/dev/loop${n}`, image, mountPoint: image.replace(/\.img$/, ''), ownerPid, ownerStart: '1' });
  const facts = (over: Partial<LeftoverFacts>): LeftoverFacts => ({
    root: '/mine/volumes',
    devices: [],
    mounts: [],
    records: new Map(),
    ownerAlive: (r) => r.ownerPid === 100 || r.ownerPid === 200,
    selfPid: 100,
    exists: () => true,
    ...over,
  });

  it('takes every image under its own root, with its mounts, unless another live process recorded it', () => {
    const devices = [dev(1, '/mine/volumes/a.img'), dev(2, '/mine/volumes/b.img'), dev(3, '/mine/volumes/c.img')];
    const records = new Map([
      ['/dev/loop2', rec(2, '/mine/volumes/b.img', 200)], // another live agent on this data dir
      ['/dev/loop3', rec(3, '/mine/volumes/c.img', 100)], // this process
    ]);
    const mounts = parseMountInfo('40 22 7:1 / /mine/volumes/a rw - ext4 /dev/loop1 rw');
    const picked = selectLeftovers(facts({ devices, records, mounts }));
    expect(picked.map((l) => [l.device.device, l.reason])).toEqual([
      ['/dev/loop1', 'own-root'],
      ['/dev/loop3', 'own-root'],
    ]);
    expect(picked[0]?.mounts.map((m) => m.mountPoint)).toEqual(['/mine/volumes/a']);
    expect(picked[0]?.imageGone).toBe(false);
  });

  it('takes another root\'s devices only when recorded by a dead owner, or unrecorded with the image deleted or its dir gone', () => {
    const devices = [
      dev(1, '/t1/volumes/a.img'), // recorded, owner dead
      dev(2, '/t2/volumes/b.img'), // recorded, owner alive
      dev(3, '/t3/volumes/c.img', true), // unrecorded, deleted
      dev(4, '/t4/volumes/d.img'), // unrecorded, directory gone
      dev(5, '/t5/volumes/e.img'), // unrecorded, exists: someone else's
      dev(6, '/t6/disks/f.img', true), // deleted but not in a volumes dir: not our naming
      dev(7, '/t7/volumes/g.raw', true), // not an image name
      dev(8, '/t8/volumes/h.img'), // a record for another image on this device: stale, so unrecorded
    ];
    const records = new Map([
      ['/dev/loop1', rec(1, '/t1/volumes/a.img', 999)],
      ['/dev/loop2', rec(2, '/t2/volumes/b.img', 200)],
      ['/dev/loop8', rec(8, '/elsewhere/volumes/x.img', 999)],
    ]);
    const picked = selectLeftovers(facts({ devices, records, exists: (p) => p !== '/t4/volumes' }));
    expect(picked.map((l) => [l.device.device, l.reason, l.imageGone])).toEqual([
      ['/dev/loop1', 'dead-owner', false],
      ['/dev/loop3', 'image-deleted', true],
      ['/dev/loop4', 'directory-gone', true],
    ]);
  });
});

describe('tool errors', () => {
  it('names the missing tools and their Debian packages in one line', () => {
    const msg = missingToolsMessage(['mkfs.ext4', 'resize2fs', 'losetup']);
    expect(msg).toBe(
      'loop-ext4 volumes need mkfs.ext4, resize2fs, losetup, not found on PATH or in /usr/sbin, /sbin: install the Debian packages e2fsprogs and mount (apt-get install e2fsprogs mount; elsewhere e2fsprogs / util-linux)',
    );
    expect(msg).not.toContain('\n');
  });

  it('says which volume and which command failed, with the tool\'s last words', () => {
    const err = new VolumeCommandError('pvc-1', 'resize2fs /dev/loop3', 1, 'resize2fs 1.47.0 (5-Feb-2023)\nresize2fs: Permission denied to resize filesystem\n');
    expect(err.message).toBe('volume pvc-1: `resize2fs /dev/loop3` failed (exit 1): resize2fs 1.47.0 (5-Feb-2023) | resize2fs: Permission denied to resize filesystem');
  });
});
