/**
 * The pure parts of the reconciler (planning, drift outcome, requeue); the loop itself
 * is tested against the real control plane in test/integration/operator.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { parseEventLog } from '../../../src/api/eventlog.ts';
import { desiredService } from '../../../src/decisions/desired.ts';
import { FIELD_MANAGER } from '../../../src/decisions/labels.ts';
import { combineDrift, eventLogController, nextRequeueMs, OWNED_SELECTOR, planObject, WAIT_REQUEUE_MS } from '../../../src/operator/eventlog-controller.ts';

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

describe('eventLogController definition', () => {
  it('watches EventLogs and the owned pods, PVCs, Services, Secrets and NetworkPolicies by the managed-by label', () => {
    const def = eventLogController({
      http: {} as never,
      applier: { apply: async (o) => o },
      recorder: { record: async () => undefined },
      config: { defaultImage: 'eventlog:dev', pollInterval: 10_000, statusCounterInterval: 30_000 },
    });
    expect(def.primary).toMatchObject({ group: 'eventlog.dev', version: 'v1alpha1', plural: 'eventlogs', kind: 'EventLog' });
    expect(Object.keys(def.owned).sort()).toEqual(['networkpolicies', 'persistentvolumeclaims', 'pods', 'secrets', 'services']);
    expect(def.owned.networkpolicies).toMatchObject({ group: 'networking.k8s.io', version: 'v1' });
    for (const o of Object.values(def.owned)) expect(o.labelSelector).toBe(OWNED_SELECTOR);
    expect(OWNED_SELECTOR).toBe('app.kubernetes.io/managed-by=eventlog-operator');
  });
});
