/** EventStore options and the snapshots it hands out (/stats, /status.storage, /status.retention). */
import type { Logger } from '../common/logger.ts';
import type { Durability } from './events.ts';
import type { RetentionPolicy } from './retention.ts';
import type { ReserveSpec } from './space.ts';
import type { CommitInfo, StoreIo } from './writer.ts';

export interface StoreOptions {
  dataDir: string;
  durability?: Durability;
  /** `interval` mode: fdatasync period (default 10 ms). */
  fsyncIntervalMs?: number;
  /** Roll to a new segment when the active one would exceed this (default: space.ts defaultSegmentBytes). */
  segmentMaxBytes?: number;
  /** Upper bound of one group commit (default 16 MiB; one append is never split). */
  maxCommitBytes?: number;
  /** Upper bound of bytes returned by one readAfter() (default 16 MiB; at least one event). */
  maxReadBytes?: number;
  /** Free-space reserve (default 2% of the filesystem, 1 MiB..1 GiB; never below maxAppendBytes). */
  reserve?: ReserveSpec;
  /** Largest append the caller sends (the server's --max-body-bytes; default 1 MiB). */
  maxAppendBytes?: number;
  retention?: RetentionPolicy;
  /** Clock for retention ages and lastRemovedAt (tests inject one; default Date.now). */
  now?: () => number;
  /** statfs period (default 1000 ms). */
  spaceCheckMs?: number;
  /** Retention runs this often (default 10 s), at every space check while full, and after a roll. */
  retentionCheckMs?: number;
  logger?: Logger;
  onFatal?: (err: Error) => void;
  onCommit?: (info: CommitInfo) => void;
  /** Fault injection for tests. */
  io?: Partial<StoreIo>;
}

export interface StatsSnapshot {
  /** Retained events (lastSequence - firstSequence + 1). */
  total: number;
  bytes: number;
  lastSequence: number;
  segments: number;
  diskBytes: number;
}

export interface StorageSnapshot {
  filesystemBytes: number;
  freeBytes: number;
  usedBytes: number;
  reserveBytes: number;
  logBytes: number;
  sideFileBytes: number;
  appendsRefused: number;
}

export interface RetentionSnapshot {
  maxAgeSeconds: number | null;
  maxBytes: number | null;
  firstSequence: number;
  removedSegments: number;
  removedEvents: number;
  removedBytes: number;
  lastRemovedAt: string | null;
}
