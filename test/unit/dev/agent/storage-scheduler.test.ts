import type { V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { unschedulableReason, wantsScheduling } from '../../../../dev/agent/scheduler.ts';
import { claimIsOurs, defaultStorageClass, volumeFor } from '../../../../dev/agent/storage.ts';

const claim = (name: string, over: Partial<V1PersistentVolumeClaim> = {}): V1PersistentVolumeClaim => ({
  metadata: { name, namespace: 'n', uid: `uid-${name}` },
  spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '5Gi' } } },
  ...over,
});

describe('storage provisioning (pure parts)', () => {
  it('is the default class, expandable, with our provisioner', () => {
    const sc = defaultStorageClass();
    expect(sc.metadata?.name).toBe('eventlog-local');
    expect(sc.metadata?.annotations?.['storageclass.kubernetes.io/is-default-class']).toBe('true');
    expect(sc.allowVolumeExpansion).toBe(true);
    expect(sc.provisioner).toBe('eventlog.dev/local-agent');
    expect(sc.volumeBindingMode).toBe('Immediate');
  });

  it('serves claims of its class or of no class, not of others or of "" (static binding)', () => {
    expect(claimIsOurs(claim('a'))).toBe(true);
    expect(claimIsOurs(claim('b', { spec: { storageClassName: 'eventlog-local' } }))).toBe(true);
    expect(claimIsOurs(claim('c', { spec: { storageClassName: 'fast-ssd' } }))).toBe(false);
    expect(claimIsOurs(claim('d', { spec: { storageClassName: '' } }))).toBe(false);
  });

  it('builds a pre-bound local PV of the requested size on this node', () => {
    const pv = volumeFor(claim('data'), 'node-a', '/agent/volumes/pvc-uid-data', 'Delete');
    expect(pv.metadata?.name).toBe('pvc-uid-data');
    expect(pv.spec?.capacity).toEqual({ storage: '5Gi' });
    expect(pv.spec?.accessModes).toEqual(['ReadWriteOnce']);
    expect(pv.spec?.local?.path).toBe('/agent/volumes/pvc-uid-data');
    expect(pv.spec?.claimRef).toMatchObject({ namespace: 'n', name: 'data', uid: 'uid-data' });
    expect(pv.spec?.storageClassName).toBe('eventlog-local');
    expect(pv.spec?.nodeAffinity?.required?.nodeSelectorTerms[0]?.matchExpressions?.[0]?.values).toEqual(['node-a']);
  });
});

describe('scheduler', () => {
  const pod = (over: Partial<V1Pod['spec']> = {}, meta: Partial<V1Pod['metadata']> = {}): V1Pod => ({
    metadata: { name: 'p', namespace: 'n', ...meta },
    spec: { containers: [{ name: 'c' }], ...over },
  });

  it('takes unassigned pods of the default scheduler only', () => {
    expect(wantsScheduling(pod())).toBe(true);
    expect(wantsScheduling(pod({ schedulerName: 'default-scheduler' }))).toBe(true);
    expect(wantsScheduling(pod({ schedulerName: 'volcano' }))).toBe(false);
    expect(wantsScheduling(pod({ nodeName: 'elsewhere' }))).toBe(false);
    expect(wantsScheduling(pod({}, { deletionTimestamp: new Date() }))).toBe(false);
  });

  it('waits for claims to exist and be bound, and says which', () => {
    const withClaim = pod({ volumes: [{ name: 'd', persistentVolumeClaim: { claimName: 'data' } }] });
    expect(unschedulableReason(withClaim, new Map())).toContain('persistentvolumeclaim "data" not found');
    const pending = new Map([['n/data', claim('data', { status: { phase: 'Pending' } })]]);
    expect(unschedulableReason(withClaim, pending)).toContain('pod has unbound immediate PersistentVolumeClaims (data)');
    const bound = new Map([['n/data', claim('data', { status: { phase: 'Bound' } })]]);
    expect(unschedulableReason(withClaim, bound)).toBeUndefined();
    expect(unschedulableReason(pod(), new Map())).toBeUndefined();
  });
});
