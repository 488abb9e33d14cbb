/**
 * Offline check of a data dir: the same scan and the same report as start-up recovery,
 * without changing anything (a torn tail is reported with the bytes recovery would cut).
 * Holds the data-dir lock while it runs so it never races a live server.
 */
import { mkdir } from 'node:fs/promises';
import { acquireLock } from './lock.ts';
import { corruptionId, type RecoveryReport } from './report.ts';
import { scanLog } from './scan.ts';

export async function verifyLog(dataDir: string): Promise<RecoveryReport> {
  await mkdir(dataDir, { recursive: true });
  const lock = await acquireLock(dataDir);
  try {
    const started = Date.now();
    const scan = await scanLog(dataDir);
    const report: RecoveryReport = {
      outcome: 'Clean',
      startedAt: new Date(started).toISOString(),
      durationMs: 0,
      segmentsScanned: scan.segmentsScanned,
      bytesScanned: scan.bytesScanned,
      recordsRecovered: scan.recordsRecovered,
      bytesTruncated: 0,
      dryRun: true,
    };
    const f = scan.failure;
    if (f?.kind === 'torn') {
      report.outcome = 'TornTailTruncated';
      report.bytesTruncated = scan.segments[f.segIndex]!.size - f.offset;
    } else if (f?.kind === 'corrupt') {
      report.outcome = 'CorruptionDetected';
      report.corruption = { id: corruptionId(f.segment, f.offset, f.reason), segment: f.segment, offset: f.offset, reason: f.reason };
    }
    report.durationMs = Date.now() - started;
    return report;
  } finally {
    await lock.release();
  }
}
