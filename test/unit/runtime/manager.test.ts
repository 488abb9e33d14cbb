import { describe, expect, it } from 'vitest';
import { controllerOwnerKey } from '../../../src/runtime/caches.ts';

const owner = { apiVersion: 'eventlog.dev/v1alpha1', kind: 'EventLog' };
const ref = (over: Record<string, unknown> = {}) => ({ apiVersion: 'eventlog.dev/v1alpha1', kind: 'EventLog', name: 'orders', uid: 'u1', controller: true, ...over });

describe('controllerOwnerKey (owned object -> the EventLog to reconcile)', () => {
  it('maps an object to its controller owner of the primary kind', () => {
    expect(controllerOwnerKey({ metadata: { name: 'orders', namespace: 'shop', ownerReferences: [ref()] } }, owner)).toBe('shop/orders');
  });

  it('accepts another version of the same group (the owner reference may predate a version bump)', () => {
    expect(controllerOwnerKey({ metadata: { name: 'x', namespace: 'shop', ownerReferences: [ref({ apiVersion: 'eventlog.dev/v1' })] } }, owner)).toBe('shop/orders');
  });

  it.each([
    ['no owner references', []],
    ['a non-controller owner', [ref({ controller: false })]],
    ['a controller of another kind', [ref({ kind: 'StatefulSet', apiVersion: 'apps/v1' })]],
    ['a same-named kind of another group', [ref({ apiVersion: 'other.dev/v1alpha1' })]],
  ])('maps nothing for %s', (_what, ownerReferences) => {
    expect(controllerOwnerKey({ metadata: { name: 'x', namespace: 'shop', ownerReferences } }, owner)).toBeUndefined();
  });
});
