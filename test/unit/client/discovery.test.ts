// fromEventLog against a scripted API server (plain HTTP on 127.0.0.1): which requests it
// makes, with which credentials, and what it does with the answers. The real API server
// is the integration tier's.
import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { discoverEventLog, EventLogError, fromEventLog } from '../../../src/client/index.ts';
import { json, stub } from './stub.ts';

function kubeConfig(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'sa-token' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u', namespace: 'default' }],
    currentContext: 'x',
  });
  return kc;
}

describe('fromEventLog', () => {
  it('reads status.endpoint and the token Secret; the client sends that token', async () => {
    const log = await stub((req, res) => json(res, 201, { id: 'a', createdAt: 'x', sequence: 1, auth: req.headers.authorization }));
    const api = await stub((req, res) => {
      if (req.url === '/apis/eventlog.dev/v1alpha1/namespaces/shop/eventlogs/orders') {
        return json(res, 200, { kind: 'EventLog', status: { endpoint: log.url, tokenSecret: { name: 'orders-token', key: 'token' } } });
      }
      if (req.url === '/api/v1/namespaces/shop/secrets/orders-token') return json(res, 200, { kind: 'Secret', data: { token: Buffer.from('s3cret\n').toString('base64') } });
      json(res, 404, { kind: 'Status', reason: 'NotFound', code: 404 });
    });
    const kc = kubeConfig(api.url);
    expect(await discoverEventLog({ namespace: 'shop', name: 'orders', kubeConfig: kc })).toEqual({ url: log.url, token: 's3cret' });
    const client = await fromEventLog({ namespace: 'shop', name: 'orders', kubeConfig: kc });
    expect(client.url).toBe(log.url);
    expect((await client.append<{ a: number; auth?: string }>({ a: 1 })).auth).toBe('Bearer s3cret');
    expect(api.seen.every((r) => r.headers.authorization === 'Bearer sa-token' && r.method === 'GET')).toBe(true);
    // url overrides the endpoint (a port-forward), the token still comes from the Secret.
    expect(await discoverEventLog({ namespace: 'shop', name: 'orders', kubeConfig: kc, url: 'http://127.0.0.1:1' })).toEqual({ url: 'http://127.0.0.1:1', token: 's3cret' });
  });

  it('no token Secret: a client without a token; clear errors for a missing EventLog, a missing endpoint, a missing key', async () => {
    let status: Record<string, unknown> = { endpoint: 'http://open.default.svc:8080' };
    let secret: Record<string, unknown> = { data: {} };
    const api = await stub((req, res) => {
      if (req.url.endsWith('/eventlogs/open')) return json(res, 200, { status });
      if (req.url.includes('/secrets/')) return json(res, 200, secret);
      json(res, 404, { kind: 'Status', reason: 'NotFound', message: 'eventlogs "gone" not found', code: 404 });
    });
    const kc = kubeConfig(api.url);
    expect(await discoverEventLog({ namespace: 'default', name: 'open', kubeConfig: kc })).toEqual({ url: 'http://open.default.svc:8080' });
    await expect(discoverEventLog({ namespace: 'default', name: 'gone', kubeConfig: kc })).rejects.toThrow(/EventLog default\/gone \(no such EventLog\)/);
    status = {};
    await expect(discoverEventLog({ namespace: 'default', name: 'open', kubeConfig: kc })).rejects.toThrow(/has no status.endpoint yet/);
    status = { endpoint: 'http://x:1', tokenSecret: { name: 'open-token', key: 'token' } };
    await expect(discoverEventLog({ namespace: 'default', name: 'open', kubeConfig: kc })).rejects.toThrow(/has no key "token"/);
    secret = { data: { token: '' } };
    const err = await discoverEventLog({ namespace: 'default', name: 'open', kubeConfig: kc }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EventLogError);
  });
});
