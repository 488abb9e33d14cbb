import { jsonEqual } from '../../../src/common/json.ts';
import { describe, expect, it } from 'vitest';
import { EventLogStatusSchema, type EventLog, type EventLogStatus } from '../../../src/api/eventlog.ts';
import { kstatusOf } from '../../support/kstatus.ts';
import { SPEC_HASH_ANNOTATION } from '../../../src/decisions/labels.ts';
import type { ServerStatus } from '../../../src/decisions/server-status.ts';
import {
  computeStatus,
  countersRefreshDueIn,
  pollTimeoutTolerated,
  statusChanged,
  type StatusInput,
} from '../../../src/decisions/status.ts';
import { NOW, at, clone, healthy, livePod, makeEvl, serverStatus } from './fixtures.ts';

/** The next reconcile: the EventLog now carries `status`. */
function withStatus(input: StatusInput, status: EventLogStatus): EventLog {
  return { ...(input.evl as EventLog), status };
}

const cond = (s: EventLogStatus, type: string) => s.conditions?.find((c) => c.type === type);
const summary = (s: EventLogStatus) => Object.fromEntries((s.conditions ?? []).map((c) => [c.type, `${c.status}/${c.reason}`]));

function checkInvariants(s: EventLogStatus, generation: number): void {
  expect(EventLogStatusSchema.parse(s)).toEqual(s);
  expect(JSON.parse(JSON.stringify(s))).toEqual(s);
  expect(s.observedGeneration).toBe(generation);
  for (const c of s.conditions ?? []) expect(c.observedGeneration).toBe(generation);
  expect(s.conditions?.map((c) => c.type)).toEqual(['Ready', 'Reconciling', 'Stalled', 'Recovered', 'Drifted']);
  if (cond(s, 'Ready')?.status === 'True') {
    expect(cond(s, 'Reconciling')?.status).toBe('False');
    expect(cond(s, 'Stalled')?.status).toBe('False');
  }
  if (cond(s, 'Stalled')?.status === 'True') expect(cond(s, 'Reconciling')?.status).toBe('False');
}

describe('computeStatus: a healthy log', () => {
  const input = healthy();
  const s = computeStatus(input);

  it('is Ready with the full structured status', async () => {
    checkInvariants(s, 1);
    expect(summary(s)).toEqual({
      Ready: 'True/LogAvailable',
      Reconciling: 'False/Reconciled',
      Stalled: 'False/NotStalled',
      Recovered: 'True/Clean',
      Drifted: 'False/NoDrift',
    });
    expect(s.phase).toBe('Ready');
    expect(s.endpoint).toBe('http://orders.shop.svc:8080');
    expect(s.pod).toEqual({ name: 'orders-0', uid: 'live-uid', phase: 'Running', ready: true, restarts: 0, bootId: 'boot-1', startedAt: '2026-11-22T04:59:00.000Z', ip: '127.1.0.7' });
    expect(s.storage).toEqual({ pvcName: 'orders-data', storageClassName: 'eventlog-local', phase: 'Bound', requested: '1Gi', capacity: '1Gi', resizing: false });
    expect(s.recovery).toEqual({
      lastOutcome: 'Clean',
      at: '2026-11-22T04:59:00Z',
      durationMs: 12,
      recordsRecovered: 10,
      bytesTruncated: 0,
      history: [{ bootId: 'boot-1', outcome: 'Clean', at: '2026-11-22T04:59:00Z', durationMs: 12, recordsRecovered: 10, bytesTruncated: 0 }],
    });
    expect(s.drift).toEqual({ detected: false });
    expect(s.log).toEqual({ records: 10, bytes: 1000, lastSequence: 10, updatedAt: '2026-11-22T05:00:00Z' });
    expect((await kstatusOf(asEventLog(1, s))).status).toBe('Current');
  });

  it('a steady state changes nothing (zero writes), even after a JSON round trip', () => {
    const again = computeStatus({ ...input, evl: withStatus(input, JSON.parse(JSON.stringify(s))), now: at(300) });
    expect(statusChanged(s, again)).toBe(false);
    expect(again).toEqual(s);
  });

  it('reports the token Secret when configured', () => {
    expect(computeStatus({ ...input, tokenSecret: { name: 'orders-token', key: 'token' } }).tokenSecret).toEqual({ name: 'orders-token', key: 'token' });
  });
});

type Mutate = (i: ReturnType<typeof healthy>) => void;
const waiting = (reason: string, message = '', restartCount = 0): Mutate => (i) => {
  i.pod.status.containerStatuses[0] = {
    name: 'server',
    ready: false,
    restartCount,
    state: { waiting: { reason, message } },
    lastState: restartCount > 0 ? { terminated: { exitCode: 1, reason: 'Error', message: '{"state":"failed","bootId":"b0","error":"fsync failed: EIO"}', finishedAt: '2026-11-22T04:58:00Z' } } : {},
  };
  i.pod.status.conditions[1].status = 'False';
  i.server = { ok: false, error: 'Unreachable', message: 'connect ECONNREFUSED 127.1.0.7:8080' };
};
const server = (over: Partial<ServerStatus>): Mutate => (i) => {
  i.server = { ok: true, status: serverStatus(over) };
};
const CORRUPTION = { id: 'c0ffee', segment: 'segments/1.seg', offset: 4096, reason: 'checksum mismatch' };
const corruptRecovery = { outcome: 'CorruptionDetected' as const, startedAt: '2026-11-22T04:59:00.000Z', durationMs: 5, recordsRecovered: 7, bytesTruncated: 0, corruption: CORRUPTION };

describe('computeStatus: Ready reasons, Stalled and Reconciling', () => {
  const cases: [string, Mutate, Record<string, string>, string][] = [
    ['deleting', (i) => (i.evl = { ...i.evl, metadata: { ...i.evl.metadata, deletionTimestamp: '2026-11-22T04:00:00Z' } }), { Ready: 'False/Deleting', Reconciling: 'True/Deleting' }, 'Terminating'],
    ['PVC missing', (i) => ((i as StatusInput).pvc = undefined), { Ready: 'False/StorageNotBound', Reconciling: 'True/Provisioning' }, 'Provisioning'],
    ['PVC pending', (i) => (i.pvc.status.phase = 'Pending'), { Ready: 'False/StorageNotBound', Reconciling: 'True/Progressing', Stalled: 'False/NotStalled' }, 'Provisioning'],
    ['PVC terminating', (i) => (i.pvc.metadata.deletionTimestamp = '2026-11-22T04:00:00Z'), { Ready: 'False/StorageNotBound', Reconciling: 'True/WaitingForPVCDeletion' }, 'Provisioning'],
    ['StorageClass missing', (i) => ((i.pvc.status.phase = 'Pending'), (i.storageClass = { name: 'fast', found: false })), { Ready: 'False/StorageClassNotFound', Stalled: 'True/StorageClassNotFound', Reconciling: 'False/Stalled' }, 'Stalled'],
    ['PVC lost', (i) => (i.pvc.status.phase = 'Lost'), { Ready: 'False/StorageNotBound', Stalled: 'True/StorageLost' }, 'Stalled'],
    ['pod missing', (i) => ((i as StatusInput).pod = undefined), { Ready: 'False/PodPending', Reconciling: 'True/Provisioning' }, 'Provisioning'],
    ['pod terminating', (i) => (i.pod.metadata.deletionTimestamp = '2026-11-22T04:00:00Z'), { Ready: 'False/PodPending', Reconciling: 'True/RecreatingPod' }, 'Provisioning'],
    ['pod unschedulable', (i) => ((i.pod.status = { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: 'persistentvolumeclaim "orders-data" not bound' }] }), (i.server = { ok: false, error: 'NoPodIP', message: 'no pod IP' })), { Ready: 'False/PodPending', Reconciling: 'True/Progressing' }, 'Provisioning'],
    ['container creating', waiting('ContainerCreating'), { Ready: 'False/PodNotReady', Stalled: 'False/NotStalled' }, 'Provisioning'],
    ['crash loop (first restarts)', waiting('CrashLoopBackOff', 'back-off 10s', 1), { Ready: 'False/ContainerCrashLooping', Stalled: 'False/NotStalled', Reconciling: 'True/Progressing' }, 'Provisioning'],
    ['crash loop the operator cannot fix', waiting('CrashLoopBackOff', 'back-off 40s', 5), { Ready: 'False/ContainerCrashLooping', Stalled: 'True/ContainerCrashLooping', Reconciling: 'False/Stalled' }, 'Stalled'],
    ['image cannot be pulled', waiting('ImagePullBackOff', 'Back-off pulling image "evil"'), { Ready: 'False/PodPending', Stalled: 'True/ImagePullFailed' }, 'Stalled'],
    ['server recovering', server({ state: 'recovering', recovery: null }), { Ready: 'False/Recovering', Recovered: 'Unknown/RecoveryPending', Reconciling: 'True/Progressing' }, 'Recovering'],
    ['server unreachable', (i) => (i.server = { ok: false, error: 'Timeout', message: 'no answer within 2000 ms' }), { Ready: 'False/ServerUnreachable', Recovered: 'Unknown/RecoveryPending' }, 'Provisioning'],
    ['server not polled', (i) => ((i as StatusInput).server = undefined), { Ready: 'False/ServerUnreachable' }, 'Provisioning'],
    ['corruption', server({ state: 'corrupt', recovery: corruptRecovery }), { Ready: 'False/CorruptionDetected', Stalled: 'True/CorruptionDetected', Recovered: 'False/CorruptionDetected', Reconciling: 'False/Stalled' }, 'Stalled'],
    ['storage failure', server({ state: 'failed' }), { Ready: 'False/WritesRefused' }, 'Provisioning'],
    ['pod not ready yet (kubelet lags)', (i) => (i.pod.status.conditions[1].status = 'False'), { Ready: 'False/PodNotReady', Reconciling: 'True/Progressing' }, 'Provisioning'],
    ['kubelet says ready, server says recovering (live signal wins)', server({ state: 'recovering', recovery: null }), { Ready: 'False/Recovering' }, 'Recovering'],
    ['rollout pending', (i) => (i.desiredPodHash = 'newhash'), { Ready: 'False/Progressing', Reconciling: 'True/Progressing', Stalled: 'False/NotStalled' }, 'Provisioning'],
    ['storage resizing', (i) => (i.evl = makeEvl({ storage: { size: '2Gi' } })), { Ready: 'False/Progressing', Reconciling: 'True/ResizingStorage' }, 'Provisioning'],
    ['storage not expandable', (i) => ((i.evl = makeEvl({ storage: { size: '2Gi' } })), (i.storageClass = { name: 'eventlog-local', found: true, allowVolumeExpansion: false })), { Ready: 'False/Stalled', Stalled: 'True/StorageNotExpandable', Reconciling: 'False/Stalled' }, 'Stalled'],
    ['spec cannot work', (i) => (i.specError = 'podTemplate.affinity is rejected by the Pod API: ...'), { Ready: 'False/Stalled', Stalled: 'True/InvalidSpec' }, 'Stalled'],
    ['suspended', (i) => (i.evl = makeEvl({ suspend: true })), { Ready: 'True/LogAvailable', Reconciling: 'False/Suspended' }, 'Suspended'],
  ];

  it.each(cases)('%s', (_name, mutate, expected, phase) => {
    const input = healthy();
    mutate(input);
    const s = computeStatus(input);
    checkInvariants(s, 1);
    expect(summary(s)).toMatchObject(expected);
    expect(s.phase).toBe(phase);
    for (const c of s.conditions ?? []) expect(c.message.length).toBeGreaterThan(0);
  });

  it('messages say what to do', () => {
    const i = healthy();
    server({ state: 'corrupt', recovery: corruptRecovery })(i);
    const s = computeStatus(i);
    expect(cond(s, 'Stalled')?.message).toContain('eventlog.dev/approve-repair=c0ffee');
    expect(s.recovery?.corruption).toEqual(CORRUPTION);

    const crash = healthy();
    waiting('CrashLoopBackOff', 'back-off', 5)(crash);
    const c = computeStatus(crash);
    expect(cond(c, 'Stalled')?.message).toContain('exit code 1, Error, {"state":"failed"');
    expect(c.pod?.restarts).toBe(5);
    expect(c.pod?.lastTermination).toEqual({ exitCode: 1, reason: 'Error', message: '{"state":"failed","bootId":"b0","error":"fsync failed: EIO"}', finishedAt: '2026-11-22T04:58:00Z' });

    const sc = healthy();
    sc.storageClass = { name: 'fast', found: false };
    expect(cond(computeStatus(sc), 'Stalled')?.message).toMatch(/StorageClass fast does not exist: create it/);
  });

  it('a wrong repair approval is refused in the Stalled message; a pending approved repair is progress', () => {
    const i = healthy(makeEvl({}, { annotations: { 'eventlog.dev/approve-repair': 'deadbeef' } }));
    server({ state: 'corrupt', recovery: corruptRecovery })(i);
    expect(cond(computeStatus(i), 'Stalled')?.message).toMatch(/approval "deadbeef" does not match this corruption and was refused/);

    i.repair = { corruptionId: 'c0ffee', approvedAt: '2026-11-22T05:00:00Z', result: 'Pending' };
    const s = computeStatus(i);
    expect(summary(s)).toMatchObject({ Ready: 'False/CorruptionDetected', Stalled: 'False/NotStalled', Reconciling: 'True/Progressing' });
    expect(s.recovery?.repair).toEqual(i.repair);

    i.repair = { ...i.repair, result: 'Failed', message: 'EACCES' };
    expect(summary(computeStatus(i))).toMatchObject({ Stalled: 'True/RepairFailed' });
  });

  it('a repaired log is Recovered/Repaired', () => {
    const i = healthy();
    server({ repair: { corruptionId: 'c0ffee', movedTo: '/data/repair/x', bytesMoved: 10 } })(i);
    expect(summary(computeStatus(i))).toMatchObject({ Recovered: 'True/Repaired', Ready: 'True/LogAvailable' });
  });

  it('recovery from the termination message when the server is not answering', () => {
    const i = healthy();
    waiting('CrashLoopBackOff', 'back-off', 2)(i);
    i.pod.status.containerStatuses[0].lastState.terminated.message = JSON.stringify({ state: 'corrupt', bootId: 'b9', recovery: corruptRecovery });
    const s = computeStatus(i);
    expect(s.recovery?.history?.[0]).toMatchObject({ bootId: 'b9', outcome: 'CorruptionDetected', corruptionId: 'c0ffee' });
    expect(summary(s)).toMatchObject({ Ready: 'False/CorruptionDetected', Stalled: 'True/CorruptionDetected', Recovered: 'False/CorruptionDetected' });
  });

  it('a crash loop stays reported (no Stalled flapping) while the restarted container runs but the server does not answer', () => {
    const looping = healthy();
    waiting('CrashLoopBackOff', 'back-off 2s', 4)(looping);
    const first = computeStatus(looping);
    expect(summary(first)).toMatchObject({ Ready: 'False/ContainerCrashLooping', Stalled: 'True/ContainerCrashLooping' });
    // The back-off is over: the container runs again and has not failed yet.
    const restarted = healthy(withStatus(looping, first));
    restarted.pod.status.containerStatuses[0] = { ...looping.pod.status.containerStatuses[0], restartCount: 5, state: { running: { startedAt: '2026-11-22T04:59:30Z' } } };
    restarted.pod.status.conditions[1].status = 'False';
    restarted.server = { ok: false, error: 'Unreachable', message: 'connect ECONNREFUSED 127.1.0.7:8080' };
    const second = computeStatus(restarted);
    expect(summary(second)).toMatchObject({ Ready: 'False/ContainerCrashLooping', Stalled: 'True/ContainerCrashLooping', Reconciling: 'False/Stalled' });
    expect(cond(second, 'Stalled')?.lastTransitionTime).toBe(cond(first, 'Stalled')?.lastTransitionTime);
    expect(cond(second, 'Stalled')?.message).toContain('5 restarts');
    // The server answers: the crash loop is over.
    const serving = healthy(withStatus(restarted, second));
    serving.pod.status.containerStatuses[0] = { ...restarted.pod.status.containerStatuses[0], ready: true };
    expect(summary(computeStatus(serving))).toMatchObject({ Ready: 'True/LogAvailable', Stalled: 'False/NotStalled' });
    // Without a crash loop reported before, a running container the poll cannot reach is just unreachable.
    const fresh = healthy();
    fresh.pod.status.containerStatuses[0] = { ...restarted.pod.status.containerStatuses[0] };
    fresh.server = restarted.server;
    expect(summary(computeStatus(fresh))).toMatchObject({ Ready: 'False/ServerUnreachable', Stalled: 'False/NotStalled' });
  });

  it('one timed-out poll leaves a Ready log as it was; a second in a row, a refused connection or a pod not Ready do not', () => {
    const ready = computeStatus(healthy());
    expect(summary(ready).Ready).toBe('True/LogAvailable');
    const slow = healthy(withStatus(healthy() as StatusInput, ready));
    slow.server = { ok: false, error: 'Timeout', message: 'no answer within 2000 ms' };
    slow.pollTimeoutsInARow = 1;
    expect(pollTimeoutTolerated(slow as StatusInput)).toBe(true);
    const kept = computeStatus(slow as StatusInput);
    expect(summary(kept)).toEqual(summary(ready));
    expect(statusChanged(ready, kept)).toBe(false);

    slow.pollTimeoutsInARow = 2;
    expect(pollTimeoutTolerated(slow as StatusInput)).toBe(false);
    expect(summary(computeStatus(slow as StatusInput)).Ready).toBe('False/ServerUnreachable');
    // Tolerating more is an option.
    expect(summary(computeStatus({ ...(slow as StatusInput), options: { ...slow.options, pollTimeoutsTolerated: 2 } })).Ready).toBe('True/LogAvailable');

    const refused = healthy(withStatus(healthy() as StatusInput, ready));
    refused.server = { ok: false, error: 'Unreachable', message: 'connect ECONNREFUSED' };
    refused.pollTimeoutsInARow = 0;
    expect(summary(computeStatus(refused as StatusInput)).Ready).toBe('False/ServerUnreachable');

    const podDown = healthy(withStatus(healthy() as StatusInput, ready));
    podDown.server = slow.server;
    podDown.pollTimeoutsInARow = 1;
    podDown.pod.status.conditions = [{ type: 'Ready', status: 'False' }];
    expect(summary(computeStatus(podDown as StatusInput)).Ready).not.toBe('True/LogAvailable');
  });

  it('an old termination message is ignored while the server container runs', () => {
    const i = healthy();
    i.server = { ok: false, error: 'Timeout', message: 'no answer' };
    i.pod.status.containerStatuses[0].lastState = { terminated: { exitCode: 137, message: JSON.stringify({ state: 'corrupt', bootId: 'b0', recovery: corruptRecovery }) } };
    const s = computeStatus(i);
    expect(summary(s)).toMatchObject({ Ready: 'False/ServerUnreachable', Stalled: 'False/NotStalled' });
    expect(s.recovery).toBeUndefined();
    expect(s.pod?.lastTermination).toEqual({ exitCode: 137, message: expect.stringContaining('corrupt') });
  });

  it('Degraded after having been Ready; RecreatingPod when the pod existed', () => {
    const i = healthy();
    const ok = computeStatus(i);
    const next = { ...i, evl: withStatus(i, ok), server: { ok: false as const, error: 'Unreachable' as const, message: 'refused' }, now: at(10) };
    const s = computeStatus(next);
    expect(s.phase).toBe('Degraded');
    expect(cond(s, 'Ready')?.lastTransitionTime).toBe('2026-11-22T05:00:10Z');
    // The last known recovery and counters are kept while unreachable.
    expect(cond(s, 'Recovered')?.reason).toBe('Clean');
    expect(s.log).toEqual(ok.log);
    const gone = computeStatus({ ...i, evl: withStatus(i, ok), pod: undefined, now: at(10) });
    expect(summary(gone)).toMatchObject({ Ready: 'False/PodPending', Reconciling: 'True/RecreatingPod' });
  });

  it('Pending before anything exists', () => {
    const i = healthy();
    const s = computeStatus({ evl: i.evl, now: NOW });
    expect(s.phase).toBe('Pending');
    expect(cond(s, 'Reconciling')).toMatchObject({ status: 'True', reason: 'Provisioning', message: 'creating PersistentVolumeClaim orders-data, Service orders, pod orders-0' });
  });
});

describe('computeStatus: generations (kstatus)', () => {
  it('a new generation is reflected in observedGeneration and every condition', async () => {
    const i = healthy();
    const s1 = computeStatus(i);
    const evl2: EventLog = { ...makeEvl({ durability: 'None' }, { generation: 2 }), status: s1 };
    // The old status is stale for generation 2.
    expect((await kstatusOf(asEventLog(2, s1))).status).toBe('InProgress');
    const pod = livePod(evl2); // rolled out already
    const s2 = computeStatus({ ...i, evl: evl2, pod, desiredPodHash: pod.metadata.annotations[SPEC_HASH_ANNOTATION], now: at(5) });
    checkInvariants(s2, 2);
    expect((await kstatusOf(asEventLog(2, s2))).status).toBe('Current');
    // Ready stayed True: lastTransitionTime does not move.
    expect(cond(s2, 'Ready')?.lastTransitionTime).toBe('2026-11-22T05:00:00Z');
  });
});

describe('computeStatus: log counters are rate limited', () => {
  const i = healthy();
  const s1 = computeStatus(i);
  const busy = (seconds: number, total: number, status = s1): StatusInput => ({
    ...i,
    evl: withStatus(i, status),
    server: { ok: true, status: serverStatus({ stats: { total, bytes: total * 100, lastSequence: total } }) },
    now: at(seconds),
  });

  it('counters alone wait for the interval', () => {
    const early = busy(10, 50);
    const s = computeStatus(early);
    expect(statusChanged(s1, s)).toBe(false);
    expect(countersRefreshDueIn(early, s)).toBe(20_000);
    const due = busy(30, 60);
    const s2 = computeStatus(due);
    expect(s2.log).toEqual({ records: 60, bytes: 6000, lastSequence: 60, updatedAt: '2026-11-22T05:00:30Z' });
    expect(countersRefreshDueIn(due, s2)).toBeUndefined();
  });

  it('the interval is configurable', () => {
    const s = computeStatus({ ...busy(10, 50), options: { countersMinIntervalMs: 5000 } });
    expect(s.log?.records).toBe(50);
  });

  it('any other change writes at once and brings the counters along', () => {
    const input = busy(10, 50);
    input.pod = clone(i.pod);
    (input.pod as any).status.containerStatuses[0].restartCount = 1;
    const s = computeStatus(input);
    expect(s.pod?.restarts).toBe(1);
    expect(s.log).toEqual({ records: 50, bytes: 5000, lastSequence: 50, updatedAt: '2026-11-22T05:00:10Z' });
  });
});

describe('computeStatus: recovery history', () => {
  const boot = (n: number, outcome: 'Clean' | 'TornTailTruncated' = 'Clean') =>
    serverStatus({ bootId: `boot-${n}`, recovery: { outcome, startedAt: new Date(NOW.getTime() + n * 60_000).toISOString(), durationMs: 7, recordsRecovered: n, bytesTruncated: outcome === 'Clean' ? 0 : 17 } });

  it('one entry per boot, newest first, at most 10', () => {
    const i = healthy();
    let status: EventLogStatus | undefined;
    for (let n = 1; n <= 12; n++) {
      for (let repeat = 0; repeat < 2; repeat++) {
        status = computeStatus({ ...i, evl: withStatus(i, status ?? {}), server: { ok: true, status: boot(n, n % 3 === 0 ? 'TornTailTruncated' : 'Clean') }, now: at(n * 60 + repeat) });
      }
    }
    const h = status!.recovery!.history!;
    expect(h.map((e) => e.bootId)).toEqual(['boot-12', 'boot-11', 'boot-10', 'boot-9', 'boot-8', 'boot-7', 'boot-6', 'boot-5', 'boot-4', 'boot-3']);
    expect(status!.recovery).toMatchObject({ lastOutcome: 'TornTailTruncated', bytesTruncated: 17, recordsRecovered: 12 });
    expect(cond(status!, 'Recovered')?.reason).toBe('TornTailTruncated');
  });

  it('the same boot is never recorded twice (a repair re-runs recovery in place)', () => {
    const i = healthy();
    server({ state: 'corrupt', recovery: corruptRecovery, bootId: 'b1' })(i);
    const s1 = computeStatus(i);
    server({ bootId: 'b1', repair: { corruptionId: 'c0ffee' } })(i);
    const s2 = computeStatus({ ...i, evl: withStatus(i, s1), now: at(60) });
    expect(s2.recovery?.history).toHaveLength(1);
    expect(s2.recovery?.history?.[0]).toMatchObject({ bootId: 'b1', outcome: 'Clean' });
    expect(s2.recovery?.corruption).toBeUndefined();
  });
});

describe('computeStatus: drift', () => {
  const item = { kind: 'Service' as const, name: 'orders', path: 'spec.ports[name=http].port', expected: '8080', actual: '80' };

  it('Report: listed with firstSeen, stable across reconciles', () => {
    const i = healthy(makeEvl({ driftPolicy: 'Report' }));
    i.drift = { items: [item], outcome: 'none' };
    const s1 = computeStatus(i);
    checkInvariants(s1, 1);
    expect(summary(s1)).toMatchObject({ Drifted: 'True/DriftDetected', Ready: 'True/LogAvailable', Reconciling: 'False/Reconciled' });
    expect(cond(s1, 'Drifted')?.message).toBe('Service orders spec.ports[name=http].port: left in place (driftPolicy Report)');
    expect(s1.drift).toEqual({ detected: true, items: [{ ...item, firstSeen: '2026-11-22T05:00:00Z' }], lastDetectedAt: '2026-11-22T05:00:00Z' });
    const s2 = computeStatus({ ...i, evl: withStatus(i, s1), now: at(120) });
    expect(statusChanged(s1, s2)).toBe(false);
    // A second item appears: first one keeps firstSeen.
    const item2 = { kind: 'Pod' as const, name: 'orders-0', path: 'spec.containers[name=server].image', expected: 'eventlog:dev', actual: 'x' };
    const s3 = computeStatus({ ...i, evl: withStatus(i, s1), drift: { items: [item, item2], outcome: 'none' }, now: at(180) });
    expect(s3.drift?.items?.map((x) => x.firstSeen)).toEqual(['2026-11-22T05:00:00Z', '2026-11-22T05:03:00Z']);
    expect(s3.drift?.lastDetectedAt).toBe('2026-11-22T05:03:00Z');
  });

  it('Correct: corrected items are counted, Drifted False/DriftCorrected sticks until new drift', () => {
    const i = healthy();
    i.drift = { items: [item, { kind: 'Service', name: 'orders', path: '.', expected: 'present', actual: 'deleted' }], outcome: 'corrected' };
    const s1 = computeStatus(i);
    expect(summary(s1)).toMatchObject({ Drifted: 'False/DriftCorrected', Ready: 'True/LogAvailable' });
    expect(cond(s1, 'Drifted')?.message).toBe('put back: Service orders spec.ports[name=http].port, Service orders deleted');
    expect(s1.drift).toEqual({ detected: false, lastDetectedAt: '2026-11-22T05:00:00Z', lastCorrectedAt: '2026-11-22T05:00:00Z', corrections: 2 });
    const s2 = computeStatus({ ...i, evl: withStatus(i, s1), drift: { items: [], outcome: 'none' }, now: at(60) });
    expect(statusChanged(s1, s2)).toBe(false);
  });

  it('correction failed, correcting (pod recreate), suspended', () => {
    const i = healthy();
    expect(summary(computeStatus({ ...i, drift: { items: [item], outcome: 'failed', error: 'forbidden' } }))).toMatchObject({ Drifted: 'True/CorrectionFailed' });
    expect(summary(computeStatus({ ...i, drift: { items: [item], outcome: 'correcting' } }))).toMatchObject({ Drifted: 'True/DriftDetected', Reconciling: 'True/CorrectingDrift', Ready: 'False/Progressing' });
    const sus = computeStatus({ ...healthy(makeEvl({ suspend: true })), drift: { items: [item], outcome: 'none' } });
    expect(cond(sus, 'Drifted')?.message).toMatch(/left in place \(suspended\)/);
  });

  it('items are capped at 32', () => {
    const many = Array.from({ length: 40 }, (_, n) => ({ ...item, path: `metadata.labels.l${n}` }));
    expect(computeStatus({ ...healthy(), drift: { items: many, outcome: 'none' } }).drift?.items).toHaveLength(32);
  });
});

describe('statusChanged / jsonEqual', () => {
  it('ignores key order and undefined keys, nothing else', () => {
    expect(jsonEqual({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1, d: undefined })).toBe(true);
    expect(jsonEqual({ a: [1, 2] }, { a: [2, 1] })).toBe(false);
    expect(statusChanged(undefined, {})).toBe(false);
    expect(statusChanged({ phase: 'Ready' }, { phase: 'Degraded' })).toBe(true);
  });
});

/** The object kstatus reads: an EventLog at `generation` carrying `status`. */
function asEventLog(generation: number, status: unknown) {
  return { apiVersion: 'eventlog.dev/v1alpha1', kind: 'EventLog', metadata: { name: 'orders', namespace: 'shop', generation }, status };
}
