/** The EventLog controller's definition: what it watches and how. */
import { describe, expect, it } from 'vitest';
import { eventLogController, OWNED_SELECTOR } from '../../../src/operator/eventlog-controller.ts';

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
