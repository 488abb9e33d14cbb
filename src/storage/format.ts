/**
 * On-disk record framing (little endian). One record:
 *
 *   off len field
 *   0   4   bodyLen   bytes from offset 8 to the end of the record
 *   4   4   crc       CRC-32 (zlib.crc32) of bytes [8, 8 + bodyLen)
 *   8   8   sequence  u64 (written as two u32, low first)
 *   16  1   flags     bit0 MORE (a batch continues after this record), bit1 BATCH
 *   17  1   idLen     bytes of the event id (UTF-8)
 *   18  2   keyLen    bytes of the idempotency key (0 = none)
 *   20  16  reqHash   first 16 bytes of SHA-256 of the request (zero without a key)
 *   36  ..  id, key, payload (the stored event as compact UTF-8 JSON)
 *
 * Everything the indexes need (sequence, id, key) is in the header, so recovery never
 * JSON-parses a payload.
 */
import { crc32 } from 'node:zlib';

export const HEADER_BYTES = 36;
/** bodyLen excludes the 8-byte (len, crc) prefix. */
export const FIXED_BODY_BYTES = HEADER_BYTES - 8;
export const FLAG_MORE = 1;
export const FLAG_BATCH = 2;
export const KNOWN_FLAGS = FLAG_MORE | FLAG_BATCH;
export const HASH_BYTES = 16;
/** Smallest valid bodyLen: fixed fields + 1-byte id + "{}". */
export const MIN_BODY_LEN = FIXED_BODY_BYTES + 1 + 2;
/** Largest bodyLen accepted by recovery (a sanity bound, far above any configurable body limit). */
export const MAX_BODY_LEN = 256 * 1024 * 1024;
export const MIN_RECORD_BYTES = 8 + MIN_BODY_LEN;
export const SEGMENT_DIR = 'segments';
export const SEGMENT_SUFFIX = '.seg';
export const SEGMENT_NAME_RE = /^(\d{20})\.seg$/;
const TWO32 = 2 ** 32;

export function segmentFileName(baseSequence: number): string {
  return String(baseSequence).padStart(20, '0') + SEGMENT_SUFFIX;
}

export interface RecordInput {
  sequence: number;
  flags: number;
  id: string;
  key: string | undefined;
  hash: Buffer | undefined;
  payload: string;
}

/** Bytes the record will occupy on disk. idBytes/keyBytes/payloadBytes are UTF-8 byte lengths. */
export function recordSize(idBytes: number, keyBytes: number, payloadBytes: number): number {
  return HEADER_BYTES + idBytes + keyBytes + payloadBytes;
}

/**
 * Encodes one record into `buf` at `at`; the caller computed the byte lengths. Returns the
 * offset of the payload inside `buf`.
 */
export function encodeRecordInto(
  buf: Buffer,
  at: number,
  rec: RecordInput,
  idBytes: number,
  keyBytes: number,
  payloadBytes: number,
): number {
  const bodyLen = FIXED_BODY_BYTES + idBytes + keyBytes + payloadBytes;
  buf.writeUInt32LE(bodyLen, at);
  buf.writeUInt32LE(rec.sequence % TWO32, at + 8);
  buf.writeUInt32LE(Math.floor(rec.sequence / TWO32), at + 12);
  buf[at + 16] = rec.flags;
  buf[at + 17] = idBytes;
  buf.writeUInt16LE(keyBytes, at + 18);
  if (rec.hash !== undefined) rec.hash.copy(buf, at + 20, 0, HASH_BYTES);
  else buf.fill(0, at + 20, at + 36);
  let p = at + HEADER_BYTES;
  p += buf.write(rec.id, p, idBytes, 'utf8');
  if (rec.key !== undefined && keyBytes > 0) p += buf.write(rec.key, p, keyBytes, 'utf8');
  const payloadAt = p;
  buf.write(rec.payload, p, payloadBytes, 'utf8');
  buf.writeUInt32LE(crc32(buf.subarray(at + 8, at + 8 + bodyLen)), at + 4);
  return payloadAt;
}

/** Convenience for tests and tools: one record as its own Buffer. */
export function encodeRecord(rec: RecordInput): Buffer {
  const idBytes = Buffer.byteLength(rec.id);
  const keyBytes = rec.key === undefined ? 0 : Buffer.byteLength(rec.key);
  const payloadBytes = Buffer.byteLength(rec.payload);
  const buf = Buffer.allocUnsafe(recordSize(idBytes, keyBytes, payloadBytes));
  encodeRecordInto(buf, 0, rec, idBytes, keyBytes, payloadBytes);
  return buf;
}

export function readSequence(buf: Buffer, at: number): number {
  return buf.readUInt32LE(at + 8) + buf.readUInt32LE(at + 12) * TWO32;
}
