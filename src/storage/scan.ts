/**
 * Recovery scan: reads every segment in big chunks, checks framing, checksums and
 * sequence continuity, and (optionally) fills a LogIndex. It never changes anything on
 * disk; the store (or `verify`) decides what to do with the result.
 *
 * Classification of the first bad spot:
 * - in the last segment, with no valid record anywhere after it: a torn tail (the last
 *   write was cut short); the cut point is the start of the bad record, or of the
 *   incomplete batch it belongs to;
 * - anywhere else (a sealed segment, valid records after it, a sequence gap, a missing
 *   segment): interior corruption, which is never skipped.
 *
 * The log starts at sequence 1, or at the first retained sequence named by the retention
 * marker (retention.ts). Segments before that one are `retired`: retention decided to
 * delete them and a crash interrupted it; recovery finishes the deletion. A log whose
 * first segment does not start exactly there is a sequence gap (corruption).
 */
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import {
  FIXED_BODY_BYTES,
  FLAG_BATCH,
  FLAG_MORE,
  HEADER_BYTES,
  KNOWN_FLAGS,
  MAX_BODY_LEN,
  MIN_BODY_LEN,
  MIN_RECORD_BYTES,
  SEGMENT_DIR,
  SEGMENT_NAME_RE,
  readSequence,
} from './format.ts';
import { hashBytes } from './id-table.ts';
import type { LogIndex } from './log-index.ts';
import { FIRST_SEQUENCE_MARKER, readFirstSequence } from './retention.ts';

export interface SegmentFile {
  name: string;
  /** Path relative to the data dir, as used in reports. */
  rel: string;
  path: string;
  baseSequence: number;
  size: number;
}

export interface ScanFailure {
  kind: 'torn' | 'corrupt';
  segIndex: number;
  segment: string;
  /** torn: where to cut; corrupt: the first bad record. */
  offset: number;
  reason: string;
}

export interface ScanResult {
  segments: SegmentFile[];
  /** First retained sequence (1 unless retention removed something). */
  firstSequence: number;
  /** Segments before the first retained one, left by an interrupted retention run. */
  retired: SegmentFile[];
  lastSequence: number;
  payloadBytes: number;
  bytesScanned: number;
  segmentsScanned: number;
  recordsRecovered: number;
  failure?: ScanFailure;
}

export interface ScanOptions {
  index?: LogIndex;
  /** Read size; recovery reads segments in chunks of this many bytes (default 8 MiB). */
  chunkBytes?: number;
  /** First retained sequence; read from the retention marker when not given. */
  firstSequence?: number;
}

const CHUNK_BYTES = 8 * 1024 * 1024;

export async function listSegments(dataDir: string): Promise<SegmentFile[]> {
  const dir = join(dataDir, SEGMENT_DIR);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new Error(`listing segments in ${dir}: ${(err as Error).message}`, { cause: err });
  }
  const out: SegmentFile[] = [];
  for (const name of names) {
    const m = SEGMENT_NAME_RE.exec(name);
    if (m === null) continue;
    out.push({ name, rel: `${SEGMENT_DIR}/${name}`, path: join(dir, name), baseSequence: Number(m[1]), size: 0 });
  }
  out.sort((a, b) => a.baseSequence - b.baseSequence);
  return out;
}

interface PendingBatchRecord {
  segIndex: number;
  payloadOffset: number;
  payloadLen: number;
  idHash: number;
  key: string | undefined;
  hash: string | undefined;
}

export async function scanLog(dataDir: string, opts: ScanOptions = {}): Promise<ScanResult> {
  const all = await listSegments(dataDir);
  const first = opts.firstSequence ?? (await readFirstSequence(dataDir));
  const at = first > 1 ? all.findIndex((s) => s.baseSequence === first) : -1;
  const segments = at > 0 ? all.slice(at) : all;
  const retired = at > 0 ? all.slice(0, at) : [];
  const index = opts.index;
  if (index !== undefined) index.first = first;
  const chunkBytes = opts.chunkBytes ?? CHUNK_BYTES;
  const result: ScanResult = { segments, firstSequence: first, retired, lastSequence: first - 1, payloadBytes: 0, bytesScanned: 0, segmentsScanned: 0, recordsRecovered: 0 };
  if (index !== undefined) {
    // Estimate the record count from the file sizes (~256-byte events) to avoid regrowing.
    let total = 0;
    for (const seg of segments) total += await stat(seg.path).then((st) => st.size, () => 0);
    index.reserve(Math.min(Math.ceil(total / 256), 64 * 1024 * 1024));
  }
  let expected = first;
  let buf = Buffer.allocUnsafe(0);
  // An open (incomplete so far) batch: its records are indexed only once it closes.
  let batch: PendingBatchRecord[] = [];
  let batchStart = -1;
  let batchSeg = -1;

  const commit = (r: PendingBatchRecord, first: PendingBatchRecord, count: number, batchFlag: boolean): void => {
    result.recordsRecovered++;
    result.payloadBytes += r.payloadLen;
    if (index !== undefined) {
      index.push(r.segIndex, r.payloadOffset, r.payloadLen);
      const seq = index.lastSequence;
      index.ids.insert(r.idHash, seq);
      if (first === r && r.key !== undefined && !index.keys.has(r.key)) {
        index.keys.set(r.key, { sequence: seq, count, hash: r.hash ?? '', batch: batchFlag });
      }
    }
  };

  for (let si = 0; si < segments.length; si++) {
    const seg = segments[si]!;
    const isLast = si === segments.length - 1;
    if (seg.baseSequence !== expected) {
      result.failure = {
        kind: 'corrupt',
        segIndex: si,
        segment: seg.rel,
        offset: 0,
        reason: `sequence gap: segment starts at sequence ${seg.baseSequence}, expected ${expected}${si === 0 && first > 1 ? ` (the first retained sequence in ${FIRST_SEQUENCE_MARKER})` : ''}`,
      };
      return result;
    }
    const fh = await open(seg.path, 'r');
    result.segmentsScanned++;
    try {
      const size = (await fh.stat()).size;
      seg.size = size;
      if (buf.length < Math.min(chunkBytes, size)) buf = Buffer.allocUnsafe(Math.min(chunkBytes, size));
      let bufOff = 0; // file offset of buf[0]
      let bufLen = 0;
      let p = 0;
      const fill = async (need: number): Promise<boolean> => {
        if (p > 0) {
          buf.copy(buf, 0, p, bufLen);
          bufOff += p;
          bufLen -= p;
          p = 0;
        }
        if (need > buf.length) {
          const nb = Buffer.allocUnsafe(Math.max(need, buf.length * 2));
          buf.copy(nb, 0, 0, bufLen);
          buf = nb;
        }
        while (bufLen < need && bufOff + bufLen < size) {
          const { bytesRead } = await fh.read(buf, bufLen, buf.length - bufLen, bufOff + bufLen);
          if (bytesRead === 0) break;
          bufLen += bytesRead;
          result.bytesScanned += bytesRead;
        }
        return bufLen - p >= need;
      };
      let fail: { offset: number; reason: string; gap: boolean } | undefined;
      for (;;) {
        const off = bufOff + p;
        if (off >= size) break;
        if (bufLen - p < 8 && !(await fill(8))) {
          fail = { offset: off, reason: `truncated record header: only ${size - off} bytes left in the segment`, gap: false };
          break;
        }
        const bodyLen = buf.readUInt32LE(p);
        if (bodyLen < MIN_BODY_LEN || bodyLen > MAX_BODY_LEN) {
          fail = { offset: off, reason: `invalid record length ${bodyLen}`, gap: false };
          break;
        }
        if (bufLen - p < 8 + bodyLen && !(await fill(8 + bodyLen))) {
          fail = {
            offset: off,
            reason: `truncated record: length ${bodyLen} but only ${size - off - 8} bytes left in the segment`,
            gap: false,
          };
          break;
        }
        const rec = bufOff + p; // == off, but after fill() p may have moved
        if (crc32(buf.subarray(p + 8, p + 8 + bodyLen)) !== buf.readUInt32LE(p + 4)) {
          fail = { offset: rec, reason: 'checksum mismatch', gap: false };
          break;
        }
        const seq = readSequence(buf, p);
        if (seq !== expected) {
          fail = { offset: rec, reason: `sequence gap: found sequence ${seq}, expected ${expected}`, gap: true };
          break;
        }
        const flags = buf[p + 16]!;
        const idLen = buf[p + 17]!;
        const keyLen = buf.readUInt16LE(p + 18);
        const payloadLen = bodyLen - FIXED_BODY_BYTES - idLen - keyLen;
        if ((flags & ~KNOWN_FLAGS) !== 0 || idLen === 0 || payloadLen < 2 || ((flags & FLAG_MORE) !== 0 && (flags & FLAG_BATCH) === 0)) {
          fail = { offset: rec, reason: `invalid record header (flags ${flags}, id ${idLen} bytes, key ${keyLen} bytes)`, gap: true };
          break;
        }
        const idAt = p + HEADER_BYTES;
        const payloadOffset = rec + HEADER_BYTES + idLen + keyLen;
        if ((flags & FLAG_BATCH) === 0 && keyLen === 0) {
          // The common case, without allocations.
          if (batch.length > 0) {
            fail = { offset: rec, reason: `batch starting at offset ${batchStart} is interrupted by a non-batch record`, gap: true };
            break;
          }
          result.recordsRecovered++;
          result.payloadBytes += payloadLen;
          if (index !== undefined) {
            index.push(si, payloadOffset, payloadLen);
            index.ids.insert(hashBytes(buf, idAt, idAt + idLen), seq);
          }
          expected = seq + 1;
          p += 8 + bodyLen;
          continue;
        }
        const r: PendingBatchRecord = {
          segIndex: si,
          payloadOffset,
          payloadLen,
          idHash: hashBytes(buf, idAt, idAt + idLen),
          key: keyLen > 0 ? buf.toString('utf8', idAt + idLen, idAt + idLen + keyLen) : undefined,
          hash: keyLen > 0 ? buf.toString('base64', p + 20, p + 36) : undefined,
        };
        if ((flags & FLAG_BATCH) !== 0) {
          if (batch.length === 0) {
            batchStart = rec;
            batchSeg = si;
          }
          batch.push(r);
          if ((flags & FLAG_MORE) === 0) {
            const first = batch[0]!;
            for (const b of batch) commit(b, first, batch.length, true);
            batch = [];
          }
        } else {
          if (batch.length > 0) {
            fail = { offset: rec, reason: `batch starting at offset ${batchStart} is interrupted by a non-batch record`, gap: true };
            break;
          }
          commit(r, r, 1, false);
        }
        expected = seq + 1;
        p += 8 + bodyLen;
      }

      if (fail === undefined && batch.length > 0) {
        fail = { offset: batchStart, reason: `incomplete batch starting at offset ${batchStart}`, gap: false };
      }
      if (fail !== undefined) {
        const cutAt = batch.length > 0 && batchSeg === si ? batchStart : fail.offset;
        let torn = isLast && !fail.gap;
        if (torn && fail.offset < size) {
          const later = await findLaterValidFrame(fh, fail.offset, size, expected - 1);
          if (later >= 0) {
            torn = false;
            fail.reason += `; a valid record follows at offset ${later}`;
          }
        }
        if (!isLast) fail.reason += ' (sealed segment)';
        result.failure = torn
          ? { kind: 'torn', segIndex: si, segment: seg.rel, offset: cutAt, reason: fail.reason }
          : { kind: 'corrupt', segIndex: si, segment: seg.rel, offset: fail.offset, reason: fail.reason };
        result.lastSequence = expected - 1 - batch.length;
        return result;
      }
    } finally {
      await fh.close();
    }
  }
  result.lastSequence = expected - 1;
  return result;
}

/**
 * Looks for a record with a valid checksum and a plausible sequence anywhere after a bad
 * spot in the last segment. Returns its offset or -1.
 */
async function findLaterValidFrame(
  fh: import('node:fs/promises').FileHandle,
  from: number,
  size: number,
  lastGoodSequence: number,
): Promise<number> {
  const n = size - from;
  const tail = Buffer.allocUnsafe(n);
  let got = 0;
  while (got < n) {
    const { bytesRead } = await fh.read(tail, got, n - got, from + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  const maxSeq = lastGoodSequence + Math.ceil(got / MIN_RECORD_BYTES) + 1;
  for (let q = 1; q + MIN_RECORD_BYTES <= got; q++) {
    const bodyLen = tail.readUInt32LE(q);
    if (bodyLen < MIN_BODY_LEN || bodyLen > got - q - 8) continue;
    const seq = readSequence(tail, q);
    if (seq <= lastGoodSequence || seq > maxSeq) continue;
    if (crc32(tail.subarray(q + 8, q + 8 + bodyLen)) === tail.readUInt32LE(q + 4)) return from + q;
  }
  return -1;
}
