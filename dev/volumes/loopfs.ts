/**
 * Real, size-limited file systems for local volumes: an ext4 image file on a loop
 * device, mounted at a directory, growable (online when the kernel lets us, else
 * offline), and cleaned up exactly — including after a crashed run.
 *
 *   const vol = await LoopVolume.create({ image: '/d/volumes/v1.img', mountPoint: '/d/volumes/v1', bytes: 64n << 20n });
 *   await vol.expand(96n << 20n, { online: true });
 *   await vol.close();                           // unmount + detach; the image keeps the data
 *   await (await LoopVolume.open({ image, mountPoint })).destroy();
 *   await reclaimLeftovers('/d/volumes');        // at start: a crashed run's mounts and loop devices
 *
 * Independent of the node agent (no Kubernetes here), so a real node's tooling can use it.
 *
 * Guarantees:
 * - The image is exactly `volumeBytes(requested)` long (sparse, `ftruncate`), formatted
 *   `mkfs.ext4 -m 0` (no root-reserved blocks: free space is free for the program).
 * - `losetup --find --show` names the device we attached; every attach is recorded
 *   (registry.ts) and every detach removes the record, so `close()`/`reclaimLeftovers`
 *   touch exactly our devices and mounts, never one backed by another file.
 * - Never shrinks: `growDevice` refuses a smaller size. Growth is `ftruncate` +
 *   `losetup -c`, then `resize2fs` online (mounted) or offline (unmount, `e2fsck -f`,
 *   `resize2fs`, mount).
 * - A mount that is busy is never lazily unmounted while its image still exists (that
 *   could let a second attach mount the same file system twice); it is left in place
 *   and reported, and `open` re-uses it. Only a deleted image's mount is unmounted lazily.
 *
 * Caveats:
 * - Needs root (loop devices, mount). Online ext4 growth needs CAP_SYS_RESOURCE on top
 *   (the kernel's ext4 resize ioctl checks it); `onlineResizeSupport()` says whether this
 *   process has it. Without it `growFilesystem({ online: true })` fails with
 *   `OnlineResizeUnsupportedError` and callers must grow offline.
 * - One caller per volume at a time: this module does not lock across calls.
 */
import { constants } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, rmdir, stat, statfs, truncate } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { checkTools, run, VolumeCommandError } from './exec.ts';
import { hasSysResource, mkfsArgs, mountsOf, parseLoopDevice, parseMountInfo, selectLeftovers, volumeBytes, type Leftover, type LoopDevice, type MountEntry } from './plan.ts';
import { DEFAULT_REGISTRY_DIR, ownerAlive, readRecords, removeRecord, selfRecord, writeRecord } from './registry.ts';

export { VolumeCommandError } from './exec.ts';
export { volumeBytes, volumePaths, MIN_VOLUME_BYTES } from './plan.ts';

/** The file system cannot grow while mounted on this host (no CAP_SYS_RESOURCE). */
export class OnlineResizeUnsupportedError extends Error {
  readonly volume: string;
  constructor(volume: string, detail: string) {
    super(`volume ${volume}: online ext4 growth is not possible here (${detail}); grow it offline`);
    this.volume = volume;
  }
}

export interface VolumeLocation {
  image: string;
  mountPoint: string;
  /** Name used in errors (default: the image's base name). */
  name?: string;
  /** Where attach records live (default /run/eventlog-volumes). */
  registryDir?: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Attached loop devices (from sysfs). */
export async function listLoopDevices(): Promise<LoopDevice[]> {
  const out: LoopDevice[] = [];
  for (const name of await readdir('/sys/block').catch(() => [] as string[])) {
    if (!name.startsWith('loop')) continue;
    const backing = await readFile(`/sys/block/${name}/loop/backing_file`, 'utf8').catch(() => undefined);
    if (backing === undefined) continue; // not attached
    const dev = await readFile(`/sys/block/${name}/dev`, 'utf8').catch(() => '');
    out.push(parseLoopDevice(name, backing, dev));
  }
  return out;
}

export async function readMounts(): Promise<MountEntry[]> {
  return parseMountInfo(await readFile('/proc/self/mountinfo', 'utf8'));
}

/** Whether this process can grow a mounted ext4 (CAP_SYS_RESOURCE), and why not. */
export async function onlineResizeSupport(): Promise<{ supported: boolean; reason: string }> {
  const status = await readFile('/proc/self/status', 'utf8').catch(() => '');
  if (hasSysResource(status)) return { supported: true, reason: 'CAP_SYS_RESOURCE present' };
  return { supported: false, reason: 'the process lacks CAP_SYS_RESOURCE, which the kernel requires for ext4 online resize' };
}

/** Throw one clear line unless this host can make loop-ext4 volumes (tools, loop support). Root is the caller's check. */
export function checkLoopSupport(): void {
  checkTools();
  if (!existsSync('/dev/loop-control')) throw new Error('loop-ext4 volumes need loop device support: /dev/loop-control is missing (modprobe loop)');
}

function isBusy(err: unknown): boolean {
  return err instanceof VolumeCommandError && /busy/i.test(err.stderr);
}

async function umountPath(volume: string, mountPoint: string, opts: { lazyIfBusy?: boolean; retries?: number } = {}): Promise<'unmounted' | 'busy'> {
  const retries = opts.retries ?? 20;
  for (let i = 0; ; i++) {
    try {
      await run(volume, 'umount', [mountPoint]);
      return 'unmounted';
    } catch (err) {
      if (/not mounted|no mount point/i.test((err as VolumeCommandError).stderr ?? '')) return 'unmounted';
      if (!isBusy(err)) throw err;
      if (i < retries) {
        await sleep(100); // a just-killed process may still hold files for a moment
        continue;
      }
      if (!opts.lazyIfBusy) return 'busy';
      await run(volume, 'umount', ['-l', mountPoint]);
      return 'unmounted';
    }
  }
}

/** Create the image file (exactly `bytes`, sparse) and format it. Fails if the file exists. */
export async function createVolume(image: string, bytes: bigint, name = basename(image)): Promise<void> {
  const fh = await open(image, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
  try {
    await fh.truncate(Number(bytes));
  } finally {
    await fh.close();
  }
  try {
    await run(name, 'mkfs.ext4', mkfsArgs(image, bytes, name));
  } catch (err) {
    await rm(image, { force: true });
    throw err;
  }
}

export class LoopVolume {
  readonly image: string;
  readonly mountPoint: string;
  readonly name: string;
  readonly #registry: string;
  #device: LoopDevice;

  private constructor(loc: VolumeLocation, device: LoopDevice) {
    this.image = resolve(loc.image);
    this.mountPoint = resolve(loc.mountPoint);
    this.name = loc.name ?? basename(loc.image);
    this.#registry = loc.registryDir ?? DEFAULT_REGISTRY_DIR;
    this.#device = device;
  }

  /** Create, format, attach and mount a new volume of (at least) `bytes`. */
  static async create(loc: VolumeLocation & { bytes: bigint }): Promise<LoopVolume> {
    await createVolume(loc.image, volumeBytes(loc.bytes), loc.name ?? basename(loc.image));
    return LoopVolume.open(loc);
  }

  /**
   * Attach (or re-use the device already attached to) an existing image and make sure
   * it is mounted at the mount point.
   */
  static async open(loc: VolumeLocation): Promise<LoopVolume> {
    const image = resolve(loc.image);
    const name = loc.name ?? basename(image);
    await stat(image).catch((err: unknown) => {
      throw new Error(`volume ${name}: image ${image} is missing: ${(err as Error).message}`, { cause: err });
    });
    let dev = (await listLoopDevices()).find((d) => !d.deleted && resolve(d.backingFile) === image);
    if (!dev) {
      const path = (await run(name, 'losetup', ['--find', '--show', image])).trim();
      dev = (await listLoopDevices()).find((d) => d.device === path);
      if (!dev) throw new Error(`volume ${name}: losetup attached ${image} as ${path}, but sysfs does not show it`);
    }
    const vol = new LoopVolume(loc, dev);
    await writeRecord(vol.#registry, selfRecord(dev.device, image, vol.mountPoint));
    await vol.mount();
    return vol;
  }

  get device(): string {
    return this.#device.device;
  }

  /** Mount at the mount point unless this device is already mounted there. */
  async mount(): Promise<void> {
    const mounts = await readMounts();
    const here = mounts.filter((m) => m.mountPoint === this.mountPoint);
    if (here.some((m) => m.majMin === this.#device.majMin)) return;
    if (here.length > 0) throw new Error(`volume ${this.name}: ${this.mountPoint} already has another file system mounted (${here.map((m) => m.source).join(', ')})`);
    await mkdir(this.mountPoint, { recursive: true });
    await run(this.name, 'mount', ['-t', 'ext4', this.device, this.mountPoint]);
  }

  async isMounted(): Promise<boolean> {
    return (await readMounts()).some((m) => m.mountPoint === this.mountPoint && m.majMin === this.#device.majMin);
  }

  /** Unmount every mount of this device (deepest first). Throws if one stays busy. */
  async unmount(): Promise<void> {
    for (const m of mountsOf(this.#device, await readMounts())) {
      if ((await umountPath(this.name, m.mountPoint)) === 'busy') {
        throw new VolumeCommandError(this.name, `umount ${m.mountPoint}`, 32, 'target is busy (a process still uses the volume); left mounted');
      }
    }
  }

  /** Detach the loop device (after unmount) and drop its record. */
  async detach(): Promise<void> {
    await run(this.name, 'losetup', ['-d', this.device]).catch((err: unknown) => {
      if (!/No such device|not a loop|No such device or address/i.test((err as VolumeCommandError).stderr ?? '')) throw err;
    });
    await removeRecord(this.#registry, this.device);
  }

  /** Unmount and detach; the image keeps the data. */
  async close(): Promise<void> {
    await this.unmount();
    await this.detach();
  }

  /** Close, then delete the image and the (empty) mount point. */
  async destroy(): Promise<void> {
    await this.close();
    await rm(this.image, { force: true });
    await rmdir(this.mountPoint).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    });
  }

  /** The image's size in bytes (what the block device offers). */
  async deviceBytes(): Promise<bigint> {
    return BigInt((await stat(this.image)).size);
  }

  /** What the mounted file system reports (total/free/available bytes). */
  async statfs(): Promise<{ totalBytes: number; freeBytes: number; availableBytes: number }> {
    const s = await statfs(this.mountPoint);
    return { totalBytes: s.blocks * s.bsize, freeBytes: s.bfree * s.bsize, availableBytes: s.bavail * s.bsize };
  }

  /** Block-device step: grow the image to `bytes` (rounded up, never shrunk) and tell the loop driver. */
  async growDevice(requested: bigint): Promise<bigint> {
    const bytes = volumeBytes(requested);
    const current = await this.deviceBytes();
    if (bytes < current) throw new Error(`volume ${this.name}: refusing to shrink from ${current} to ${bytes} bytes`);
    if (bytes > current) await truncate(this.image, Number(bytes));
    await run(this.name, 'losetup', ['-c', this.device]);
    const sectors = BigInt((await readFile(`/sys/block/${basename(this.device)}/size`, 'utf8')).trim());
    if (sectors * 512n !== bytes) throw new Error(`volume ${this.name}: ${this.device} reports ${sectors * 512n} bytes after losetup -c, expected ${bytes}`);
    return bytes;
  }

  /**
   * File-system step: grow ext4 to fill the device. Online runs resize2fs on the
   * mounted device; offline unmounts, checks (e2fsck -f) and resizes, then mounts again
   * (so it needs no process to use the volume).
   */
  async growFilesystem(opts: { online: boolean }): Promise<void> {
    if (opts.online) {
      try {
        await run(this.name, 'resize2fs', [this.device]);
      } catch (err) {
        if (err instanceof VolumeCommandError && /Permission denied|Operation not permitted/i.test(err.stderr)) {
          throw new OnlineResizeUnsupportedError(this.name, `resize2fs: ${err.stderr.trim().split('\n').at(-1)}`);
        }
        throw err;
      }
      return;
    }
    await this.unmount();
    await run(this.name, 'e2fsck', ['-f', '-p', this.device], { okCodes: [0, 1] });
    await run(this.name, 'resize2fs', [this.device]);
    await this.mount();
  }

  /** Both steps. */
  async expand(requested: bigint, opts: { online: boolean }): Promise<void> {
    await this.growDevice(requested);
    await this.growFilesystem(opts);
  }
}

export interface ReclaimReport {
  /** Devices unmounted and detached. */
  reclaimed: Array<{ device: string; image: string; reason: Leftover['reason'] }>;
  /** Devices left attached because a mount stayed busy (their image still exists; `open` re-uses them). */
  busy: Array<{ device: string; image: string; mountPoint: string }>;
  errors: string[];
}

/**
 * Reclaim a crashed run's leftovers: every loop device backed by an image under `root`
 * (unless another live process recorded it), and devices of other roots that are ours
 * by record (owner dead) or by name with the image deleted / its directory gone.
 * Unmounts first, then detaches; removes stale records.
 */
export async function reclaimLeftovers(root: string, opts: { registryDir?: string } = {}): Promise<ReclaimReport> {
  const registryDir = opts.registryDir ?? DEFAULT_REGISTRY_DIR;
  const [devices, mounts, records] = await Promise.all([listLoopDevices(), readMounts(), readRecords(registryDir)]);
  const report: ReclaimReport = { reclaimed: [], busy: [], errors: [] };
  const leftovers = selectLeftovers({ root: resolve(root), devices, mounts, records, ownerAlive, selfPid: process.pid, exists: existsSync });
  for (const l of leftovers) {
    const name = basename(l.device.backingFile);
    try {
      let busy: MountEntry | undefined;
      for (const m of l.mounts) {
        if ((await umountPath(name, m.mountPoint, { lazyIfBusy: l.imageGone })) === 'busy') busy = m;
      }
      if (busy) {
        report.busy.push({ device: l.device.device, image: l.device.backingFile, mountPoint: busy.mountPoint });
        continue;
      }
      await run(name, 'losetup', ['-d', l.device.device]);
      await removeRecord(registryDir, l.device.device);
      report.reclaimed.push({ device: l.device.device, image: l.device.backingFile, reason: l.reason });
    } catch (err) {
      report.errors.push((err as Error).message);
    }
  }
  // Records whose device is gone or now backs another file are stale.
  const byDevice = new Map((await listLoopDevices()).map((d) => [d.device, d]));
  for (const r of records.values()) {
    const d = byDevice.get(r.device);
    if (!d || resolve(d.backingFile) !== resolve(r.image)) await removeRecord(registryDir, r.device);
  }
  return report;
}
