/** Rolling template changes out one EventLog at a time: the pure decisions (src/decisions/rollout.ts) and how status shows them. */
import { describe, expect, it } from 'vitest';
import { ConditionType, EventLogStatusSchema, ReadyReason, ReconcilingReason, type EventLog, type RolloutStatus } from '../../../src/api/eventlog.ts';
import { desiredPod, desiredPvc, desiredService } from '../../../src/decisions/desired.ts';
import { SPEC_HASH_ANNOTATION } from '../../../src/decisions/labels.ts';
import { decideRollout, holdsSlot, mayRollPod, needsRolloutSlot, nextInQueue, templateChange, type RolloutInput, type RolloutPod } from '../../../src/decisions/rollout.ts';
import { computeStatus, type StatusInput } from '../../../src/decisions/status.ts';
import { NOW, OPTS, asLive, makeEvl, serverStatus } from './fixtures.ts';

const T0 = '2026-11-22T04:00:00Z';
const T1 = '2026-11-22T05:00:00Z';
const oldPod: RolloutPod = { uid: 'pod-1', template: 'old', tokenHash: 'tok', terminating: false, ready: true, restarts: 0, image: 'eventlog:v1' };

function input(over: Partial<RolloutInput> = {}): RolloutInput {
  return { desired: { template: 'new', tokenHash: 'tok' }, pod: oldPod, server: { bootId: 'boot-1' }, recorded: undefined, suspended: false, holders: [], max: 1, now: T1, ...over };
}
const rolling = (over: Partial<RolloutStatus> = {}): RolloutStatus => ({ state: 'RollingOut', desired: 'new', current: 'old', upToDate: false, since: T0, replacing: { template: 'old', podUid: 'pod-1', bootId: 'boot-1', restarts: 0, image: 'eventlog:v1' }, ...over });

describe('templateChange', () => {
  it('a different spec hash is a template rollout, unless the token changed too (drift: not gated)', () => {
    expect(templateChange({ template: 'a', tokenHash: 't' }, { template: 'a', tokenHash: 't' })).toBe('none');
    expect(templateChange({ template: 'b', tokenHash: 't' }, { template: 'a', tokenHash: 't' })).toBe('template');
    expect(templateChange({ template: 'b', tokenHash: 't2' }, { template: 'a', tokenHash: 't' })).toBe('token');
    // A pod from an operator that ran servers without a token: a template change like any other.
    expect(templateChange({ template: 'b', tokenHash: 't' }, { template: 'a' })).toBe('template');
    expect(templateChange({ template: 'b' }, undefined)).toBe('none');
    expect(templateChange({ template: 'b' }, {})).toBe('none');
  });
});

describe('decideRollout', () => {
  it('up to date: nothing to do; a missing pod is up to date (it is created from the desired template)', () => {
    expect(decideRollout(input({ pod: { ...oldPod, template: 'new' } }))).toEqual({ status: { state: 'UpToDate', desired: 'new', current: 'new', upToDate: true, since: T1 }, transition: undefined });
    expect(decideRollout(input({ pod: undefined })).status).toMatchObject({ state: 'UpToDate', upToDate: true });
    // since stays while the state stays: a steady EventLog writes nothing.
    const steady = { state: 'UpToDate' as const, desired: 'new', current: 'new', upToDate: true, since: T0 };
    expect(decideRollout(input({ pod: { ...oldPod, template: 'new' }, recorded: steady })).status).toEqual(steady);
  });

  it('an older template with a free slot takes it, recording what it replaces (before the pod is touched)', () => {
    const d = decideRollout(input());
    expect(d.transition).toBe('started');
    expect(d.status).toEqual({ state: 'RollingOut', desired: 'new', current: 'old', upToDate: false, since: T1, replacing: { template: 'old', podUid: 'pod-1', bootId: 'boot-1', restarts: 0, image: 'eventlog:v1' } });
    expect(holdsSlot({ rollout: d.status })).toBe(true);
    // The server did not answer now: the boot the last status knew.
    expect(decideRollout(input({ server: undefined, lastBootId: 'boot-0' })).status.replacing?.bootId).toBe('boot-0');
  });

  it('no free slot: queued, naming who holds the slots; since stays while queued', () => {
    const d = decideRollout(input({ holders: ['a/x'] }));
    expect(d).toEqual({ status: { state: 'Queued', desired: 'new', current: 'old', upToDate: false, since: T1 }, transition: 'queued', waitingFor: { names: ['a/x'], count: 1, max: 1 } });
    const again = decideRollout(input({ holders: ['a/y'], recorded: d.status, now: '2026-11-22T06:00:00Z' }));
    expect(again.transition).toBeUndefined();
    expect(again.status.since).toBe(T1);
    // max 2: one holder leaves a slot.
    expect(decideRollout(input({ holders: ['a/x'], max: 2 })).transition).toBe('started');
    expect(decideRollout(input({ holders: ['a/x', 'a/y'], max: 2 })).transition).toBe('queued');
    // At most MAX_NAMED_HOLDERS names, and the count.
    const many = decideRollout(input({ holders: ['1', '2', '3', '4', '5', '6', '7'], max: 7 }));
    expect(many.waitingFor).toEqual({ names: ['1', '2', '3', '4', '5'], count: 7, max: 7 });
  });

  it('not gated: a pod that is not Ready (it serves nothing a rollout could disrupt) is replaced at once, even with every slot taken', () => {
    const broken = { ...oldPod, ready: false };
    expect(needsRolloutSlot({ template: 'new', tokenHash: 'tok' }, broken)).toBe(false);
    expect(needsRolloutSlot({ template: 'new', tokenHash: 'tok' }, oldPod)).toBe(true);
    const d = decideRollout(input({ pod: broken, holders: ['a/x'] }));
    expect(d).toMatchObject({ transition: undefined, status: { state: 'Outdated', upToDate: false } });
    expect(d.waitingFor).toBeUndefined();
  });

  it('not gated: a token change, a terminating pod, a suspended EventLog', () => {
    expect(decideRollout(input({ desired: { template: 'new', tokenHash: 'tok2' } })).status).toMatchObject({ state: 'Outdated', upToDate: false });
    expect(decideRollout(input({ pod: { ...oldPod, terminating: true }, holders: ['a/x'] })).status.state).toBe('Outdated');
    expect(decideRollout(input({ suspended: true })).status.state).toBe('Outdated');
  });

  it('holding: stays RollingOut through deletion, re-creation and a not-yet-Ready pod; finishes when another boot answers on the desired template', () => {
    const recorded = rolling();
    const steps: Array<[string, Partial<RolloutInput>, string]> = [
      ['old pod still there (the slot was just recorded)', {}, 'RollingOut'],
      ['old pod terminating', { pod: { ...oldPod, terminating: true } }, 'RollingOut'],
      ['no pod', { pod: undefined, server: undefined }, 'RollingOut'],
      ['new pod not Ready', { pod: { uid: 'pod-2', template: 'new', terminating: false, ready: false }, server: undefined }, 'RollingOut'],
      ['new pod Ready, server not answering', { pod: { uid: 'pod-2', template: 'new', terminating: false, ready: true }, server: undefined }, 'RollingOut'],
      // In place (image change): the pod has the new hash, but the old server still answers.
      ['patched in place, old boot answers', { pod: { ...oldPod, template: 'new', image: 'eventlog:v2' } }, 'RollingOut'],
      ['patched in place, new boot answers', { pod: { ...oldPod, template: 'new', image: 'eventlog:v2', restarts: 1 }, server: { bootId: 'boot-2' } }, 'UpToDate'],
      ['recreated, new boot answers', { pod: { uid: 'pod-2', template: 'new', terminating: false, ready: true }, server: { bootId: 'boot-2' } }, 'UpToDate'],
    ];
    for (const [what, over, state] of steps) {
      const d = decideRollout(input({ recorded, holders: ['a/x', 'a/y'], ...over }));
      expect(d.status.state, what).toBe(state);
      expect(d.transition, what).toBe(state === 'UpToDate' ? 'finished' : undefined);
      if (state === 'RollingOut') expect(d.status, what).toMatchObject({ since: T0, upToDate: false, replacing: recorded.replacing });
      else expect(d.status.replacing, what).toBeUndefined();
    }
  });

  it('holding: a pod patched in place without a new image (labels) keeps its server: its answer on the desired template ends the rollout', () => {
    const labelsOnly = { ...oldPod, template: 'new' };
    expect(decideRollout(input({ recorded: rolling(), pod: labelsOnly }))).toMatchObject({ transition: 'finished', status: { state: 'UpToDate' } });
    // Not before the pod carries the desired template, and not without the server's answer.
    expect(decideRollout(input({ recorded: rolling(), pod: oldPod })).status.state).toBe('RollingOut');
    expect(decideRollout(input({ recorded: rolling(), pod: labelsOnly, server: undefined })).status.state).toBe('RollingOut');
    // A recreated pod with the same image still needs a new boot.
    expect(decideRollout(input({ recorded: rolling(), pod: { ...labelsOnly, uid: 'pod-2' } })).status.state).toBe('RollingOut');
  });

  it('holding: a stuck rollout (the new pod never becomes Ready) keeps its slot', () => {
    const d = decideRollout(input({ recorded: rolling(), pod: { uid: 'pod-2', template: 'new', terminating: false, ready: false }, server: undefined, now: '2026-11-23T00:00:00Z' }));
    expect(d.status).toMatchObject({ state: 'RollingOut', since: T0 });
  });

  it('holding without a known boot: a new pod or a restarted container ends it', () => {
    const recorded = rolling({ replacing: { template: 'old', podUid: 'pod-1', restarts: 0 } });
    expect(decideRollout(input({ recorded, pod: { ...oldPod, template: 'new' } })).status.state).toBe('RollingOut');
    expect(decideRollout(input({ recorded, pod: { ...oldPod, template: 'new', restarts: 1 } })).status.state).toBe('UpToDate');
    expect(decideRollout(input({ recorded, pod: { ...oldPod, uid: 'pod-2', template: 'new' } })).status.state).toBe('UpToDate');
  });

  it('holding: the desired template became the old one again (operator rolled back): done at once', () => {
    const d = decideRollout(input({ recorded: rolling(), desired: { template: 'old', tokenHash: 'tok' } }));
    expect(d).toMatchObject({ transition: 'finished', status: { state: 'UpToDate', current: 'old', desired: 'old', upToDate: true } });
  });

  it('holding and suspended: the slot is given back', () => {
    expect(decideRollout(input({ recorded: rolling(), suspended: true }))).toMatchObject({ transition: 'released', status: { state: 'Outdated' } });
  });

  it('mayRollPod: only a recorded slot, never while suspended', () => {
    expect(mayRollPod(undefined, false)).toBe(false);
    expect(mayRollPod({ rollout: { state: 'Queued' } }, false)).toBe(false);
    expect(mayRollPod({ rollout: { state: 'RollingOut' } }, false)).toBe(true);
    expect(mayRollPod({ rollout: { state: 'RollingOut' } }, true)).toBe(false);
  });

  it('nextInQueue: the first free ones by name', () => {
    expect(nextInQueue(['b/z', 'a/y', 'a/x'], 2)).toEqual(['a/x', 'a/y']);
    expect(nextInQueue(['a/x'], 0)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------
// Status: the conditions and status.rollout
// ---------------------------------------------------------------------------

function healthy(evl: EventLog, podTemplate: 'desired' | 'old'): StatusInput {
  const pod = asLive(desiredPod(evl, OPTS));
  const desiredHash = pod.metadata.annotations[SPEC_HASH_ANNOTATION];
  if (podTemplate === 'old') pod.metadata.annotations[SPEC_HASH_ANNOTATION] = 'old';
  pod.status = {
    phase: 'Running',
    podIP: '127.1.0.7',
    conditions: [{ type: 'PodScheduled', status: 'True' }, { type: 'Ready', status: 'True' }],
    containerStatuses: [{ name: 'server', ready: true, restartCount: 0, started: true, state: { running: { startedAt: '2026-11-22T04:59:00Z' } } }],
  };
  const pvc = asLive(desiredPvc(evl, OPTS));
  pvc.status = { phase: 'Bound', capacity: { storage: '1Gi' } };
  return { evl, pvc: pvc as never, pod: pod as never, service: asLive(desiredService(evl, OPTS)) as never, server: { ok: true, status: serverStatus() }, drift: { items: [], outcome: 'none' }, desiredPodHash: desiredHash, now: NOW };
}

describe('status of a rollout', () => {
  const evl = makeEvl();
  const cond = (s: ReturnType<typeof computeStatus>, type: string) => s.conditions?.find((c) => c.type === type);

  it('queued: Reconciling=True/RolloutQueued with a message that names no holder (it stays the same while queued), Ready=False/Progressing; status.rollout written (kstatus and Argo CD: test/unit/gitops-kstatus.test.ts)', () => {
    const i = healthy(evl, 'old');
    const rollout = decideRollout(input({ desired: { template: i.desiredPodHash! }, pod: { template: 'old', terminating: false, ready: true }, holders: ['shop/payments'] }));
    const s = computeStatus({ ...i, rollout });
    expect(cond(s, ConditionType.Reconciling)).toMatchObject({ status: 'True', reason: ReconcilingReason.RolloutQueued });
    expect(cond(s, ConditionType.Reconciling)?.message).toContain('waiting for a rollout slot (at most 1 at once');
    expect(cond(s, ConditionType.Reconciling)?.message).not.toContain('shop/payments');
    // Another holder later: the same status, so no write while the queue moves.
    const later = computeStatus({ ...i, evl: { ...i.evl, status: s }, rollout: decideRollout(input({ desired: { template: i.desiredPodHash! }, pod: { template: 'old', terminating: false, ready: true }, holders: ['shop/zebra'], recorded: s.rollout })) });
    expect(later).toEqual(s);
    expect(cond(s, ConditionType.Reconciling)?.message).toContain('--max-concurrent-rollouts');
    expect(cond(s, ConditionType.Ready)).toMatchObject({ status: 'False', reason: ReadyReason.Progressing });
    expect(cond(s, ConditionType.Stalled)?.status).toBe('False');
    expect(s.rollout).toMatchObject({ state: 'Queued', current: 'old', desired: i.desiredPodHash, upToDate: false });
    expect(EventLogStatusSchema.safeParse(s).success).toBe(true);
  });

  it('rolling out: Reconciling=True/RollingOut through the pod deletion and while the new server is not Ready', () => {
    const i = healthy(evl, 'old');
    const recorded = rolling({ desired: i.desiredPodHash! });
    const started = computeStatus({ ...i, rollout: decideRollout(input({ desired: { template: i.desiredPodHash! }, pod: { template: 'old', terminating: false, ready: true } })) });
    expect(cond(started, ConditionType.Reconciling)).toMatchObject({ status: 'True', reason: ReconcilingReason.RollingOut });
    for (const pod of [undefined, { ...i.pod!, metadata: { ...i.pod!.metadata, deletionTimestamp: T1 } }]) {
      const s = computeStatus({ ...i, pod, server: undefined, rollout: decideRollout(input({ desired: { template: i.desiredPodHash! }, pod: pod ? { template: 'old', terminating: true, ready: false } : undefined, server: undefined, recorded })) });
      expect(cond(s, ConditionType.Reconciling)).toMatchObject({ status: 'True', reason: ReconcilingReason.RollingOut });
    }
  });

  it('a stuck rollout that is Stalled (image cannot be pulled) reads Stalled, and keeps its slot', () => {
    const i = healthy(evl, 'desired');
    const pod = structuredClone(i.pod!) as never as { status: { phase: string; containerStatuses: unknown[]; conditions: unknown[] } };
    pod.status.phase = 'Pending';
    pod.status.conditions = [{ type: 'PodScheduled', status: 'True' }];
    pod.status.containerStatuses = [{ name: 'server', ready: false, restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff', message: 'pull access denied' } } }];
    const rollout = decideRollout(input({ desired: { template: i.desiredPodHash! }, pod: { uid: 'pod-2', template: i.desiredPodHash!, terminating: false, ready: false }, server: undefined, recorded: rolling({ desired: i.desiredPodHash! }) }));
    const s = computeStatus({ ...i, pod: pod as never, server: undefined, rollout });
    expect(s.rollout?.state).toBe('RollingOut');
    expect(cond(s, ConditionType.Stalled)).toMatchObject({ status: 'True', reason: 'ImagePullFailed' });
  });

  it('finished: Ready=True, Reconciled, UpToDate; the next pass writes nothing', () => {
    const i = healthy(evl, 'desired');
    const rollout = decideRollout(input({ desired: { template: i.desiredPodHash! }, pod: { uid: 'pod-2', template: i.desiredPodHash!, terminating: false, ready: true }, server: { bootId: 'boot-2' }, recorded: rolling({ desired: i.desiredPodHash! }) }));
    const s = computeStatus({ ...i, rollout });
    expect(cond(s, ConditionType.Ready)?.status).toBe('True');
    expect(s.rollout).toEqual({ state: 'UpToDate', desired: i.desiredPodHash, current: i.desiredPodHash, upToDate: true, since: T1 });
    const evl2 = { ...evl, status: s };
    const next = decideRollout(input({ desired: { template: i.desiredPodHash! }, pod: { uid: 'pod-2', template: i.desiredPodHash!, terminating: false, ready: true }, server: { bootId: 'boot-2' }, recorded: s.rollout, now: '2026-11-22T07:00:00Z' }));
    expect(computeStatus({ ...i, evl: evl2, rollout: next, now: new Date('2026-11-22T07:00:00Z') })).toEqual(s);
  });
});
