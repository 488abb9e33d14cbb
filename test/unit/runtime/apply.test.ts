import { describe, expect, it } from 'vitest';
import { ServerSideApplier } from '../../../src/runtime/apply.ts';
import { KubeApiError, statusCodeOf } from '../../../src/runtime/kube-http.ts';

function fakeHttp(answer: (method: string, path: string) => unknown) {
  const calls: Array<{ method: string; path: string; opts: Record<string, unknown> }> = [];
  return {
    calls,
    http: {
      json: async <T>(method: string, path: string, opts: Record<string, unknown> = {}): Promise<T> => {
        calls.push({ method, path, opts });
        const a = answer(method, path);
        if (a instanceof Error) throw a;
        return a as T;
      },
    },
  };
}

describe('ServerSideApplier', () => {
  it('PATCHes the object as-is with the apply content type, field manager and force', async () => {
    const f = fakeHttp(() => ({ kind: 'NetworkPolicy', metadata: { resourceVersion: '5' } }));
    const obj = { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'log-a', namespace: 'shop' }, spec: { podSelector: {} } };
    const out = await new ServerSideApplier(f.http).apply(obj, 'eventlog-operator', { force: true });
    expect(out).toEqual({ kind: 'NetworkPolicy', metadata: { resourceVersion: '5' } });
    expect(f.calls).toEqual([
      { method: 'PATCH', path: '/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies/log-a', opts: { query: { fieldManager: 'eventlog-operator', force: 'true' }, contentType: 'application/apply-patch+yaml', body: obj } },
    ]);
    await new ServerSideApplier(f.http).apply({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'd', namespace: 'n' } }, 'm');
    expect(f.calls[1]).toMatchObject({ path: '/api/v1/namespaces/n/persistentvolumeclaims/d', opts: { query: { fieldManager: 'm' } } });
  });

  it('names the object in errors and keeps the API error as the cause', async () => {
    const f = fakeHttp(() => new KubeApiError('PATCH x', 422, { message: 'bad' }));
    const err = await new ServerSideApplier(f.http).apply({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'n' } }, 'm').then(() => undefined, (e: unknown) => e as Error);
    expect(err?.message).toMatch(/^server-side apply of Pod n\/p failed: PATCH x: HTTP 422/);
    expect(statusCodeOf(err?.cause)).toBe(422);
    await expect(new ServerSideApplier(f.http).apply({ apiVersion: 'v1', kind: 'Widget', metadata: { name: 'w', namespace: 'n' } }, 'm')).rejects.toThrow(/no resource path known for apiVersion v1 kind Widget/);
    await expect(new ServerSideApplier(f.http).apply({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' } }, 'm')).rejects.toThrow(/metadata.namespace/);
  });
});
