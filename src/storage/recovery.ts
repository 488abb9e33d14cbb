/**
 * Start-up recovery and the human-approved repair, on the files of one data dir.
 *
 * Guarantees:
 * - Nothing on this path needs free space: no segment is created (the writer creates the
 *   first one on the first append), the torn-tail side copy is best effort (side-files.ts),
 *   truncating and deleting only free space. A full volume starts and serves reads.
 * - A torn tail is cut (and fdatasynced) before anything is appended; interior corruption
 *   is never cut or skipped (see scan.ts).
 * - Segments an interrupted retention run already gave up (before the first retained
 *   sequence of the marker) are deleted oldest first and the directory fsynced; they were
 *   never served again after the marker was durable.
 */
import { mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../common/logger.ts';
import { SEGMENT_DIR } from './format.ts';
import { LogIndex } from './log-index.ts';
import { corruptionId, type RecoveryReport } from './report.ts';
import { listSegments, scanLog, type ScanFailure } from './scan.ts';
import { copyRange, fsyncDir, type Segment } from './segments.ts';
import { keepTornTail, REPAIR_DIR } from './side-files.ts';
import { isNoSpace } from './space.ts';
import type { LogState } from './writer.ts';

export interface RecoveryOutput {
  report: RecoveryReport;
  scanFailure: ScanFailure | undefined;
  /** What an interrupted retention run left and recovery deleted now. */
  retired: { segments: number; events: number; bytes: number };
}

/** Scans the log, finishes an interrupted retention, cuts a torn tail, opens the segments into `data`. */
export async function recoverLog(dataDir: string, data: LogState, log: Logger, now: number): Promise<RecoveryOutput> {
  const startedAt = new Date(now).toISOString();
  try {
    if ((await mkdir(join(dataDir, SEGMENT_DIR), { recursive: true })) !== undefined) await fsyncDir(dataDir);
  } catch (err) {
    // A full volume may not even have room for the directory; the writer makes it later.
    if (!isNoSpace(err)) throw err;
    log.warn({ err }, 'no space to create the segment directory; it is created with the first append');
  }
  const index = new LogIndex();
  const scan = await scanLog(dataDir, { index });
  const report: RecoveryReport = {
    outcome: 'Clean',
    startedAt,
    durationMs: 0,
    segmentsScanned: scan.segmentsScanned,
    bytesScanned: scan.bytesScanned,
    recordsRecovered: scan.recordsRecovered,
    bytesTruncated: 0,
  };
  const retired = { segments: 0, events: 0, bytes: 0 };
  for (let i = 0; i < scan.retired.length; i++) {
    const r = scan.retired[i]!;
    const next = scan.retired[i + 1]?.baseSequence ?? scan.firstSequence;
    try {
      const size = (await stat(r.path)).size;
      await unlink(r.path);
      retired.segments++;
      retired.events += next - r.baseSequence;
      retired.bytes += size;
    } catch (err) {
      log.warn({ err, segment: r.rel }, 'could not delete a segment retention had already given up; it stays ignored');
      break; // strictly oldest first
    }
  }
  if (retired.segments > 0) {
    await fsyncDir(join(dataDir, SEGMENT_DIR));
    log.info({ ...retired, firstSequence: scan.firstSequence }, 'finished an interrupted retention run');
  }
  const f = scan.failure;
  if (f?.kind === 'torn') {
    const seg = scan.segments[f.segIndex]!;
    const cut = seg.size - f.offset;
    const copy = await keepTornTail(dataDir, seg.name, seg.path, f.offset, cut, now);
    const fh = await open(seg.path, 'r+');
    try {
      await fh.truncate(f.offset);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    seg.size = f.offset;
    report.outcome = 'TornTailTruncated';
    report.bytesTruncated = cut;
    if ('keptIn' in copy) report.truncatedTo = copy.keptIn;
    else report.tornCopySkipped = copy.skipped;
    log.warn(
      { segment: f.segment, offset: f.offset, bytes: cut, ...('keptIn' in copy ? { keptIn: copy.keptIn } : { notKept: copy.skipped }), reason: f.reason },
      'torn tail cut off',
    );
  } else if (f?.kind === 'corrupt') {
    report.outcome = 'CorruptionDetected';
    report.corruption = { id: corruptionId(f.segment, f.offset, f.reason), segment: f.segment, offset: f.offset, reason: f.reason };
  }
  // Open the segments: every segment readable; the last one also written (when not corrupt).
  const segs: Segment[] = [];
  try {
    const usable = f?.kind === 'corrupt' ? scan.segments.slice(0, f.segIndex + 1) : scan.segments;
    for (let i = 0; i < usable.length; i++) {
      const s = usable[i]!;
      const writable = f?.kind !== 'corrupt' && i === usable.length - 1;
      const fh = await open(s.path, writable ? 'r+' : 'r');
      segs.push({ ord: i, name: s.name, path: s.path, baseSequence: s.baseSequence, fh, size: s.size, readers: 0, retired: false });
    }
  } catch (err) {
    for (const s of segs) await s.fh.close().catch(() => undefined);
    throw err;
  }
  data.segments = segs;
  data.nextOrd = segs.length;
  data.index = index;
  data.diskBytes = segs.reduce((n, s) => n + s.size, 0);
  return { report, scanFailure: f, retired };
}

/**
 * Moves the current corruption aside (only when `id` names it): the bytes from the corrupt
 * record to the end of its segment, and every later segment, go to `repair/<id>-<ms>/`,
 * the segment is truncated there. The caller closes the files before and recovers after.
 */
export async function moveCorruptionAside(dataDir: string, id: string, f: ScanFailure, now: number): Promise<{ corruptionId: string; movedTo: string; bytesMoved: number }> {
  const dest = join(dataDir, REPAIR_DIR, `${id}-${now}`);
  await mkdir(dest, { recursive: true });
  await fsyncDir(join(dataDir, REPAIR_DIR));
  await fsyncDir(dataDir);
  const segDir = join(dataDir, SEGMENT_DIR);
  const all = await listSegments(dataDir);
  const at = all.findIndex((s) => s.rel === f.segment);
  if (at < 0) throw new Error(`repair: segment ${f.segment} is gone`);
  let bytesMoved = 0;
  const bad = all[at]!;
  const fh = await open(bad.path, 'r+');
  try {
    const size = (await fh.stat()).size;
    if (f.offset === 0) {
      await fh.close().catch(() => undefined);
      await rename(bad.path, join(dest, bad.name));
      bytesMoved += size;
    } else {
      await copyRange(bad.path, f.offset, size - f.offset, join(dest, `${bad.name}.from-${f.offset}.bin`));
      bytesMoved += size - f.offset;
    }
    for (const later of all.slice(at + 1)) {
      const st = (await stat(later.path)).size;
      await rename(later.path, join(dest, later.name));
      bytesMoved += st;
    }
    await fsyncDir(dest);
    await fsyncDir(segDir);
    if (f.offset > 0) {
      await fh.truncate(f.offset);
      await fh.datasync();
    }
  } finally {
    await fh.close().catch(() => undefined);
  }
  return { corruptionId: id, movedTo: dest, bytesMoved };
}
