import { describe, expect, it } from 'vitest';
import type { EventLogStatus } from '../../../src/api/eventlog.ts';
import { transitionEvents } from '../../../src/decisions/events.ts';

const T0 = '2026-11-22T05:00:00Z';
const c = (type: string, status: 'True' | 'False' | 'Unknown', reason: string, message = `${reason} message`) => ({ type, status, reason, message, lastTransitionTime: T0, observedGeneration: 1 });
const ready: EventLogStatus = {
  conditions: [c('Ready', 'True', 'LogAvailable', 'the log server is recovered and accepts appends'), c('Stalled', 'False', 'NotStalled'), c('Drifted', 'False', 'NoDrift')],
  recovery: { lastOutcome: 'Clean', history: [{ bootId: 'b1', outcome: 'Clean', at: T0, durationMs: 3, recordsRecovered: 5 }] },
};
const withConds = (s: EventLogStatus, ...conds: ReturnType<typeof c>[]): EventLogStatus => ({
  ...s,
  conditions: (s.conditions ?? []).map((x) => conds.find((y) => y.type === x.type) ?? x),
});
const newBoot = (s: EventLogStatus, bootId: string, outcome: 'Clean' | 'TornTailTruncated' | 'CorruptionDetected', extra: Record<string, unknown> = {}): EventLogStatus => ({
  ...s,
  recovery: { ...s.recovery, lastOutcome: outcome, history: [{ bootId, outcome, at: T0, recordsRecovered: 5, bytesTruncated: 17, ...extra }, ...(s.recovery?.history ?? [])] },
});

describe('transitionEvents', () => {
  const cases: [string, EventLogStatus | undefined, EventLogStatus, { type: string; reason: string; note?: RegExp }[]][] = [
    ['no change', ready, ready, []],
    ['became Ready (first status)', undefined, ready, [{ type: 'Normal', reason: 'RecoveredClean' }, { type: 'Normal', reason: 'Ready', note: /accepts appends/ }]],
    ['became not Ready', ready, withConds(ready, c('Ready', 'False', 'ServerUnreachable', 'cannot read /status')), [{ type: 'Warning', reason: 'NotReady', note: /^ServerUnreachable: cannot read/ }]],
    ['not Ready reason changes: no event', withConds(ready, c('Ready', 'False', 'PodPending')), withConds(ready, c('Ready', 'False', 'Recovering')), []],
    ['new clean recovery', ready, newBoot(ready, 'b2', 'Clean'), [{ type: 'Normal', reason: 'RecoveredClean', note: /boot b2/ }]],
    ['torn tail', ready, newBoot(ready, 'b2', 'TornTailTruncated'), [{ type: 'Warning', reason: 'TornTailTruncated', note: /17 bytes/ }]],
    [
      'corruption',
      ready,
      { ...newBoot(ready, 'b2', 'CorruptionDetected', { corruptionId: 'c1' }), recovery: { ...newBoot(ready, 'b2', 'CorruptionDetected').recovery, corruption: { id: 'c1', segment: 's', offset: 9, reason: 'checksum mismatch' } } },
      [{ type: 'Warning', reason: 'CorruptionDetected', note: /c1 in s at offset 9/ }],
    ],
    ['stalled', ready, withConds(ready, c('Stalled', 'True', 'StorageClassNotFound')), [{ type: 'Warning', reason: 'Stalled', note: /^StorageClassNotFound/ }]],
    ['stalled reason changes', withConds(ready, c('Stalled', 'True', 'ContainerCrashLooping')), withConds(ready, c('Stalled', 'True', 'CorruptionDetected')), [{ type: 'Warning', reason: 'Stalled' }]],
    ['unstalled', withConds(ready, c('Stalled', 'True', 'StorageClassNotFound')), ready, [{ type: 'Normal', reason: 'Unstalled' }]],
    [
      'drift detected',
      ready,
      { ...ready, drift: { detected: true, items: [{ kind: 'Pod', name: 'orders-0', path: 'spec.containers[name=server].image', expected: 'a', actual: 'b', firstSeen: T0 }] } },
      [{ type: 'Warning', reason: 'DriftDetected', note: /Pod orders-0 spec.containers\[name=server\].image: expected a, found b/ }],
    ],
    [
      'drift still there: no event',
      { ...ready, drift: { detected: true, items: [{ kind: 'Service', name: 'orders', path: '.', expected: 'present', actual: 'deleted', firstSeen: T0 }] } },
      { ...ready, drift: { detected: true, items: [{ kind: 'Service', name: 'orders', path: '.', expected: 'present', actual: 'deleted', firstSeen: T0 }] } },
      [],
    ],
    ['drift corrected', { ...ready, drift: { corrections: 1 } }, { ...withConds(ready, c('Drifted', 'False', 'DriftCorrected', 'put back: Service orders deleted')), drift: { corrections: 3 } }, [{ type: 'Normal', reason: 'DriftCorrected', note: /put back 2 .*Service orders deleted/ }]],
    [
      'repair succeeded',
      { ...ready, recovery: { ...ready.recovery, repair: { corruptionId: 'c1', approvedAt: T0, result: 'Pending' } } },
      { ...ready, recovery: { ...ready.recovery, repair: { corruptionId: 'c1', approvedAt: T0, result: 'Succeeded', recordsDiscarded: 2, bytesDiscarded: 90 } } },
      [{ type: 'Normal', reason: 'Repaired', note: /2 records \/ 90 bytes/ }],
    ],
    [
      'rollout started (slot taken)',
      { ...ready, rollout: { state: 'Queued', desired: 'new', current: 'old', upToDate: false, since: T0 } },
      { ...ready, rollout: { state: 'RollingOut', desired: 'new', current: 'old', upToDate: false, since: T0, replacing: { template: 'old' } } },
      [{ type: 'Normal', reason: 'RolloutStarted', note: /template old with new/ }],
    ],
    [
      'rollout still in flight: no event',
      { ...ready, rollout: { state: 'RollingOut', desired: 'new', current: 'old', upToDate: false, since: T0 } },
      { ...ready, rollout: { state: 'RollingOut', desired: 'new', current: 'new', upToDate: false, since: T0 } },
      [],
    ],
    [
      'rollout finished',
      { ...ready, rollout: { state: 'RollingOut', desired: 'new', current: 'new', upToDate: false, since: T0 } },
      { ...ready, rollout: { state: 'UpToDate', desired: 'new', current: 'new', upToDate: true, since: T0 } },
      [{ type: 'Normal', reason: 'RolloutFinished', note: /runs template new/ }],
    ],
    ['queued: no event', ready, { ...ready, rollout: { state: 'Queued', desired: 'new', current: 'old', upToDate: false, since: T0 } }, []],
    ['repair failed', ready, { ...ready, recovery: { ...ready.recovery, repair: { corruptionId: 'c1', approvedAt: T0, result: 'Failed', message: 'EACCES' } } }, [{ type: 'Warning', reason: 'RepairFailed', note: /EACCES/ }]],
  ];

  it.each(cases)('%s', (_name, oldStatus, newStatus, expected) => {
    const got = transitionEvents(oldStatus, newStatus);
    expect(got.map((e) => ({ type: e.type, reason: e.reason }))).toEqual(expected.map((e) => ({ type: e.type, reason: e.reason })));
    expected.forEach((e, i) => {
      if (e.note) expect(got[i]!.note).toMatch(e.note);
    });
  });

  it('every event names its action (for the recorder)', () => {
    const all = cases.flatMap(([, o, n]) => transitionEvents(o, n));
    expect(all.length).toBeGreaterThan(10);
    for (const e of all) expect(e.action).toMatch(/^[A-Z][A-Za-z]+$/);
    expect(transitionEvents(ready, { ...ready, drift: { corrections: 1 } })[0]!.action).toBe('CorrectDrift');
  });

  it('drift found and put back in the same pass: DriftDetected names it (from `found`), then DriftCorrected', () => {
    const corrected = { ...withConds(ready, c('Drifted', 'False', 'DriftCorrected', 'put back: Service orders deleted')), drift: { corrections: 1 } };
    const found = [{ kind: 'Service' as const, name: 'orders', path: '.', expected: 'present', actual: 'deleted' }];
    const got = transitionEvents(ready, corrected, found);
    expect(got.map((e) => `${e.type}/${e.reason}`)).toEqual(['Warning/DriftDetected', 'Normal/DriftCorrected']);
    expect(got[0]!.note).toBe('Service orders deleted');
    // Items already announced (listed in the old status) are not announced again.
    const listed = { ...ready, drift: { detected: true, items: [{ ...found[0]!, firstSeen: T0 }] } };
    expect(transitionEvents(listed, corrected, found).map((e) => e.reason)).toEqual(['DriftCorrected']);
  });

  it('notes are at most 1024 characters', () => {
    const long = withConds(ready, c('Ready', 'False', 'PodPending', 'x'.repeat(5000)));
    expect(transitionEvents(ready, long)[0]!.note).toHaveLength(1024);
  });
});
