import { describe, expect, it } from 'vitest';
import { repairRecord, repairToRun } from '../../../src/decisions/repair.ts';
import type { ServerObservation } from '../../../src/decisions/server-status.ts';

const corrupt = (id: string): ServerObservation => ({
  ok: true,
  status: {
    state: 'corrupt',
    startedAt: '2026-11-22T05:00:00Z',
    bootId: 'b1',
    recovery: { outcome: 'CorruptionDetected', startedAt: '2026-11-22T05:00:00Z', durationMs: 1, recordsRecovered: 3, bytesTruncated: 0, corruption: { id, segment: 's', offset: 10, reason: 'checksum' } },
    stats: { total: 3, bytes: 30, lastSequence: 3 },
  },
});

describe('repairToRun', () => {
  it('runs only for an approval equal to the corruption the live server reports', () => {
    expect(repairToRun({ approval: 'c-1', server: corrupt('c-1'), previous: undefined, suspended: false })).toBe('c-1');
    expect(repairToRun({ approval: 'c-0', server: corrupt('c-1'), previous: undefined, suspended: false })).toBeUndefined();
    expect(repairToRun({ approval: undefined, server: corrupt('c-1'), previous: undefined, suspended: false })).toBeUndefined();
  });
  it('never while suspended, never without a corrupt server, never again after the same id failed', () => {
    expect(repairToRun({ approval: 'c-1', server: corrupt('c-1'), previous: undefined, suspended: true })).toBeUndefined();
    expect(repairToRun({ approval: 'c-1', server: { ok: false, error: 'Timeout', message: 'slow' }, previous: undefined, suspended: false })).toBeUndefined();
    const failed = { repair: { corruptionId: 'c-1', approvedAt: 'a', completedAt: 'b', result: 'Failed' as const, message: 'x' } };
    expect(repairToRun({ approval: 'c-1', server: corrupt('c-1'), previous: failed as never, suspended: false })).toBeUndefined();
    const succeededBefore = { repair: { ...failed.repair, result: 'Succeeded' as const } };
    expect(repairToRun({ approval: 'c-1', server: corrupt('c-1'), previous: succeededBefore as never, suspended: false })).toBe('c-1');
  });
});

describe('repairRecord', () => {
  it('a success names the bytes discarded and where they are kept', () => {
    const ok = corrupt('c-1') as Extract<ServerObservation, { ok: true }>;
    const r = repairRecord('c-1', 'a', 'b', { ok: true, status: { ...ok.status, state: 'ready', repair: { corruptionId: 'c-1', movedTo: 'repair/x', bytesMoved: 12 } } });
    expect(r).toEqual({ corruptionId: 'c-1', approvedAt: 'a', completedAt: 'b', result: 'Succeeded', bytesDiscarded: 12, message: 'the log was truncated at the corrupt record; the cut bytes are kept in repair/x' });
  });
  it('a failure keeps the error and a bounded message', () => {
    const r = repairRecord('c-1', 'a', 'b', { ok: false, error: 'HttpError', message: 'x'.repeat(5000) });
    expect(r.result).toBe('Failed');
    expect(r.message?.length).toBe(4000);
    expect(r.message?.startsWith('HttpError: x')).toBe(true);
  });
});
