import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RequestOptions } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { describe, expect, it } from 'vitest';
import { LightKubeConfig, loadKubeAccess } from '../../../src/runtime/kubeconfig.ts';

const kubeconfig = (user: Record<string, unknown>, cluster: Record<string, unknown> = { server: 'https://127.0.0.1:6443', 'certificate-authority-data': Buffer.from('CA').toString('base64') }) =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'c',
    contexts: [{ name: 'c', context: { cluster: 'k', user: 'u' } }],
    clusters: [{ name: 'k', cluster }],
    users: [{ name: 'u', user }],
  });

async function headers(kc: { applyToHTTPSOptions(o: RequestOptions): Promise<void> }): Promise<RequestOptions> {
  const opts: RequestOptions = { headers: { Accept: 'application/json' } };
  await kc.applyToHTTPSOptions(opts);
  return opts;
}

describe('LightKubeConfig', () => {
  it('reads a token kubeconfig: server, CA, bearer token and one keep-alive agent', async () => {
    const kc = LightKubeConfig.fromKubeconfigText(kubeconfig({ token: 'abc' }), '/x/config')!;
    expect(kc.getCurrentCluster()).toEqual({ server: 'https://127.0.0.1:6443' });
    const a = await headers(kc);
    const b = await headers(kc);
    expect(a.headers).toEqual({ Accept: 'application/json', Authorization: 'Bearer abc' });
    expect(a.agent).toBeInstanceOf(HttpsAgent);
    expect(a.agent).toBe(b.agent);
    expect((a.agent as HttpsAgent & { keepAlive: boolean }).keepAlive).toBe(true);
    expect(String((a.agent as HttpsAgent).options.ca)).toBe('CA');
  });

  it('reads files relative to the kubeconfig and re-reads a token file at most once a minute', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-'));
    writeFileSync(join(dir, 'ca.crt'), 'CAFILE');
    writeFileSync(join(dir, 'token'), 'one\n');
    let now = 0;
    const text = kubeconfig({ tokenFile: 'token' }, { server: 'https://h:1', 'certificate-authority': 'ca.crt' });
    const parsed = LightKubeConfig.fromKubeconfigText(text, join(dir, 'config'))!;
    // Same parse, with a controllable clock for the re-read.
    const kc = new LightKubeConfig({ server: 'https://h:1' }, { tokenFile: join(dir, 'token') }, { now: () => now });
    expect(String(((await headers(parsed)).agent as HttpsAgent).options.ca)).toBe('CAFILE');
    expect((await headers(kc)).headers).toMatchObject({ Authorization: 'Bearer one' });
    writeFileSync(join(dir, 'token'), 'two\n');
    now = 30_000;
    expect((await headers(kc)).headers).toMatchObject({ Authorization: 'Bearer one' });
    now = 61_000;
    expect((await headers(kc)).headers).toMatchObject({ Authorization: 'Bearer two' });
  });

  it.each([
    ['an exec plugin', { exec: { command: 'aws' } }, undefined],
    ['an auth provider', { 'auth-provider': { name: 'oidc' } }, undefined],
    ['basic auth', { username: 'a', password: 'b' }, undefined],
    ['impersonation', { token: 't', as: 'someone' }, undefined],
    ['a proxy', { token: 't' }, { server: 'https://h:1', 'proxy-url': 'http://proxy:3128' }],
    ['plain HTTP without skip-verify', { token: 't' }, { server: 'http://h:1' }],
  ])('leaves %s to the official client', (_what, user, cluster) => {
    expect(LightKubeConfig.fromKubeconfigText(kubeconfig(user, cluster), '/x/config')).toBeUndefined();
  });

  it('in-cluster: service host/port, the ServiceAccount CA and token file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sa-'));
    writeFileSync(join(dir, 'token'), 'sa-token');
    writeFileSync(join(dir, 'ca.crt'), 'SACA');
    const kc = LightKubeConfig.inCluster({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, dir)!;
    expect(kc.getCurrentCluster()).toEqual({ server: 'https://[fd00::1]:443' });
    expect((await headers(kc)).headers).toMatchObject({ Authorization: 'Bearer sa-token' });
    expect(LightKubeConfig.inCluster({}, dir)).toBeUndefined();
  });
});

describe('loadKubeAccess', () => {
  it('uses the light config for a static kubeconfig and the official client otherwise', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-'));
    writeFileSync(join(dir, 'light'), kubeconfig({ token: 't' }));
    writeFileSync(join(dir, 'exec'), kubeconfig({ exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'true' } }));
    expect((await loadKubeAccess(join(dir, 'light'), {})).light).toBe(true);
    const official = await loadKubeAccess(join(dir, 'exec'), {});
    expect(official.light).toBe(false);
    expect(official.access.getCurrentCluster()?.server).toBe('https://127.0.0.1:6443');
    expect((await loadKubeAccess(undefined, { KUBECONFIG: join(dir, 'light') }, { serviceAccountDir: join(dir, 'none') })).light).toBe(true);
    await expect(loadKubeAccess(join(dir, 'missing'), {})).rejects.toThrow();
  });
});
