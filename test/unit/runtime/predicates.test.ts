import { describe, expect, it } from 'vitest';
import { changedParts, composeTransforms, keepManagedFieldsOf, sharedSubtrees, withoutAllAnnotations, withoutAnnotations, withoutFinalizers, withoutManagedFields } from '../../../src/runtime/predicates.ts';

type Obj = { apiVersion: string; kind: string; metadata: Record<string, unknown> & { managedFields?: unknown; annotations?: Record<string, string> }; [k: string]: unknown };
const obj = (over: Record<string, unknown> = {}, meta: Record<string, unknown> = {}): Obj => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'p', namespace: 'ns', uid: 'u', resourceVersion: '1', generation: 1, labels: { a: '1' }, ...meta },
  spec: { x: 1 },
  status: { phase: 'Pending' },
  ...over,
});

describe('changedParts', () => {
  it('is empty when only resourceVersion or managedFields changed', () => {
    expect(changedParts(obj(), obj({}, { resourceVersion: '2', managedFields: [{ manager: 'kubelet' }] })).size).toBe(0);
  });
  it('names status, spec and metadata changes', () => {
    expect([...changedParts(obj(), obj({ status: { phase: 'Running' } }, { resourceVersion: '2' }))]).toEqual(['status']);
    expect([...changedParts(obj(), obj({ spec: { x: 2 } }, { generation: 2 }))].sort()).toEqual(['metadata', 'spec']);
    expect([...changedParts(obj(), obj({}, { finalizers: ['f'] }))]).toEqual(['metadata']);
    expect([...changedParts(obj(), obj({}, { deletionTimestamp: '2026-01-01T00:00:00Z' }))]).toEqual(['metadata']);
    expect([...changedParts(obj(), obj({}, { annotations: { approve: 'x' } }))]).toEqual(['metadata']);
    // A top-level field other than spec (a Secret's data) counts as spec.
    expect([...changedParts(obj({ data: { t: 'a' } }), obj({ data: { t: 'b' } }))]).toEqual(['spec']);
  });
});

describe('cache transforms', () => {
  const mf = [
    { manager: 'eventlog-operator', operation: 'Apply', fieldsV1: { 'f:spec': {} } },
    { manager: 'eventlog-operator', operation: 'Update', subresource: 'status', fieldsV1: {} },
    { manager: 'kubelet', operation: 'Update', subresource: 'status', fieldsV1: { 'f:status': {} } },
    { manager: 'kubectl-edit', operation: 'Update', fieldsV1: { 'f:metadata': {} } },
  ];
  it('withoutManagedFields drops them all', () => {
    expect(withoutManagedFields(obj({}, { managedFields: mf })).metadata).not.toHaveProperty('managedFields');
  });
  it('keepManagedFieldsOf keeps only the manager\'s own entries of the main resource (what drift reads)', () => {
    expect(keepManagedFieldsOf('eventlog-operator')(obj({}, { managedFields: mf })).metadata.managedFields).toEqual([mf[0]]);
  });
  it('withoutAnnotations drops only the named keys and keeps name, uid and resourceVersion', () => {
    const t = composeTransforms(withoutManagedFields, withoutAnnotations(['kubectl.kubernetes.io/last-applied-configuration']));
    const out = t(obj({}, { managedFields: mf, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{...}', keep: 'me' } }));
    expect(out.metadata).toMatchObject({ name: 'p', namespace: 'ns', uid: 'u', resourceVersion: '1', annotations: { keep: 'me' } });
    expect(out.metadata.annotations).not.toHaveProperty('kubectl.kubernetes.io/last-applied-configuration');
  });
  it('withoutFinalizers and withoutAllAnnotations make a change to those alone no change at all', () => {
    const t = composeTransforms(withoutFinalizers, withoutAllAnnotations);
    const a = t(obj({}, { finalizers: ['kubernetes.io/pvc-protection'], annotations: { 'pv.kubernetes.io/bind-completed': 'yes' } }));
    const b = t(obj({}, { resourceVersion: '2' }));
    expect(a.metadata).not.toHaveProperty('finalizers');
    expect(a.metadata).not.toHaveProperty('annotations');
    expect(changedParts(a, b).size).toBe(0);
  });
  it('sharedSubtrees gives equal subtrees at the paths one instance and changes no value', () => {
    const t = sharedSubtrees([['spec'], ['metadata', 'managedFields']]);
    const make = (name: string) => ({
      metadata: { name, uid: `uid-${name}`, managedFields: [{ manager: 'm', fieldsV1: { 'f:spec': { 'f:a': {} }, 'f:metadata': { [`k:{"uid":"${name}"}`]: {} } } }] },
      spec: { containers: [{ name: 'server', args: ['--port', '8080'] }], volumes: [{ name: 'data', claim: `${name}-data` }] },
      status: { phase: 'Running' },
    });
    const a = t(structuredClone(make('a')));
    const b = t(structuredClone(make('b')));
    expect(a).toEqual(make('a'));
    expect(b).toEqual(make('b'));
    expect(b.spec.containers).toBe(a.spec.containers);
    expect(b.spec.volumes).not.toBe(a.spec.volumes);
    expect(b.metadata.managedFields[0]!.fieldsV1['f:spec']).toBe(a.metadata.managedFields[0]!.fieldsV1['f:spec']);
    expect(b.status).not.toBe(a.status); // not a shared path
  });

  it('sharedSubtrees stays bounded: after maxEntries the table starts afresh', () => {
    const t = sharedSubtrees([['spec']], { maxEntries: 4 });
    const objs = Array.from({ length: 10 }, (_, i) => t({ metadata: { name: `o${i}` }, spec: { x: { y: i } } }));
    expect(objs.map((o) => o.spec.x.y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const again = t({ metadata: { name: 'p' }, spec: { x: { y: 9 } } });
    expect(again.spec).toBe(objs[9]!.spec);
  });
});
