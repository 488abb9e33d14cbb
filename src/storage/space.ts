/**
 * Free-space guard: knows the size and free bytes of the log's filesystem and refuses an
 * append that would leave less than the reserve.
 *
 * Guarantees:
 * - The append path never makes a syscall for this: it compares against the last statfs
 *   minus the bytes written since that statfs started and the bytes admitted but not yet
 *   written. A statfs is started at most every `refreshMs` (in the background), and once
 *   more, awaited, before an append is refused on a stale figure.
 * - "Free" is what an unprivileged writer may use (bavail * bsize): a server running as
 *   root stops before eating the filesystem's root-reserved blocks.
 * - The reserve is never below `minReserveBytes` (the server passes --max-body-bytes): the
 *   size estimate of an append can be off by about its body size (multi-byte text), and
 *   the torn-tail copy of an interrupted request must still fit after a crash.
 *
 * Caveats: the estimate counts bytes, the filesystem allocates blocks; the reserve is the
 * slack. Another writer on the same filesystem is only seen at the next statfs, which is
 * why ENOSPC from the kernel is handled too (commit.ts).
 */
import { statfs as statfsCb } from 'node:fs';
import { StoreError } from './events.ts';
import type { StorageSnapshot } from './options.ts';

export interface StatFsLike {
  bsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  /** Inodes (0 when the filesystem has no fixed limit). */
  files?: number;
  ffree?: number;
}

export type StatFsFn = (dir: string) => Promise<StatFsLike>;

export const defaultStatfs: StatFsFn = (dir) =>
  new Promise((resolve, reject) => statfsCb(dir, (err, st) => (err ? reject(err) : resolve(st))));

/** How the reserve was asked for: bytes, a percentage of the filesystem, or the default. */
export type ReserveSpec = { bytes: number } | { percent: number } | { default: true };

export interface SpaceFigures {
  filesystemBytes: number;
  freeBytes: number;
  usedBytes: number;
  /** Free inodes; undefined when the filesystem has no inode limit. */
  freeInodes: number | undefined;
  /** Date.now() when this statfs returned. */
  at: number;
}

const MiB = 1024 * 1024;
/** Inodes needed to leave full: a new segment, its side files, the marker. */
const MIN_FREE_INODES = 2;
const GiB = 1024 * MiB;

/** Default reserve: 2% of the filesystem, at least 1 MiB, at most 1 GiB. */
export function defaultReserveBytes(filesystemBytes: number): number {
  return Math.min(GiB, Math.max(MiB, Math.ceil(filesystemBytes * 0.02)));
}

export function resolveReserve(spec: ReserveSpec, filesystemBytes: number, minReserveBytes: number): number {
  const r = 'bytes' in spec ? spec.bytes : 'percent' in spec ? Math.ceil((filesystemBytes * spec.percent) / 100) : defaultReserveBytes(filesystemBytes);
  return Math.max(r, minReserveBytes);
}

/**
 * Segment size when --segment-bytes is not given: small enough that several segments fit
 * the volume (retention deletes whole sealed segments) and the retention limit, big
 * enough not to churn files: min(64 MiB, fs/16, maxBytes/8), rounded down to 64 KiB, at
 * least 256 KiB.
 */
export function defaultSegmentBytes(filesystemBytes: number | undefined, retentionMaxBytes: number | undefined): number {
  let s = 64 * MiB;
  if (filesystemBytes !== undefined && filesystemBytes > 0) s = Math.min(s, Math.floor(filesystemBytes / 16));
  if (retentionMaxBytes !== undefined) s = Math.min(s, Math.floor(retentionMaxBytes / 8));
  s = Math.floor(s / (64 * 1024)) * 64 * 1024;
  return Math.max(256 * 1024, s);
}

export function isNoSpace(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === 'ENOSPC';
}

export interface SpaceGuardOptions {
  dir: string;
  reserve: ReserveSpec;
  minReserveBytes: number;
  statfs?: StatFsFn;
  now?: () => number;
  /** Background statfs at most this often on the append path (default 200 ms). */
  refreshMs?: number;
}

export class SpaceGuard {
  readonly #opts: SpaceGuardOptions;
  readonly #statfs: StatFsFn;
  readonly #now: () => number;
  #figures: SpaceFigures | undefined;
  #written = 0; // bytes written since the process started
  #writtenAtStat = 0; // `written` when the statfs behind _figures started
  #pending = 0; // admitted, neither written nor refused yet
  #inflight: Promise<SpaceFigures> | undefined;
  #lastError: Error | undefined;
  #reserve: number;
  #nextRefreshAt = 0;
  /** Appends refused for space since start. */
  refused = 0;

  constructor(opts: SpaceGuardOptions) {
    this.#opts = opts;
    this.#statfs = opts.statfs ?? defaultStatfs;
    this.#now = opts.now ?? Date.now;
    this.#reserve = resolveReserve(opts.reserve, 0, opts.minReserveBytes);
  }

  get figures(): SpaceFigures | undefined {
    return this.#figures;
  }
  get statfsError(): Error | undefined {
    return this.#lastError;
  }

  /** The reserve in bytes (a percentage follows the filesystem size: it is resolved at each statfs). */
  get reserveBytes(): number {
    return this.#reserve;
  }

  /** Free bytes now, by the estimate (last statfs minus what was written and admitted since). */
  estimatedFree(): number {
    if (this.#figures === undefined) return Number.POSITIVE_INFINITY;
    return this.#figures.freeBytes - (this.#written - this.#writtenAtStat) - this.#pending;
  }

  /** Whether `bytes` more would still leave the reserve free. Never a syscall. */
  fits(bytes: number): boolean {
    this.maybeRefresh();
    return this.#figures === undefined || this.#figures.freeBytes - (this.#written - this.#writtenAtStat) - this.#pending - bytes >= this.#reserve;
  }

  /** The figures are older than the refresh period (a refusal re-checks first). */
  stale(): boolean {
    return this.#figures === undefined || this.#now() - this.#figures.at >= (this.#opts.refreshMs ?? 200);
  }

  /** An append was admitted: count it until it is acknowledged or refused (release). */
  admit(bytes: number): void {
    this.#pending += bytes;
  }
  release(bytes: number): void {
    this.#pending = Math.max(0, this.#pending - bytes);
  }
  /** Bytes that really reached the file (also those of a write cut back later: conservative). */
  wrote(bytes: number): void {
    this.#written += bytes;
  }

  /** Free bytes by the last statfs minus what was written since (not counting admitted appends). */
  freeNow(): number {
    if (this.#figures === undefined) return 0;
    return this.#figures.freeBytes - (this.#written - this.#writtenAtStat);
  }

  maybeRefresh(): void {
    if (this.#inflight !== undefined) return;
    const now = Date.now();
    if (now < this.#nextRefreshAt) return;
    this.#nextRefreshAt = now + (this.#opts.refreshMs ?? 200);
    this.refresh().catch(() => undefined);
  }

  /** A fresh statfs (joins one in flight). Failures keep the old figures and are remembered. */
  refresh(): Promise<SpaceFigures> {
    if (this.#inflight !== undefined) return this.#inflight;
    const startedWith = this.#written;
    this.#inflight = this.#statfs(this.#opts.dir)
      .then((st) => {
        const f: SpaceFigures = {
          filesystemBytes: st.blocks * st.bsize,
          freeBytes: st.bavail * st.bsize,
          usedBytes: Math.max(0, (st.blocks - st.bfree) * st.bsize),
          freeInodes: st.files !== undefined && st.files > 0 ? (st.ffree ?? 0) : undefined,
          at: this.#now(),
        };
        this.#figures = f;
        this.#reserve = resolveReserve(this.#opts.reserve, f.filesystemBytes, this.#opts.minReserveBytes);
        // Bytes written while statfs ran may or may not be in it: count them (conservative).
        this.#writtenAtStat = startedWith;
        this.#lastError = undefined;
        return f;
      })
      .catch((err: unknown) => {
        this.#lastError = err instanceof Error ? err : new Error(String(err));
        throw this.#lastError;
      })
      .finally(() => {
        this.#inflight = undefined;
      });
    return this.#inflight;
  }

  /** The /status `storage` figures (undefined until the first statfs returned). */
  snapshot(logBytes: number, sideFileBytes: number): StorageSnapshot | undefined {
    const f = this.#figures;
    if (f === undefined) return undefined;
    const { filesystemBytes, freeBytes, usedBytes } = f;
    return { filesystemBytes, freeBytes, usedBytes, reserveBytes: this.reserveBytes, logBytes, sideFileBytes, appendsRefused: this.refused };
  }

  /** The refusal of an append for space (HTTP 507 storage_full). */
  fullError(): StoreError {
    const free = Math.max(0, Math.floor(this.freeNow()));
    const reserve = this.reserveBytes;
    return new StoreError(
      'storage_full',
      `the volume is full: ${free} bytes free, ${reserve} bytes reserved; appends are refused until space is freed (retention, a bigger volume, or deleted files). Reads still work.`,
      { details: { freeBytes: free, reserveBytes: reserve } },
    );
  }

  /** By the last statfs, free space is below the reserve (nothing could be appended). */
  belowReserve(): boolean {
    return this.#figures !== undefined && this.freeNow() < this.reserveBytes;
  }

  /**
   * By the last statfs there is room again: the reserve plus `marginBytes` (hysteresis),
   * and inodes for a new segment where the filesystem counts them.
   */
  roomAgain(marginBytes: number): boolean {
    const f = this.#figures;
    return f !== undefined && this.freeNow() >= this.reserveBytes + marginBytes && (f.freeInodes === undefined || f.freeInodes >= MIN_FREE_INODES);
  }

  /**
   * Whether the figures agree that an ENOSPC for `groupBytes` was real: free bytes below
   * the reserve plus the group, or no inode left (a segment could not be created).
   */
  confirmsNoSpace(f: SpaceFigures, groupBytes: number): boolean {
    return f.freeBytes < this.reserveBytes + groupBytes || f.freeInodes === 0;
  }
}
