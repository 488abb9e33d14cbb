import { describe, expect, it } from 'vitest';
import { applyMergePatch, mergePatch } from '../../../src/runtime/merge-patch.ts';

describe('mergePatch', () => {
  it('is undefined for equal values (key order and undefined keys ignored)', () => {
    expect(mergePatch({ a: 1, b: { c: [1, 2] } }, { b: { c: [1, 2] }, a: 1, d: undefined })).toBeUndefined();
  });

  it('nulls keys that disappeared, recursively, and keeps only what changed', () => {
    const from = { phase: 'Ready', drift: { detected: true, items: [{ path: 'x' }], corrections: 1 }, log: { records: 1 } };
    const to = { phase: 'Ready', drift: { detected: false, corrections: 2 }, log: { records: 1 } };
    expect(mergePatch(from, to)).toEqual({ drift: { detected: false, items: null, corrections: 2 } });
  });

  it('replaces lists whole and adds new keys', () => {
    expect(mergePatch({ conditions: [{ type: 'Ready', status: 'False' }] }, { conditions: [{ type: 'Ready', status: 'True' }], endpoint: 'http://x' })).toEqual({
      conditions: [{ type: 'Ready', status: 'True' }],
      endpoint: 'http://x',
    });
  });

  it('round-trips: applying the patch to the old value gives the new one', () => {
    const cases: [unknown, unknown][] = [
      [{}, { a: { b: 1 } }],
      [{ a: { b: 1, c: 2 } }, { a: { c: 3 } }],
      [{ a: [1], b: 'x' }, { a: [2, 3] }],
      [{ recovery: { corruption: { id: '1' }, history: [] } }, { recovery: { history: [{ bootId: 'b' }] } }],
    ];
    for (const [from, to] of cases) expect(applyMergePatch(from, mergePatch(from, to))).toEqual(to);
  });
});
