import { describe, expect, it } from 'vitest';
import { requestAttributes } from '../../../dev/kube/request-info.ts';

describe('requestAttributes', () => {
  it('resolves namespaced core resources and their verbs', () => {
    expect(requestAttributes({ method: 'GET', path: '/api/v1/namespaces/a/pods/p-0' })).toEqual({ apiGroup: '', resource: 'pods', rbacResource: 'pods', namespace: 'a', name: 'p-0', verbs: ['get'] });
    expect(requestAttributes({ method: 'GET', path: '/api/v1/namespaces/a/pods', query: { labelSelector: 'x=y' } })?.verbs).toEqual(['list']);
    expect(requestAttributes({ method: 'GET', path: '/api/v1/namespaces/a/pods', query: { watch: true } })?.verbs).toEqual(['watch']);
    expect(requestAttributes({ method: 'GET', path: '/api/v1/pods?watch=1&allowWatchBookmarks=true' })).toEqual({ apiGroup: '', resource: 'pods', rbacResource: 'pods', verbs: ['watch'] });
    expect(requestAttributes({ method: 'DELETE', path: '/api/v1/namespaces/a/pods/p-0' })?.verbs).toEqual(['delete']);
    expect(requestAttributes({ method: 'DELETE', path: '/api/v1/namespaces/a/pods' })?.verbs).toEqual(['deletecollection']);
  });

  it('resolves group resources, subresources and cluster-scoped objects', () => {
    expect(requestAttributes({ method: 'PATCH', path: '/apis/eventlog.dev/v1alpha1/namespaces/a/eventlogs/orders/status', contentType: 'application/merge-patch+json', statusCode: 200 })).toEqual({
      apiGroup: 'eventlog.dev',
      resource: 'eventlogs',
      rbacResource: 'eventlogs/status',
      namespace: 'a',
      name: 'orders',
      verbs: ['patch'],
    });
    expect(requestAttributes({ method: 'GET', path: '/apis/storage.k8s.io/v1/storageclasses/eventlog-local' })).toEqual({ apiGroup: 'storage.k8s.io', resource: 'storageclasses', rbacResource: 'storageclasses', name: 'eventlog-local', verbs: ['get'] });
    expect(requestAttributes({ method: 'PUT', path: '/apis/coordination.k8s.io/v1/namespaces/eventlog-system/leases/eventlog-operator' })?.verbs).toEqual(['update']);
    expect(requestAttributes({ method: 'POST', path: '/apis/events.k8s.io/v1/namespaces/a/events' })?.verbs).toEqual(['create']);
  });

  it('treats namespaces themselves and their subresources like the API server', () => {
    expect(requestAttributes({ method: 'GET', path: '/api/v1/namespaces/a' })).toMatchObject({ resource: 'namespaces', name: 'a', verbs: ['get'] });
    expect(requestAttributes({ method: 'PUT', path: '/api/v1/namespaces/a/finalize' })).toMatchObject({ resource: 'namespaces', rbacResource: 'namespaces/finalize', name: 'a', verbs: ['update'] });
  });

  it('counts a server-side apply that created the object as create too', () => {
    const apply = { method: 'PATCH', path: '/api/v1/namespaces/a/services/orders', contentType: 'application/apply-patch+yaml' };
    expect(requestAttributes({ ...apply, statusCode: 201 })?.verbs).toEqual(['patch', 'create']);
    expect(requestAttributes({ ...apply, statusCode: 200 })?.verbs).toEqual(['patch']);
    expect(requestAttributes({ ...apply, contentType: 'application/merge-patch+json', statusCode: 201 })?.verbs).toEqual(['patch']);
  });

  it('gives undefined for non-resource paths (discovery, health)', () => {
    expect(requestAttributes({ method: 'GET', path: '/api' })).toBeUndefined();
    expect(requestAttributes({ method: 'GET', path: '/api/v1' })).toBeUndefined();
    expect(requestAttributes({ method: 'GET', path: '/apis/eventlog.dev/v1alpha1' })).toBeUndefined();
    expect(requestAttributes({ method: 'GET', path: '/healthz' })).toBeUndefined();
  });
});
