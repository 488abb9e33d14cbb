/**
 * The reconciler's plan decisions (src/decisions/plan.ts): per-object plan, drift
 * outcome, requeue; the loop itself is tested against the real control plane in
 * test/integration/operator.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { parseEventLog } from '../../../src/api/eventlog.ts';
import { desiredService } from '../../../src/decisions/desired.ts';
import { FIELD_MANAGER } from '../../../src/decisions/labels.ts';
import { combineDrift, existedBefore, nextRequeueMs, objectAction, planObject, WAIT_REQUEUE_MS } from '../../../src/decisions/plan.ts';

function evl() {
  const r = parseEventLog({
    apiVersion: 'eventlog.dev/v1alpha1',
    kind: 'EventLog',
    metadata: { name: 'orders', namespace: 'shop', uid: 'uid-1', generation: 1 },
    spec: { storage: { size: '1Gi' } },
  });
  if (!r.success) throw new Error(r.error);
  return r.data;
}

describe('planObject', () => {
  it('plans a create for a missing object, remembering whether it existed', () => {
    const d = desiredService(evl());
    expect(planObject('Service', d, undefined, false)).toEqual({ kind: 'Service', create: true, existedBefore: false, rollout: [], drift: [] });
    expect(planObject('Service', d, undefined, true).existedBefore).toBe(true);
  });

  it('splits differences into drift (another manager) and rollout (ours)', () => {
    const d = desiredService(evl());
    const live = structuredClone(d) as unknown as { spec: { ports: { port: number }[] }; metadata: Record<string, unknown> };
    live.spec.ports[0]!.port = 9090;
    live.metadata.managedFields = [
      { manager: 'kubectl-edit', operation: 'Update', apiVersion: 'v1', fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': { 'f:ports': { 'k:{"port":9090,"protocol":"TCP"}': { 'f:port': {} } } } } },
    ];
    const drifted = planObject('Service', d, live, true);
    expect(drifted.create).toBe(false);
    expect(drifted.drift.map((f) => f.path)).toEqual(['spec.ports[name=http].port']);

    live.metadata.managedFields = [
      { manager: FIELD_MANAGER, operation: 'Apply', apiVersion: 'v1', fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': { 'f:ports': { 'k:{"port":9090,"protocol":"TCP"}': { 'f:port': {}, 'f:name': {} } } } } },
    ];
    const rolled = planObject('Service', d, live, true);
    expect(rolled.drift).toEqual([]);
    expect(rolled.rollout.map((f) => f.path)).toEqual(['spec.ports[name=http].port']);
  });
});

describe('combineDrift', () => {
  const item = { kind: 'Pod' as const, name: 'orders-0', path: '.', expected: 'present', actual: 'deleted' };
  it('no items: none, whatever was attempted', () => {
    expect(combineDrift([], ['corrected'], [])).toEqual({ items: [], outcome: 'none' });
  });
  it('failed wins, then correcting, then corrected', () => {
    expect(combineDrift([item], ['corrected', 'failed'], ['boom'])).toEqual({ items: [item], outcome: 'failed', error: 'boom' });
    expect(combineDrift([item], ['corrected', 'correcting'], [])).toEqual({ items: [item], outcome: 'correcting' });
    expect(combineDrift([item], ['corrected'], [])).toEqual({ items: [item], outcome: 'corrected' });
    expect(combineDrift([item], ['none'], [])).toEqual({ items: [item], outcome: 'none' });
  });
});

describe('nextRequeueMs', () => {
  it('polls at the poll interval, sooner for counters or while waiting', () => {
    expect(nextRequeueMs(10_000, undefined, false)).toBe(10_000);
    expect(nextRequeueMs(10_000, 4_000, false)).toBe(4_000);
    expect(nextRequeueMs(10_000, 0, false)).toBe(100);
    expect(nextRequeueMs(10_000, undefined, true)).toBe(WAIT_REQUEUE_MS);
  });
});


describe('existedBefore (is a missing object drift?)', () => {
  it('follows what the last written status knew of each kind', () => {
    expect(existedBefore('PersistentVolumeClaim', undefined)).toBe(false);
    expect(existedBefore('PersistentVolumeClaim', { storage: { phase: 'Bound' } } as never)).toBe(true);
    expect(existedBefore('Pod', { pod: { uid: 'u' } } as never)).toBe(true);
    expect(existedBefore('Service', { endpoint: 'http://x' } as never)).toBe(true);
    // An EventLog an older operator made has no token Secret and no NetworkPolicy yet.
    expect(existedBefore('NetworkPolicy', {} as never)).toBe(false);
    expect(existedBefore('NetworkPolicy', { tokenSecret: { name: 'orders-token', key: 'token' } } as never)).toBe(true);
    expect(existedBefore('Secret', undefined)).toBe(true);
  });
});

describe('objectAction', () => {
  const base = { kind: 'Service' as const, create: false, existedBefore: true, rollout: [], drift: [] };
  const finding = (path: string) => ({ kind: 'Pod' as const, name: 'orders-0', path, expected: 'a', actual: 'b' });
  it('create, nothing, rollout, correct or report', () => {
    expect(objectAction({ ...base, create: true }, true)).toBe('create');
    expect(objectAction(base, true)).toBe('nothing');
    expect(objectAction({ ...base, rollout: [finding('spec.ports')] }, true)).toBe('rollout');
    expect(objectAction({ ...base, drift: [finding('spec.ports')] }, true)).toBe('correct');
    expect(objectAction({ ...base, drift: [finding('spec.ports')] }, false)).toBe('report');
  });
  it('a pod whose immutable fields differ is recreated (drift only under Correct)', () => {
    const pod = { ...base, kind: 'Pod' as const };
    expect(objectAction({ ...pod, drift: [finding('spec.nodeName')] }, true)).toBe('recreate-pod');
    expect(objectAction({ ...pod, drift: [finding('spec.nodeName')] }, false)).toBe('report');
  });
});
