import { describe, expect, it } from 'vitest';
import { KubeApiError } from '../../../src/runtime/kube-http.ts';
import { Resource, Resources, resourcePath } from '../../../src/runtime/resources.ts';

function fake(answer: (method: string, path: string) => unknown) {
  const calls: Array<{ method: string; path: string; o: Record<string, unknown> }> = [];
  const http = {
    async json<T>(method: string, path: string, o: Record<string, unknown> = {}): Promise<T> {
      calls.push({ method, path, o });
      return answer(method, path) as T;
    },
  };
  return { calls, resources: new Resources(http, { timeoutMs: 1234 }) };
}
const fail = (code: number) => () => {
  throw new KubeApiError('x', code, { reason: String(code) } as never);
};

describe('resourcePath', () => {
  it('core and grouped resources, collections, objects and subresources, every segment encoded', () => {
    expect(resourcePath(Resource.pods, 'ns', 'a b')).toBe('/api/v1/namespaces/ns/pods/a%20b');
    expect(resourcePath(Resource.storageClasses, undefined, 'fast')).toBe('/apis/storage.k8s.io/v1/storageclasses/fast');
    expect(resourcePath(Resource.events, 'n/s')).toBe('/apis/events.k8s.io/v1/namespaces/n%2Fs/events');
    expect(resourcePath({ group: 'eventlog.dev', version: 'v1alpha1', plural: 'eventlogs' }, 'shop', 'orders', 'status')).toBe('/apis/eventlog.dev/v1alpha1/namespaces/shop/eventlogs/orders/status');
  });
});

describe('Resources', () => {
  it('getOptional: 404 is undefined, other errors propagate; the default timeout applies', async () => {
    const missing = fake(fail(404));
    expect(await missing.resources.getOptional(Resource.pods, 'ns', 'p')).toBeUndefined();
    expect(missing.calls[0]).toMatchObject({ method: 'GET', path: '/api/v1/namespaces/ns/pods/p', o: { timeoutMs: 1234 } });
    await expect(fake(fail(500)).resources.getOptional(Resource.pods, 'ns', 'p')).rejects.toThrow(KubeApiError);
  });
  it('patch sends the content type of its kind', async () => {
    const f = fake(() => ({}));
    await f.resources.patch(Resource.persistentVolumeClaims, 'ns', 'c', 'merge', { a: 1 });
    await f.resources.patch(Resource.pods, 'ns', 'p', 'json', []);
    await f.resources.patch(Resource.secrets, 'ns', 's', 'apply', {}, { subresource: 'status' });
    expect(f.calls.map((c) => c.o.contentType)).toEqual(['application/merge-patch+json', 'application/json-patch+json', 'application/apply-patch+yaml']);
    expect(f.calls[2]?.path).toBe('/api/v1/namespaces/ns/secrets/s/status');
  });
  it('deleteOptional: true when deleted; false when gone (404) or, with a uid, replaced (409); 409 without a uid propagates', async () => {
    const ok = fake(() => ({}));
    expect(await ok.resources.deleteOptional(Resource.pods, 'ns', 'p', { uid: 'u1' })).toBe(true);
    expect(ok.calls[0]?.o.body).toEqual({ apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: 'u1' } });
    expect(await fake(fail(404)).resources.deleteOptional(Resource.pods, 'ns', 'p')).toBe(false);
    expect(await fake(fail(409)).resources.deleteOptional(Resource.pods, 'ns', 'p', { uid: 'u1' })).toBe(false);
    await expect(fake(fail(409)).resources.deleteOptional(Resource.pods, 'ns', 'p')).rejects.toThrow(KubeApiError);
  });
});
