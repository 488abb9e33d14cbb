import { describe, expect, it } from 'vitest';
import type { EventLogStatus } from '../../../src/api/eventlog.ts';
import { formatTime } from '../../../src/kube/time.ts';
import { getCondition, isTrue, setCondition } from '../../../src/decisions/conditions.ts';
import { NOW, at } from './fixtures.ts';

describe('formatTime', () => {
  it('is RFC 3339 with whole seconds, like metav1.Time', () => {
    expect(formatTime(new Date('2026-11-22T05:00:00.987Z'))).toBe('2026-11-22T05:00:00Z');
  });
});

describe('setCondition', () => {
  const ready = { type: 'Ready', status: 'False' as const, reason: 'PodPending', message: 'starting', observedGeneration: 1 };

  it('adds a condition with lastTransitionTime and observedGeneration', () => {
    expect(setCondition(undefined, ready, NOW)).toEqual([{ ...ready, lastTransitionTime: '2026-11-22T05:00:00Z' }]);
  });

  it('keeps lastTransitionTime when only reason, message or generation change', () => {
    const a = setCondition(undefined, ready, NOW);
    const b = setCondition(a, { ...ready, reason: 'Recovering', message: 'recovery', observedGeneration: 2 }, at(60));
    expect(b[0]).toEqual({ type: 'Ready', status: 'False', reason: 'Recovering', message: 'recovery', observedGeneration: 2, lastTransitionTime: '2026-11-22T05:00:00Z' });
  });

  it('moves lastTransitionTime when the status changes', () => {
    const a = setCondition(undefined, ready, NOW);
    const b = setCondition(a, { ...ready, status: 'True', reason: 'LogAvailable' }, at(90));
    expect(b[0]!.lastTransitionTime).toBe('2026-11-22T05:01:30Z');
  });

  it('keeps positions, does not mutate, and finds conditions', () => {
    const a = setCondition(setCondition(undefined, ready, NOW), { type: 'Stalled', status: 'False', reason: 'NotStalled', message: '' }, NOW);
    const frozen = structuredClone(a);
    const b = setCondition(a, { ...ready, status: 'True', reason: 'LogAvailable' }, at(1));
    expect(a).toEqual(frozen);
    expect(b.map((c) => c.type)).toEqual(['Ready', 'Stalled']);
    expect(isTrue(b, 'Ready')).toBe(true);
    expect(getCondition(b, 'Stalled')?.reason).toBe('NotStalled');
    expect(getCondition(b, 'Drifted')).toBeUndefined();
  });
});
