import { describe, expect, it } from 'vitest';
import type { EventLog, EventLogStatus } from '../../../src/api/eventlog.ts';
import { kstatusOf } from '../../support/kstatus.ts';
import { desiredPod, desiredPvc, desiredService } from '../../../src/decisions/desired.ts';
import { SPEC_HASH_ANNOTATION } from '../../../src/decisions/labels.ts';
import type { ServerStatus } from '../../../src/decisions/server-status.ts';
import { computeStatus, statusChanged, type StatusInput } from '../../../src/decisions/status.ts';
import {
  addUsageSample,
  desiredRequest,
  nearlyFull,
  nextSize,
  planGrowth,
  projectFullAt,
  resizeState,
  restartForResize,
  storageUsage,
  USAGE_SAMPLE_MIN_GAP_MS,
  USAGE_WINDOW_MS,
  type StorageUsage,
} from '../../../src/decisions/storage.ts';
import { NOW, OPTS, asLive, at, makeEvl, serverStatus } from './fixtures.ts';

const MiB = 1024 * 1024;
const usage = (usedPercent: number, fs = 64 * MiB): StorageUsage => ({ filesystemBytes: fs, usedBytes: Math.round((fs * usedPercent) / 100), availableBytes: fs - Math.round((fs * usedPercent) / 100), usedPercent, reserveBytes: MiB });
const boundPvc = (request: string, capacity = request, conditions: Array<{ type: string; status: string }> = []) => ({
  spec: { resources: { requests: { storage: request } } },
  status: { phase: 'Bound', capacity: { storage: capacity }, conditions },
});
const auto = (over: Record<string, unknown> = {}) => makeEvl({ storage: { size: '64Mi', autoGrow: { maxSize: '256Mi', ...over } } as never });

describe('desiredRequest: the PVC is never shrunk', () => {
  it('is the larger of spec.storage.size and the live request', () => {
    expect(desiredRequest('64Mi', undefined)).toBe('64Mi');
    expect(desiredRequest('64Mi', '96Mi')).toBe('96Mi');
    expect(desiredRequest('128Mi', '96Mi')).toBe('128Mi');
    expect(desiredPvc(makeEvl({ storage: { size: '64Mi' } }), { pvcRequest: '100663296' }).spec.resources.requests.storage).toBe('100663296');
  });
});

describe('nextSize', () => {
  it('adds a percentage or a quantity, rounds up to a MiB, never past maxSize', () => {
    expect(nextSize('64Mi', '50%', '1Gi')).toBe('96Mi');
    expect(nextSize('64Mi', '32Mi', '1Gi')).toBe('96Mi');
    expect(nextSize('768Mi', '50%', '1Gi')).toBe('1Gi');
    expect(nextSize('100000000', '1%', '1Gi')).toBe('97Mi'); // 101,000,000 bytes rounded up
    expect(nextSize('512Mi', '100%', '1Gi')).toBe('1Gi');
  });
});

describe('planGrowth', () => {
  it('grows at usedPercent, or when full, from the capacity', () => {
    expect(planGrowth({ evl: auto(), pvc: boundPvc('64Mi'), usage: usage(79), full: false, allowVolumeExpansion: true })).toEqual({ kind: 'none' });
    const g = planGrowth({ evl: auto(), pvc: boundPvc('64Mi'), usage: usage(80), full: false, allowVolumeExpansion: true });
    expect(g).toMatchObject({ kind: 'grow', from: '64Mi', to: '96Mi' });
    expect(planGrowth({ evl: auto(), pvc: boundPvc('64Mi'), usage: usage(10), full: true, allowVolumeExpansion: true })).toMatchObject({ kind: 'grow', reason: expect.stringMatching(/^full/) });
  });
  it('waits while an expansion is in progress', () => {
    expect(planGrowth({ evl: auto(), pvc: boundPvc('96Mi', '64Mi'), usage: usage(99), full: true, allowVolumeExpansion: true })).toEqual({ kind: 'inProgress', state: 'Resizing' });
    const pending = boundPvc('96Mi', '64Mi', [{ type: 'FileSystemResizePending', status: 'True' }]);
    expect(planGrowth({ evl: auto(), pvc: pending, usage: usage(99), full: true, allowVolumeExpansion: true })).toEqual({ kind: 'inProgress', state: 'FileSystemResizePending' });
  });
  it('says why a full log cannot grow: not configured, maxSize reached, class refuses expansion', () => {
    const plain = makeEvl({ storage: { size: '64Mi' } });
    expect(planGrowth({ evl: plain, pvc: boundPvc('64Mi'), usage: usage(99), full: true, allowVolumeExpansion: true })).toMatchObject({ kind: 'blocked', block: 'NotConfigured' });
    expect(planGrowth({ evl: plain, pvc: boundPvc('64Mi'), usage: usage(95), full: false, allowVolumeExpansion: true })).toEqual({ kind: 'none' });
    expect(planGrowth({ evl: auto(), pvc: boundPvc('256Mi'), usage: usage(99), full: true, allowVolumeExpansion: true })).toMatchObject({ kind: 'blocked', block: 'MaxSizeReached' });
    expect(planGrowth({ evl: auto(), pvc: boundPvc('64Mi'), usage: usage(99), full: true, allowVolumeExpansion: false })).toMatchObject({ kind: 'blocked', block: 'ExpansionNotAllowed' });
  });
});

describe('resizeState', () => {
  it('reads the PVC: request above capacity, Resizing, FileSystemResizePending', () => {
    expect(resizeState(boundPvc('64Mi'))).toBeUndefined();
    expect(resizeState(boundPvc('96Mi', '64Mi'))).toBe('Resizing');
    expect(resizeState(boundPvc('96Mi', '96Mi', [{ type: 'FileSystemResizePending', status: 'True' }]))).toBe('FileSystemResizePending');
  });
});

describe('projection and samples', () => {
  it('projects when available space reaches the reserve at the observed rate; none when not growing', () => {
    const u = usage(50);
    const t0 = NOW.getTime();
    // 1 MiB per minute; 31 MiB available above the 1 MiB reserve -> 31 minutes after the last sample.
    const samples = [{ atMs: t0, usedBytes: u.usedBytes - MiB }, { atMs: t0 + 60_000, usedBytes: u.usedBytes }];
    expect(projectFullAt(samples, u)?.toISOString()).toBe(new Date(t0 + 60_000 + 31 * 60_000).toISOString());
    expect(projectFullAt([samples[0]!, { atMs: t0 + 60_000, usedBytes: u.usedBytes - MiB }], u)).toBeUndefined();
    expect(projectFullAt([samples[0]!, { atMs: t0 + 1_000, usedBytes: u.usedBytes }], u)).toBeUndefined(); // window too short
  });
  it('keeps one sample per gap, the last window only, and starts afresh when usage drops', () => {
    let list = addUsageSample([], { atMs: 0, usedBytes: 10 });
    list = addUsageSample(list, { atMs: USAGE_SAMPLE_MIN_GAP_MS - 1, usedBytes: 11 });
    expect(list).toHaveLength(1);
    for (let t = USAGE_SAMPLE_MIN_GAP_MS; t <= USAGE_WINDOW_MS * 2; t += USAGE_SAMPLE_MIN_GAP_MS) list = addUsageSample(list, { atMs: t, usedBytes: 10 + t });
    expect(list[list.length - 1]!.atMs - list[0]!.atMs).toBeLessThanOrEqual(USAGE_WINDOW_MS);
    expect(addUsageSample(list, { atMs: USAGE_WINDOW_MS * 3, usedBytes: 1 })).toEqual([{ atMs: USAGE_WINDOW_MS * 3, usedBytes: 1 }]);
  });
  it('nearlyFull has hysteresis: on at the threshold, off only 5 points below', () => {
    expect(nearlyFull(undefined, usage(84), 85)).toBe(false);
    expect(nearlyFull(undefined, usage(85), 85)).toBe(true);
    expect(nearlyFull({ nearlyFull: true }, usage(81), 85)).toBe(true);
    expect(nearlyFull({ nearlyFull: true }, usage(79), 85)).toBe(false);
  });
  it('reads usage from the server /status', () => {
    const st = serverStatus({ storage: { filesystemBytes: 100, usedBytes: 37, freeBytes: 63, reserveBytes: 2 } });
    expect(storageUsage(st)).toEqual({ filesystemBytes: 100, usedBytes: 37, availableBytes: 63, usedPercent: 37, reserveBytes: 2 });
    expect(storageUsage(serverStatus())).toBeUndefined();
  });
});

// ---- computeStatus with storage ----

function live(evl: EventLog, server: ServerStatus, pvcRequest?: string, capacity?: string): StatusInput {
  const pod = asLive(desiredPod(evl, OPTS));
  pod.status = {
    phase: 'Running',
    podIP: '127.1.0.7',
    conditions: [{ type: 'PodScheduled', status: 'True' }, { type: 'Ready', status: 'True' }],
    containerStatuses: [{ name: 'server', ready: true, restartCount: 0, started: true, state: { running: { startedAt: '2026-11-22T04:59:00Z' } } }],
  };
  const pvc = asLive(desiredPvc(evl, { ...(pvcRequest ? { pvcRequest } : {}) }));
  if (capacity) pvc.status.capacity = { storage: capacity };
  return {
    evl,
    pvc: pvc as never,
    pod: pod as never,
    service: asLive(desiredService(evl, OPTS)) as never,
    server: { ok: true, status: server },
    storageClass: { name: 'eventlog-local', found: true, allowVolumeExpansion: true },
    drift: { items: [], outcome: 'none' },
    desiredPodHash: pod.metadata.annotations[SPEC_HASH_ANNOTATION],
    now: NOW,
  };
}
const fsStatus = (state: ServerStatus['state'], usedPercent: number) =>
  serverStatus({ state, storage: { filesystemBytes: 64 * MiB, usedBytes: Math.round((64 * MiB * usedPercent) / 100), freeBytes: 64 * MiB - Math.round((64 * MiB * usedPercent) / 100), reserveBytes: MiB } });
const summary = (s: EventLogStatus) => Object.fromEntries((s.conditions ?? []).map((c) => [c.type, `${c.status}/${c.reason}`]));

describe('computeStatus: a full volume', () => {
  it('full without autoGrow: Ready=False/StorageFull and Stalled=True/StorageFull (kstatus Failed at once)', async () => {
    const evl = makeEvl({ storage: { size: '64Mi' } });
    const s = computeStatus(live(evl, fsStatus('full', 98), '64Mi', '64Mi'));
    expect(summary(s)).toMatchObject({ Ready: 'False/StorageFull', Stalled: 'True/StorageFull', Reconciling: 'False/Stalled' });
    expect(s.conditions?.find((c) => c.type === 'Stalled')?.message).toMatch(/spec.storage.autoGrow is not set/);
    expect(s.storage).toMatchObject({ usedPercent: 98, filesystemBytes: 64 * MiB, reserveBytes: MiB, nearlyFull: true });
    expect((await kstatusOf(asEventLog(1, s))).status).toBe('Failed');
  });
  it('full with autoGrow room: Ready=False/StorageFull, Reconciling=True/ResizingStorage, not Stalled (kstatus InProgress)', async () => {
    const evl = auto();
    const s = computeStatus(live(evl, fsStatus('full', 98), '64Mi', '64Mi'));
    expect(summary(s)).toMatchObject({ Ready: 'False/StorageFull', Stalled: 'False/NotStalled', Reconciling: 'True/ResizingStorage' });
    expect(s.conditions?.find((c) => c.type === 'Ready')?.message).toMatch(/growing the PVC from 64Mi to 96Mi/);
    expect((await kstatusOf(asEventLog(1, s))).status).toBe('InProgress');
  });
  it('a growth in flight is shown, recorded in history, and a larger PVC is capacity, not a shrink', () => {
    const evl = auto();
    const input = live(evl, fsStatus('ready', 70), '96Mi', '64Mi');
    input.growth = { from: '64Mi', to: '96Mi', at: '2026-11-22T05:00:00Z', reason: 'full' };
    const s = computeStatus(input);
    expect(summary(s)).toMatchObject({ Reconciling: 'True/ResizingStorage', Ready: 'False/Progressing' });
    expect(s.storage).toMatchObject({ requested: '96Mi', capacity: '64Mi', resizing: true, resizeStatus: 'Resizing', growth: [{ from: '64Mi', to: '96Mi' }] });
  });
  it('FileSystemResizePending says what to do', () => {
    const evl = auto();
    const input = live(evl, fsStatus('full', 98), '96Mi', '96Mi');
    (input.pvc as { status: { conditions: unknown[] } }).status.conditions = [{ type: 'FileSystemResizePending', status: 'True' }];
    const s = computeStatus(input);
    expect(summary(s)).toMatchObject({ Reconciling: 'True/FileSystemResizePending' });
    expect(s.conditions?.find((c) => c.type === 'Reconciling')?.message).toMatch(/restartPodForResize/);
  });
  it('usage figures alone are written at a bounded rate; crossing the warning threshold writes at once', () => {
    const evl = makeEvl({ storage: { size: '64Mi' } });
    const first = computeStatus(live(evl, fsStatus('ready', 40), '64Mi', '64Mi'));
    const evl2 = { ...evl, status: first };
    const later = live(evl2, fsStatus('ready', 41), '64Mi', '64Mi');
    later.now = at(5);
    later.options = { countersMinIntervalMs: 30_000 };
    expect(statusChanged(first, computeStatus(later))).toBe(false);
    later.now = at(31);
    expect(computeStatus(later).storage?.usedPercent).toBe(41);
    const warn = live(evl2, fsStatus('ready', 90), '64Mi', '64Mi');
    warn.now = at(5);
    warn.options = { countersMinIntervalMs: 30_000 };
    const w = computeStatus(warn);
    expect(w.storage).toMatchObject({ nearlyFull: true, usedPercent: 90 });
  });
});

describe('restartForResize', () => {
  const q = { resize: 'FileSystemResizePending' as const, allowed: true, podRunning: true, request: '96Mi', restartedFor: undefined };
  it('once per request, only for a running pod, only when allowed and pending', () => {
    expect(restartForResize(q)).toBe(true);
    expect(restartForResize({ ...q, restartedFor: '96Mi' })).toBe(false);
    expect(restartForResize({ ...q, restartedFor: '64Mi' })).toBe(true);
    expect(restartForResize({ ...q, podRunning: false })).toBe(false);
    expect(restartForResize({ ...q, allowed: false })).toBe(false);
    expect(restartForResize({ ...q, resize: 'Resizing' })).toBe(false);
  });
});

describe('storage Events', () => {
  const ready = (status: string, reason: string) => ({ type: 'Ready', status, reason, message: `${reason} message`, lastTransitionTime: '2026-11-22T05:00:00Z' });
  it('one Warning when a Ready log fills (NotReady), StorageFull when it was already not Ready; nearlyFull once; StorageGrown when the capacity arrives', async () => {
    const { transitionEvents } = await import('../../../src/decisions/events.ts');
    const reasons = (o: unknown, n: unknown) => transitionEvents(o as never, n as never).map((e) => e.reason);
    expect(reasons({ conditions: [ready('True', 'LogAvailable')] }, { conditions: [ready('False', 'StorageFull')] })).toEqual(['NotReady']);
    expect(reasons({ conditions: [ready('False', 'Progressing')] }, { conditions: [ready('False', 'StorageFull')] })).toEqual(['StorageFull']);
    expect(reasons({ storage: { nearlyFull: false } }, { storage: { nearlyFull: true, usedPercent: 90 } })).toEqual(['StorageNearlyFull']);
    expect(reasons({ storage: { nearlyFull: true } }, { storage: { nearlyFull: true } })).toEqual([]);
    const growth = [{ from: '64Mi', to: '96Mi', at: '2026-11-22T05:00:00Z', reason: 'full' }];
    expect(reasons({ storage: { capacity: '64Mi', growth } }, { storage: { capacity: '96Mi', growth } })).toEqual(['StorageGrown']);
    expect(reasons({ storage: { capacity: '64Mi' } }, { storage: { capacity: '64Mi', growth } })).toEqual([]);
  });
});

/** The object kstatus reads: an EventLog at `generation` carrying `status`. */
function asEventLog(generation: number, status: unknown) {
  return { apiVersion: 'eventlog.dev/v1alpha1', kind: 'EventLog', metadata: { name: 'orders', namespace: 'shop', generation }, status };
}

describe('computeStatus: autoGrow on a class that refuses expansion', () => {
  it('is Stalled=True/StorageNotExpandable at the threshold, before the log is full', () => {
    const evl = auto();
    const input = live(evl, fsStatus('ready', 85), '64Mi', '64Mi');
    input.storageClass = { name: 'eventlog-local-fixed', found: true, allowVolumeExpansion: false };
    const s = computeStatus(input);
    expect(s.conditions?.find((c) => c.type === 'Stalled')).toMatchObject({ status: 'True', reason: 'StorageNotExpandable' });
    expect(s.conditions?.find((c) => c.type === 'Stalled')?.message).toMatch(/StorageClass eventlog-local-fixed does not allow volume expansion/);
  });
});
