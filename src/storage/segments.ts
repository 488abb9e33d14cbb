/**
 * Segment files as the store holds them open, and the small file-system helpers the
 * writer, recovery and retention share.
 *
 * Guarantees:
 * - A new segment is created with O_EXCL and the directory is fsynced before it is used.
 *   If creating it fails no half-made file is left behind to block the next attempt.
 * - A segment retention removed is closed only once no read is using it (`readers`), so
 *   a read that started before the deletion finishes with the bytes it asked for; the
 *   space comes back when the last reader is done.
 */
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { SEGMENT_DIR, segmentFileName } from './format.ts';

export interface Segment {
  /** Ordinal: counts up across the life of the store (retention never renumbers). */
  ord: number;
  name: string;
  path: string;
  baseSequence: number;
  fh: FileHandle;
  /** Bytes acknowledged (published); the write position of the active segment. */
  size: number;
  /** Reads in progress on this file. */
  readers: number;
  /** Retention removed it: close the handle when the last reader is done. */
  retired: boolean;
  /** Cached newest write time (retention by age), for sealed segments. */
  newestMs?: number | undefined;
}

/**
 * A flush of data or metadata that was already acknowledged (or a directory entry) failed:
 * whatever the errno, the state on disk is in doubt, so it is never handled as a plain
 * "no space" (the store fails and recovery decides after a restart).
 */
export class DoubtfulFlushError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'DoubtfulFlushError';
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Creates segment `baseSequence` (O_EXCL) and fsyncs the segment directory. */
export async function createSegment(dataDir: string, baseSequence: number, ord: number): Promise<Segment> {
  const dir = join(dataDir, SEGMENT_DIR);
  const name = segmentFileName(baseSequence);
  const path = join(dir, name);
  const fh = await open(path, 'wx+');
  try {
    await fsyncDir(dir);
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(path).catch(() => undefined);
    throw new DoubtfulFlushError(`fsync of ${dir} after creating ${name} failed: ${(err as Error).message}`, { cause: err });
  }
  return { ord, name, path, baseSequence, fh, size: 0, readers: 0, retired: false };
}

export function closeWhenIdle(seg: Segment): void {
  if (seg.retired && seg.readers === 0) void seg.fh.close().catch(() => undefined);
}

/** Copies [offset, offset+length) of `src` into a new file `dest` and fsyncs it. */
export async function copyRange(src: string, offset: number, length: number, dest: string): Promise<void> {
  const inp = await open(src, 'r');
  try {
    const out = await open(dest, 'wx');
    try {
      const chunk = Buffer.allocUnsafe(Math.min(Math.max(length, 1), 8 * 1024 * 1024));
      let done = 0;
      while (done < length) {
        const { bytesRead } = await inp.read(chunk, 0, Math.min(chunk.length, length - done), offset + done);
        if (bytesRead === 0) break;
        let w = 0;
        while (w < bytesRead) w += (await out.write(chunk, w, bytesRead - w, done + w)).bytesWritten;
        done += bytesRead;
      }
      await out.sync();
    } finally {
      await out.close();
    }
  } finally {
    await inp.close();
  }
}
