import { describe, expect, it } from 'vitest';
import { crc32 } from 'node:zlib';
import { HEADER_BYTES, decimalDigits, encodeEventInto, encodeRecord, eventRecordBound, payloadOffset, readSequence, segmentFileName, writeDecimal } from '../../../src/storage/format.ts';

describe('record framing', () => {
  it('frames length, CRC-32, sequence, id, key and payload in bytes (multi-byte UTF-8)', () => {
    const payload = '{"msg":"Chidé 🎉"}';
    const rec = encodeRecord({ sequence: 2 ** 40 + 7, flags: 0, id: 'abc', key: 'k-1', hash: Buffer.alloc(16, 9), payload });
    const payloadBytes = Buffer.byteLength(payload);
    expect(payloadBytes).toBe(payload.length + 1 + 2); // é is 2 bytes, 🎉 is 4 bytes (2 UTF-16 units)
    expect(rec.length).toBe(HEADER_BYTES + 3 + 3 + payloadBytes);
    expect(rec.readUInt32LE(0)).toBe(rec.length - 8);
    expect(rec.readUInt32LE(4)).toBe(crc32(rec.subarray(8)));
    expect(readSequence(rec, 0)).toBe(2 ** 40 + 7);
    expect(rec.subarray(HEADER_BYTES, HEADER_BYTES + 3).toString()).toBe('abc');
    expect(rec.subarray(HEADER_BYTES + 3, HEADER_BYTES + 6).toString()).toBe('k-1');
    expect(rec.subarray(HEADER_BYTES + 6).toString('utf8')).toBe(payload);
    expect(rec.subarray(20, 36).equals(Buffer.alloc(16, 9))).toBe(true);
  });

  it("the writer's piecewise encoder (pre + sequence digits + post) writes exactly encodeRecord's bytes", () => {
    const cases = [
      { id: 'abc', key: undefined, hash: undefined, pre: '{"id":"abc","sequence":', post: '}' },
      { id: 'Chidé-🎉', key: 'k-1', hash: Buffer.alloc(16, 9), pre: '{"id":"Chidé-🎉","sequence":', post: ',"msg":"Chidé 🎉 日本語"}' },
      { id: 'x'.repeat(255), key: 'K'.repeat(255), hash: Buffer.alloc(16, 1), pre: '{"sequence":', post: ',"a":[1,2,{"b":null}]}' },
    ];
    const seqs = [1, 9, 10, 99, 100, 999_999_999, 1_000_000_000, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER];
    for (const c of cases) {
      for (const sequence of seqs) {
        for (const flags of [0, 2, 3]) {
          const expected = encodeRecord({ sequence, flags, id: c.id, key: c.key, hash: c.hash, payload: c.pre + sequence + c.post });
          const idB = Buffer.byteLength(c.id);
          const keyB = c.key === undefined ? 0 : Buffer.byteLength(c.key);
          const digits = decimalDigits(sequence);
          expect(digits).toBe(String(sequence).length);
          const bound = eventRecordBound(c.id, c.key, c.pre, c.post);
          expect(bound).toBeGreaterThanOrEqual(expected.length);
          const buf = Buffer.alloc(bound + 10, 0xee);
          const end = encodeEventInto(buf, 5, sequence, flags, c.id, c.key, c.hash, c.pre, digits, c.post);
          expect(end).toBe(5 + expected.length);
          expect(buf.subarray(5, end).equals(expected)).toBe(true);
          expect(payloadOffset(buf, 5)).toBe(5 + HEADER_BYTES + idB + keyB);
          expect(buf[4]).toBe(0xee);
          expect(buf[5 + expected.length]).toBe(0xee);
          // The same record from the flat client body instead of `post`.
          const body = c.post === '}' ? '{}' : '{' + c.post.slice(1);
          const buf2 = Buffer.alloc(eventRecordBound(c.id, c.key, c.pre, body) + 10, 0xee);
          const end2 = encodeEventInto(buf2, 3, sequence, flags, c.id, c.key, c.hash, c.pre, digits, '', body);
          expect(buf2.subarray(3, end2).equals(expected)).toBe(true);
        }
      }
    }
    const b = Buffer.alloc(16);
    writeDecimal(b, 1234567890123, 1, 13);
    expect(b.subarray(1, 14).toString()).toBe('1234567890123');
  });

  it('names segments by their first sequence, zero-padded so names sort', () => {
    expect(segmentFileName(1)).toBe('00000000000000000001.seg');
    expect(segmentFileName(123456)).toBe('00000000000000123456.seg');
    expect([segmentFileName(10), segmentFileName(9)].sort()).toEqual([segmentFileName(9), segmentFileName(10)]);
  });
});
