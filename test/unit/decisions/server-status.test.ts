import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import type { StatusBody } from '../../../src/server/app.ts';
import { ServerStatusSchema, parseServerStatus, parseTerminationMessage } from '../../../src/decisions/server-status.ts';
import { serverStatus } from './fixtures.ts';

// Compile-time check: whatever the real server returns is accepted by the schema's input type.
type Accepts<T, U> = T extends U ? true : false;
const serverBodyFits: Accepts<StatusBody, z.input<typeof ServerStatusSchema>> = true;

describe('parseServerStatus', () => {
  it('accepts the documented document (object or JSON text)', () => {
    expect(serverBodyFits).toBe(true);
    const doc = serverStatus({
      recovery: {
        outcome: 'CorruptionDetected',
        startedAt: '2026-11-22T04:59:00.000Z',
        durationMs: 3,
        segmentsScanned: 2,
        bytesScanned: 9000,
        recordsRecovered: 40,
        bytesTruncated: 0,
        corruption: { id: '3f9a0c1d2e4b5a69', segment: 'segments/00000000000000000001.seg', offset: 81920, reason: 'checksum mismatch' },
      },
      state: 'corrupt',
    });
    expect(parseServerStatus(doc)).toEqual({ success: true, data: doc });
    expect(parseServerStatus(JSON.stringify(doc))).toEqual({ success: true, data: doc });
  });

  it('accepts recovery null while recovering, and strips unknown fields', () => {
    const r = parseServerStatus({ ...serverStatus({ state: 'recovering', recovery: null }), future: 1 });
    expect(r.success && r.data.recovery).toBeNull();
    expect(r.success && 'future' in r.data).toBe(false);
  });

  it('returns a readable error', () => {
    const r = parseServerStatus({ ...serverStatus(), state: 'sleeping', stats: { total: -1 } });
    expect(r.success).toBe(false);
    if (!r.success) {
      expect(r.error).toMatch(/^log server \/status document is invalid: /);
      expect(r.error).toMatch(/state/);
      expect(r.error).toMatch(/stats/);
      expect(r.error).not.toContain('\n');
    }
    const bad = parseServerStatus('<html>');
    expect(!bad.success && bad.error).toMatch(/not JSON/);
  });
});

describe('parseTerminationMessage', () => {
  it('reads the server report and ignores anything else', () => {
    const corrupt = { state: 'corrupt', bootId: 'b1', recovery: serverStatus().recovery };
    expect(parseTerminationMessage(`${JSON.stringify(corrupt)}\n`)).toEqual(corrupt);
    expect(parseTerminationMessage('{"state":"failed","bootId":"b2","error":"fsync failed"}')).toEqual({ state: 'failed', bootId: 'b2', error: 'fsync failed' });
    expect(parseTerminationMessage('Error: boom\n    at x')).toBeUndefined();
    expect(parseTerminationMessage('{"state":"ready"}')).toBeUndefined();
    expect(parseTerminationMessage('{not json')).toBeUndefined();
    expect(parseTerminationMessage(undefined)).toBeUndefined();
  });
});
