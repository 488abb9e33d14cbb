import { describe, expect, it } from 'vitest';
import { nextResizeStep, resizeConditions, resizeStatusKey, type ResizeFacts } from '../../../../dev/agent/resize.ts';
import { capacityFor, claimIsOurs, storageClasses, volumeFor } from '../../../../dev/agent/storage.ts';

const facts = (over: Partial<ResizeFacts> = {}): ResizeFacts => ({
  requested: '64Mi',
  pvCapacity: '64Mi',
  claimCapacity: '64Mi',
  classAllowsExpansion: true,
  classOnline: true,
  nodeOnline: true,
  inUse: false,
  ...over,
});

describe('nextResizeStep', () => {
  it('does nothing for a claim at its size, or one asking for less (never shrinks)', () => {
    expect(nextResizeStep(facts())).toEqual({ kind: 'none' });
    expect(nextResizeStep(facts({ requested: '32Mi' }))).toEqual({ kind: 'none' });
    expect(nextResizeStep(facts({ requested: '67108864' }))).toEqual({ kind: 'none' }); // same size, other spelling
    expect(nextResizeStep(facts({ pvCapacity: undefined }))).toEqual({ kind: 'none' });
  });

  it('starts with the controller step when the request exceeds the PV, and refuses it for a fixed class', () => {
    expect(nextResizeStep(facts({ requested: '96Mi' }))).toEqual({ kind: 'controller', to: '96Mi' });
    expect(nextResizeStep(facts({ requested: '96Mi', inUse: true, classOnline: false }))).toEqual({ kind: 'controller', to: '96Mi' }); // the block device grows regardless
    const refused = nextResizeStep(facts({ requested: '96Mi', classAllowsExpansion: false }));
    expect(refused.kind).toBe('refused');
  });

  it('grows the file system online when class and node allow it, even in use', () => {
    expect(nextResizeStep(facts({ pvCapacity: '96Mi', requested: '96Mi', inUse: true }))).toEqual({ kind: 'filesystem', capacity: '96Mi', online: true });
  });

  it('grows offline when nothing uses the volume and online is not possible', () => {
    expect(nextResizeStep(facts({ pvCapacity: '96Mi', requested: '96Mi', classOnline: false }))).toEqual({ kind: 'filesystem', capacity: '96Mi', online: false });
    expect(nextResizeStep(facts({ pvCapacity: '96Mi', requested: '96Mi', nodeOnline: false }))).toEqual({ kind: 'filesystem', capacity: '96Mi', online: false });
  });

  it('waits while a pod uses it, and says whether the class or the node is why', () => {
    const byClass = nextResizeStep(facts({ pvCapacity: '96Mi', requested: '96Mi', classOnline: false, inUse: true }));
    expect(byClass).toMatchObject({ kind: 'wait', capacity: '96Mi' });
    expect(byClass.kind === 'wait' && byClass.message).toContain('eventlog.dev/online-expansion: "false"');
    const byNode = nextResizeStep(facts({ pvCapacity: '96Mi', requested: '96Mi', nodeOnline: false, nodeOnlineReason: 'no CAP_SYS_RESOURCE', inUse: true }));
    expect(byNode.kind === 'wait' && byNode.message).toContain('no CAP_SYS_RESOURCE');
  });

  it('finishes a claim whose request was lowered after a failure at the PV size', () => {
    // Request lowered from 1Gi back to 96Mi; the PV had grown to 96Mi already.
    expect(nextResizeStep(facts({ requested: '80Mi', pvCapacity: '96Mi', claimCapacity: '64Mi' }))).toEqual({ kind: 'filesystem', capacity: '96Mi', online: true });
  });
});

describe('resize conditions', () => {
  it('keeps lastTransitionTime while the condition holds and adds an error beside the progress condition', () => {
    const first = resizeConditions(undefined, 'FileSystemResizePending', 'waiting', 1_000_000);
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({ type: 'FileSystemResizePending', status: 'True', message: 'waiting' });
    const later = resizeConditions(first, 'FileSystemResizePending', 'waiting', 9_000_000, { type: 'NodeResizeError', message: 'resize2fs failed' });
    expect(later[0]?.lastTransitionTime).toEqual(first[0]?.lastTransitionTime);
    expect(later[1]).toMatchObject({ type: 'NodeResizeError', status: 'True', message: 'resize2fs failed' });
  });

  it('compares the resize-owned status regardless of probe times and condition order', () => {
    const a = { conditions: resizeConditions(undefined, 'Resizing', 'm', 1), allocatedResourceStatuses: { storage: 'ControllerResizeInProgress' }, allocatedResources: { storage: '96Mi' }, capacity: { storage: '64Mi' } };
    const b = { ...a, conditions: resizeConditions(undefined, 'Resizing', 'm', 5_000) };
    expect(resizeStatusKey(a)).toBe(resizeStatusKey(b));
    expect(resizeStatusKey(a)).not.toBe(resizeStatusKey({ ...a, allocatedResourceStatuses: { storage: 'NodeResizePending' } }));
    expect(resizeStatusKey(a)).not.toBe(resizeStatusKey({ ...a, capacity: { storage: '96Mi' } }));
  });
});

describe('storage classes and PVs', () => {
  it('provides the default online class, an offline-only class and a fixed class', () => {
    const [online, offline, fixed] = storageClasses();
    expect(online?.metadata?.name).toBe('eventlog-local');
    expect(online?.metadata?.annotations?.['storageclass.kubernetes.io/is-default-class']).toBe('true');
    expect(online?.allowVolumeExpansion).toBe(true);
    expect(offline?.metadata?.name).toBe('eventlog-local-offline');
    expect(offline?.allowVolumeExpansion).toBe(true);
    expect(offline?.parameters).toEqual({ 'eventlog.dev/online-expansion': 'false' });
    expect(offline?.metadata?.annotations).toBeUndefined();
    expect(fixed?.metadata?.name).toBe('eventlog-local-fixed');
    expect(fixed?.allowVolumeExpansion).toBe(false);
    for (const sc of [online, offline, fixed]) expect(sc?.provisioner).toBe('eventlog.dev/local-agent');
  });

  it('serves claims of all three classes', () => {
    for (const cls of ['eventlog-local', 'eventlog-local-offline', 'eventlog-local-fixed']) expect(claimIsOurs({ spec: { storageClassName: cls } })).toBe(true);
  });

  it('marks the PV with its mode and class, and reports a rounded-up capacity', () => {
    const pv = volumeFor({ metadata: { uid: 'u', name: 'c', namespace: 'n' }, spec: { storageClassName: 'eventlog-local-offline', resources: { requests: { storage: '1Mi' } } } }, 'node', '/d/volumes/pvc-u', 'Delete', {
      mode: 'loop-ext4',
      capacity: capacityFor('1Mi', 8n << 20n),
    });
    expect(pv.metadata?.annotations?.['eventlog.dev/volume-mode']).toBe('loop-ext4');
    expect(pv.spec?.storageClassName).toBe('eventlog-local-offline');
    expect(pv.spec?.capacity?.storage).toBe('8Mi');
    expect(capacityFor('64Mi', 64n << 20n)).toBe('64Mi');
    expect(capacityFor('67108864', 64n << 20n)).toBe('67108864');
  });
});
