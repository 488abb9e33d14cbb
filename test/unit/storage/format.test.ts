import { describe, expect, it } from 'vitest';
import { crc32 } from 'node:zlib';
import { HEADER_BYTES, encodeRecord, readSequence, segmentFileName } from '../../../src/storage/format.ts';

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

  it('names segments by their first sequence, zero-padded so names sort', () => {
    expect(segmentFileName(1)).toBe('00000000000000000001.seg');
    expect(segmentFileName(123456)).toBe('00000000000000123456.seg');
    expect([segmentFileName(10), segmentFileName(9)].sort()).toEqual([segmentFileName(9), segmentFileName(10)]);
  });
});
