/**
 * Finalizer writes against the real API server: ours is added and removed without
 * touching other controllers' finalizers, and a stale view fails instead of clobbering.
 */
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureFinalizer, removeFinalizer } from '../../src/runtime/finalizer.ts';
import { KubeHttp } from '../../src/runtime/kube-http.ts';
import { ensureEventLogCrd, freshNamespace, kubeConfigFromInject, waitFor, type FreshNamespace } from './helpers.ts';

const F = 'eventlog.dev/finalizer';
let kc: KubeConfig;
let ns: FreshNamespace;
let http: KubeHttp;
type Obj = { metadata: { finalizers?: string[]; resourceVersion: string; deletionTimestamp?: string } };

const collection = () => `/apis/eventlog.dev/v1alpha1/namespaces/${ns.name}/eventlogs`;
const read = (name: string) => http.json<Obj>('GET', `${collection()}/${name}`);
const target = (name: string, o: Obj) => ({ collection: collection(), name, finalizers: o.metadata.finalizers, resourceVersion: o.metadata.resourceVersion });

beforeAll(async () => {
  kc = kubeConfigFromInject();
  http = new KubeHttp(kc);
  await ensureEventLogCrd(kc);
  ns = await freshNamespace('finalizer');
});

afterAll(async () => {
  await ns?.cleanup();
});

describe('finalizer', () => {
  it('adds and removes ours next to another controller\'s, and refuses a stale view', async () => {
    const api = kc.makeApiClient(CustomObjectsApi);
    await api.createNamespacedCustomObject({
      group: 'eventlog.dev', version: 'v1alpha1', namespace: ns.name, plural: 'eventlogs',
      body: { apiVersion: 'eventlog.dev/v1alpha1', kind: 'EventLog', metadata: { name: 'orders', finalizers: ['other.io/keep'] }, spec: { storage: { size: '1Gi' } } },
    });
    const first = await read('orders');
    expect(await ensureFinalizer(http, target('orders', first), F)).toBe(true);
    expect((await read('orders')).metadata.finalizers).toEqual(['other.io/keep', F]);
    // Idempotent: no write when it is there.
    expect(await ensureFinalizer(http, target('orders', await read('orders')), F)).toBe(false);

    // Someone else adds a finalizer after our read: our stale add fails, nothing is lost.
    await api.createNamespacedCustomObject({
      group: 'eventlog.dev', version: 'v1alpha1', namespace: ns.name, plural: 'eventlogs',
      body: { apiVersion: 'eventlog.dev/v1alpha1', kind: 'EventLog', metadata: { name: 'payments' }, spec: { storage: { size: '1Gi' } } },
    });
    const stale = await read('payments');
    await http.json('PATCH', `${collection()}/payments`, { contentType: 'application/merge-patch+json', body: { metadata: { finalizers: ['third.io/x'] } } });
    await expect(ensureFinalizer(http, target('payments', stale), F)).rejects.toThrow(/adding finalizer eventlog.dev\/finalizer on .*payments: .*HTTP 422/);
    expect((await read('payments')).metadata.finalizers).toEqual(['third.io/x']);

    // Deletion waits for finalizers; removing ours leaves the other's in place.
    await http.json('DELETE', `${collection()}/orders`);
    const terminating = await read('orders');
    expect(terminating.metadata.deletionTimestamp).toBeDefined();
    expect(await removeFinalizer(http, target('orders', terminating), F)).toBe(true);
    expect((await read('orders')).metadata.finalizers).toEqual(['other.io/keep']);
    await removeFinalizer(http, target('orders', await read('orders')), 'other.io/keep');
    await waitFor(async () => (await read('orders').then(() => false, (e: { statusCode?: number }) => e.statusCode === 404)), { message: 'the EventLog to be gone' });
  });
});
