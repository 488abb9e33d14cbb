/** The recovery report: in /status, logs, metrics, the termination message and `verify`. */
import { createHash } from 'node:crypto';

export type RecoveryOutcome = 'Clean' | 'TornTailTruncated' | 'CorruptionDetected';

export interface CorruptionDetail {
  /** Stable id of this corruption: hash of segment + offset + reason. */
  id: string;
  /** Segment file, relative to the data dir (e.g. `segments/00000000000000000001.seg`). */
  segment: string;
  /** Byte offset of the first bad record inside the segment. */
  offset: number;
  reason: string;
}

export interface RecoveryReport {
  outcome: RecoveryOutcome;
  startedAt: string;
  durationMs: number;
  segmentsScanned: number;
  bytesScanned: number;
  recordsRecovered: number;
  bytesTruncated: number;
  /** Where the cut-off torn tail was kept (absolute path); absent when nothing was cut. */
  truncatedTo?: string;
  /**
   * Set instead of `truncatedTo` when the cut-off tail could not be kept for lack of space
   * (the log still was cut and is appendable): why.
   */
  tornCopySkipped?: string;
  corruption?: CorruptionDetail;
  /** verify only: true when nothing on disk was changed (a torn tail is reported, not cut). */
  dryRun?: boolean;
}

export function corruptionId(segment: string, offset: number, reason: string): string {
  return createHash('sha256').update(`${segment}\n${offset}\n${reason}`).digest('hex').slice(0, 16);
}
