/**
 * Pure decisions for loop-device ext4 volumes: sizes, mkfs arguments, naming,
 * parsing what the kernel reports (sysfs loop devices, mountinfo, capabilities),
 * and which attached loop devices are leftovers that may be reclaimed.
 *
 * Guarantees:
 * - Nothing here touches the system; every function is deterministic in its inputs,
 *   so the decisions are unit-tested without root.
 * - `volumeBytes` never returns less than asked for (it rounds up, to whole 4 KiB and
 *   to the minimum size), so a volume is never smaller than its claim.
 * - `selectLeftovers` only ever selects a device whose backing file is an image of
 *   ours: under the given root, or named like ours (`<volumes dir>/<name>.img`) AND
 *   either recorded by an owner that is no longer alive, or unrecorded with its image
 *   deleted or its directory gone. A device backed by any other file is never selected.
 *
 * Caveats:
 * - The minimum size (8 MiB) is a choice: ext4 with a 1 MiB journal formats from about
 *   4 MiB, but below 8 MiB the metadata eats a quarter of the space.
 * - Volumes below 512 MiB use 1 KiB blocks (like mke2fs's "small" type); they can grow
 *   to 1024x their first size (the resize inode's reserve), far beyond any test's need.
 */
import { basename, dirname, join, resolve, sep } from 'node:path';

export const MiB = 1024n * 1024n;
/** Smallest volume this module makes; smaller requests are rounded up to it. */
export const MIN_VOLUME_BYTES = 8n * MiB;
/** Below this, 1 KiB blocks and a 1 MiB journal (mke2fs would pick 4 MiB+). */
export const SMALL_VOLUME_BYTES = 512n * MiB;
const ALIGN = 4096n;

/** The image size for a requested size in bytes: at least the request, 4 KiB-aligned, >= the minimum. */
export function volumeBytes(requested: bigint): bigint {
  if (requested < 0n) throw new Error(`a volume size cannot be negative (${requested})`);
  const aligned = ((requested + ALIGN - 1n) / ALIGN) * ALIGN;
  return aligned < MIN_VOLUME_BYTES ? MIN_VOLUME_BYTES : aligned;
}

/** `mkfs.ext4` arguments for an image of `bytes` (no root-reserved blocks; small journal when small). */
export function mkfsArgs(image: string, bytes: bigint, label?: string): string[] {
  const args = ['-F', '-q', '-m', '0', '-t', 'ext4'];
  if (bytes < SMALL_VOLUME_BYTES) {
    // One inode per 16 KiB (a log server keeps few, large files), 1 KiB blocks, 1 MiB journal.
    args.push('-b', '1024', '-i', '16384', '-J', 'size=1');
  }
  // No lazy init: the kernel thread that zeroes inode tables after mount would
  // keep the image busy and make the first seconds of I/O slower; images are sparse anyway.
  args.push('-E', 'lazy_itable_init=0,lazy_journal_init=0');
  if (label) args.push('-L', label.slice(0, 16));
  args.push(image);
  return args;
}

/** The image file and mount point of volume `name` under `root` (the mount point is what a PV's local.path names). */
export function volumePaths(root: string, name: string): { image: string; mountPoint: string } {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) || name.endsWith('.img')) throw new Error(`volume name ${JSON.stringify(name)} must be [A-Za-z0-9._-]+ and not end in .img`);
  return { image: join(root, `${name}.img`), mountPoint: join(root, name) };
}

/** Whether `path` looks like one of our images: `<dir>/<name>.img` (name as volumePaths allows). */
export function isImageName(path: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]*\.img$/.test(basename(path));
}

export const isUnder = (path: string, root: string): boolean => resolve(path).startsWith(resolve(root) + sep);

// ---- what the kernel reports -------------------------------------------------------

export interface LoopDevice {
  /** "/dev/loop3" */
  device: string;
  /** "7:3" */
  majMin: string;
  /** Backing file path without the " (deleted)" suffix. */
  backingFile: string;
  /** The backing file was unlinked while attached. */
  deleted: boolean;
}

/** One loop device from `/sys/block/<name>/loop/backing_file` and `/sys/block/<name>/dev`. */
export function parseLoopDevice(name: string, backingFileText: string, devText: string): LoopDevice {
  let backingFile = backingFileText.replace(/\n$/, '');
  const deleted = backingFile.endsWith(' (deleted)');
  if (deleted) backingFile = backingFile.slice(0, -' (deleted)'.length);
  return { device: `/dev/${name}`, majMin: devText.trim(), backingFile, deleted };
}

export interface MountEntry {
  id: number;
  majMin: string;
  mountPoint: string;
  fsType: string;
  source: string;
}

const unescapeMount = (s: string): string => s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));

/** `/proc/self/mountinfo` lines -> entries (see proc(5)). */
export function parseMountInfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const f = left.split(' ');
    const r = right.split(' ');
    out.push({ id: Number(f[0]), majMin: f[2] ?? '', mountPoint: unescapeMount(f[4] ?? ''), fsType: r[0] ?? '', source: unescapeMount(r[1] ?? '') });
  }
  return out;
}

/** Mounts of a device (by major:minor or source path), deepest mount point first (the order to unmount in). */
export function mountsOf(dev: Pick<LoopDevice, 'device' | 'majMin'>, mounts: readonly MountEntry[]): MountEntry[] {
  return mounts
    .filter((m) => m.majMin === dev.majMin || m.source === dev.device)
    .sort((a, b) => b.mountPoint.length - a.mountPoint.length || b.id - a.id);
}

const CAP_SYS_RESOURCE = 24n;

/** Whether the `CapEff:` line of /proc/<pid>/status has CAP_SYS_RESOURCE (ext4 online resize needs it). */
export function hasSysResource(procStatus: string): boolean {
  const m = /^CapEff:\s*([0-9a-fA-F]+)$/m.exec(procStatus);
  if (!m) return false;
  return ((BigInt(`0x${m[1]}`) >> CAP_SYS_RESOURCE) & 1n) === 1n;
}

/** Field 22 (starttime) of /proc/<pid>/stat, which tells a live owner from a recycled pid. */
export function parseStartTime(procStat: string): string | undefined {
  const close = procStat.lastIndexOf(')');
  if (close < 0) return undefined;
  const rest = procStat.slice(close + 2).split(' ');
  return rest[19]; // fields 3.. follow the ")"; starttime is field 22
}

// ---- leftovers ---------------------------------------------------------------------

/** What an attaching process wrote down (see registry.ts). */
export interface AttachRecord {
  device: string;
  image: string;
  mountPoint: string;
  ownerPid: number;
  ownerStart: string;
}

export interface LeftoverFacts {
  /** This caller's volumes directory (own images: always ours to reclaim). */
  root: string;
  devices: readonly LoopDevice[];
  mounts: readonly MountEntry[];
  /** Records by device path. */
  records: ReadonlyMap<string, AttachRecord>;
  /** Is the recorded owner alive (pid exists with the same start time)? */
  ownerAlive(record: AttachRecord): boolean;
  /** The caller's pid: its own records under its own root are reclaimable. */
  selfPid: number;
  /** Does this path exist (the image's directory, for unrecorded devices)? */
  exists(path: string): boolean;
}

export interface Leftover {
  device: LoopDevice;
  /** Its mounts, deepest first: unmount these, then detach. */
  mounts: MountEntry[];
  /** Why it is ours. */
  reason: 'own-root' | 'dead-owner' | 'image-deleted' | 'directory-gone';
  /** The image can never be attached again (deleted), so a lazy unmount is safe. */
  imageGone: boolean;
}

/** The attached loop devices that are leftovers of ours, each with its mounts. Pure. */
export function selectLeftovers(f: LeftoverFacts): Leftover[] {
  const out: Leftover[] = [];
  for (const d of f.devices) {
    if (!isImageName(d.backingFile)) continue;
    const mounts = mountsOf(d, f.mounts);
    const rec = f.records.get(d.device);
    const recorded = rec !== undefined && resolve(rec.image) === resolve(d.backingFile);
    const dirGone = !f.exists(dirname(d.backingFile));
    const imageGone = d.deleted || dirGone;
    if (isUnder(d.backingFile, f.root)) {
      // Another live process attached it (a second agent on the same data dir): not ours to take.
      if (recorded && rec.ownerPid !== f.selfPid && f.ownerAlive(rec)) continue;
      out.push({ device: d, mounts, reason: 'own-root', imageGone });
    } else if (recorded) {
      if (!f.ownerAlive(rec)) out.push({ device: d, mounts, reason: 'dead-owner', imageGone });
    } else if (d.deleted && basename(dirname(d.backingFile)) === 'volumes') {
      out.push({ device: d, mounts, reason: 'image-deleted', imageGone: true });
    } else if (dirGone && basename(dirname(d.backingFile)) === 'volumes') {
      out.push({ device: d, mounts, reason: 'directory-gone', imageGone: true });
    }
  }
  return out;
}
