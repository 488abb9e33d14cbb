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

/** Number of decimal digits of a non-negative integer below 2^53. */
export function decimalDigits(n: number): number {
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}

/** Writes the `digits` decimal digits of `n` at `at` (ASCII), without building a string. */
export function writeDecimal(buf: Buffer, n: number, at: number, digits: number): void {
  let p = at + digits - 1;
  while (n >= 10) {
    const q = Math.floor(n / 10);
    buf[p--] = 48 + (n - q * 10);
    n = q;
  }
  buf[p] = 48 + n;
}

/** Upper bound of the bytes encodeEventInto writes (UTF-8 takes at most 3 bytes per UTF-16 unit). */
export function eventRecordBound(id: string, key: string | undefined, pre: string, post: string): number {
  return HEADER_BYTES + 16 + 3 * (id.length + (key === undefined ? 0 : key.length) + pre.length + post.length);
}

/**
 * The writer's encoder: one record whose payload is `pre` + decimal `sequence` + `post`,
 * written piecewise (no concatenated payload string, no separate byte-length pass: the
 * caller sized `buf` with eventRecordBound). Same bytes as encodeRecordInto with that
 * payload. With `body` (a compact JSON object, post === ',' + body.slice(1) or '}' for
 * '{}'), the flat body string is written instead of `post` (no string concatenation).
 * Returns the end offset of the record; the payload starts at
 * `at + HEADER_BYTES + idBytes + keyBytes` (see payloadOffset).
 */
export function encodeEventInto(
  buf: Buffer,
  at: number,
  sequence: number,
  flags: number,
  id: string,
  key: string | undefined,
  hash: Buffer | undefined,
  pre: string,
  seqDigits: number,
  post: string,
  body?: string,
): number {
  let p = at + HEADER_BYTES;
  const idBytes = buf.write(id, p);
  p += idBytes;
  const keyBytes = key === undefined ? 0 : buf.write(key, p);
  p += keyBytes;
  p += buf.write(pre, p);
  writeDecimal(buf, sequence, p, seqDigits);
  p += seqDigits;
  if (body === undefined) p += buf.write(post, p);
  else if (body.length <= 2) p += buf.write('}', p);
  else {
    // post === ',' + body.slice(1): write the flat body and patch its opening brace.
    const q = p;
    p += buf.write(body, p);
    buf[q] = 0x2c;
  }
  writeHeader(buf, at, p, sequence, flags, idBytes, keyBytes, hash);
  return p;
}

/** The header and checksum of the record at `at` whose body ends at `end`. */
function writeHeader(buf: Buffer, at: number, end: number, sequence: number, flags: number, idBytes: number, keyBytes: number, hash: Buffer | undefined): void {
  buf.writeUInt32LE(end - at - 8, at);
  buf.writeUInt32LE(sequence % TWO32, at + 8);
  buf.writeUInt32LE(Math.floor(sequence / TWO32), at + 12);
  buf[at + 16] = flags;
  buf[at + 17] = idBytes;
  buf.writeUInt16LE(keyBytes, at + 18);
  if (hash !== undefined) hash.copy(buf, at + 20, 0, HASH_BYTES);
  else {
    // Zero hash: four JS stores instead of a native fill() call per record.
    buf.writeUInt32LE(0, at + 20);
    buf.writeUInt32LE(0, at + 24);
    buf.writeUInt32LE(0, at + 28);
    buf.writeUInt32LE(0, at + 32);
  }
  buf.writeUInt32LE(crc32(buf.subarray(at + 8, end)), at + 4);
}

const ID_OPEN = Buffer.from('{"id":"', 'latin1');

/** Upper bound of the bytes encodeFramedEventInto writes (the key takes at most 3 bytes per unit). */
export function framedRecordBound(idBytes: number, key: string | undefined, preTail: Uint8Array, body: Uint8Array): number {
  return HEADER_BYTES + 16 + 2 * idBytes + (key === undefined ? 0 : 3 * key.length) + ID_OPEN.length + preTail.length + body.length;
}

/**
 * The writer's encoder for a framed draft (events.ts FramedDraft): payload = `{"id":"` +
 * id + preTail + decimal `sequence` + body with its `{` made a `,` (or just `}` for
 * `{}`), copied from bytes (the id is `idBytes` ASCII bytes at `idAt` in `idPool`): no
 * string is encoded but the key. Same bytes as encodeEventInto with id as a string, pre =
 * `{"id":"` + id + preTail and the body as a string. Returns the end offset of the record.
 */
export function encodeFramedEventInto(
  buf: Buffer,
  at: number,
  sequence: number,
  flags: number,
  idPool: Uint8Array,
  idAt: number,
  idBytes: number,
  key: string | undefined,
  hash: Buffer | undefined,
  preTail: Uint8Array,
  seqDigits: number,
  body: Uint8Array,
): number {
  let p = at + HEADER_BYTES;
  for (let i = 0; i < idBytes; i++) buf[p + i] = idPool[idAt + i]!;
  p += idBytes;
  const keyBytes = key === undefined ? 0 : buf.write(key, p);
  p += keyBytes;
  for (let i = 0; i < ID_OPEN.length; i++) buf[p + i] = ID_OPEN[i]!;
  p += ID_OPEN.length;
  for (let i = 0; i < idBytes; i++) buf[p + i] = idPool[idAt + i]!;
  p += idBytes;
  buf.set(preTail, p);
  p += preTail.length;
  writeDecimal(buf, sequence, p, seqDigits);
  p += seqDigits;
  if (body.length <= 2) buf[p++] = 0x7d;
  else {
    buf.set(body, p);
    buf[p] = 0x2c;
    p += body.length;
  }
  writeHeader(buf, at, p, sequence, flags, idBytes, keyBytes, hash);
  return p;
}

/** Offset of the payload of the record at `at`. */
export function payloadOffset(buf: Buffer, at: number): number {
  return at + HEADER_BYTES + buf[at + 17]! + buf.readUInt16LE(at + 18);
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
