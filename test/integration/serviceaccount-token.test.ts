/**
 * Service-account tokens from the TokenRequest API authenticate against the
 * local control plane, and RBAC authorises them for exactly what is bound to the
 * service account.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  AuthenticationV1Api,
  CoreV1Api,
  KubeConfig,
  RbacAuthorizationV1Api,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { renderKubeconfig } from '../../dev/cluster/kubeconfig.ts';
import { freshNamespace, kubeConfigFromInject, statusOf, type FreshNamespace } from './helpers.ts';

const execFileAsync = promisify(execFile);

async function expectStatus(p: Promise<unknown>, status: number): Promise<void> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err, `expected HTTP ${status}, the call succeeded`).toBeDefined();
  expect(statusOf(err), String(err)).toBe(status);
}

describe('TokenRequest tokens and RBAC', () => {
  let admin: KubeConfig;
  let ns: FreshNamespace;
  let other: FreshNamespace;
  let token: string;
  let tokenKc: KubeConfig;
  let tmp: string;

  beforeAll(async () => {
    admin = kubeConfigFromInject();
    ns = await freshNamespace('sa-token');
    other = await freshNamespace('sa-token-other');
    tmp = await mkdtemp(join(tmpdir(), 'sa-token-'));
    const core = admin.makeApiClient(CoreV1Api);
    const rbac = admin.makeApiClient(RbacAuthorizationV1Api);

    await core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: 'reader' } } });
    await rbac.createNamespacedRole({
      namespace: ns.name,
      body: {
        metadata: { name: 'configmap-reader' },
        rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: ns.name,
      body: {
        metadata: { name: 'reader-reads-configmaps' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'configmap-reader' },
        subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: ns.name }],
      },
    });
    await core.createNamespacedConfigMap({ namespace: ns.name, body: { metadata: { name: 'visible' }, data: { a: '1' } } });

    const tr = await core.createNamespacedServiceAccountToken({
      name: 'reader',
      namespace: ns.name,
      body: { spec: { expirationSeconds: 600, audiences: [] } },
    });
    token = tr.status?.token ?? '';
    expect(token.split('.')).toHaveLength(3); // a JWT

    tokenKc = new KubeConfig();
    tokenKc.loadFromString(renderKubeconfig({
      server: inject('apiServer'),
      caCertFile: inject('caCertPath'),
      token,
      user: 'reader',
      namespace: ns.name,
    }));
  });

  afterAll(async () => {
    await ns?.cleanup();
    await other?.cleanup();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('authenticates as the service account', async () => {
    const review = await tokenKc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
    expect(review.status?.userInfo?.username).toBe(`system:serviceaccount:${ns.name}:reader`);
    expect(review.status?.userInfo?.groups).toContain('system:serviceaccounts');
  });

  it('is allowed what its RoleBinding grants', async () => {
    const core = tokenKc.makeApiClient(CoreV1Api);
    const list = await core.listNamespacedConfigMap({ namespace: ns.name });
    expect(list.items.map((c) => c.metadata?.name)).toContain('visible');
    const cm = await core.readNamespacedConfigMap({ name: 'visible', namespace: ns.name });
    expect(cm.data).toEqual({ a: '1' });
  });

  it('is forbidden (403) everything else', async () => {
    const core = tokenKc.makeApiClient(CoreV1Api);
    // another verb on the same resource
    await expectStatus(core.createNamespacedConfigMap({ namespace: ns.name, body: { metadata: { name: 'nope' } } }), 403);
    await expectStatus(core.deleteNamespacedConfigMap({ name: 'visible', namespace: ns.name }), 403);
    // another resource in the same namespace
    await expectStatus(core.listNamespacedSecret({ namespace: ns.name }), 403);
    // the same resource in another namespace
    await expectStatus(core.listNamespacedConfigMap({ namespace: other.name }), 403);
  });

  it('is rejected (401) when tampered with', async () => {
    const bad = new KubeConfig();
    bad.loadFromString(renderKubeconfig({
      server: inject('apiServer'),
      caCertFile: inject('caCertPath'),
      token: `${token.slice(0, -4)}AAAA`,
      user: 'tampered',
    }));
    await expectStatus(bad.makeApiClient(CoreV1Api).listNamespacedConfigMap({ namespace: ns.name }), 401);
  });

  it('works the same through kubectl', async () => {
    const file = join(tmp, 'reader.kubeconfig');
    await writeFile(file, renderKubeconfig({
      server: inject('apiServer'),
      caCertFile: inject('caCertPath'),
      token,
      user: 'reader',
      namespace: ns.name,
    }));
    const kubectl = (...args: string[]) =>
      execFileAsync('kubectl', ['--kubeconfig', file, ...args]).then(
        (r) => ({ code: 0, stdout: r.stdout.trim(), stderr: r.stderr }),
        (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? -1, stdout: e.stdout?.trim() ?? '', stderr: e.stderr ?? '' }),
      );
    expect((await kubectl('auth', 'can-i', 'list', 'configmaps')).stdout).toBe('yes');
    expect((await kubectl('auth', 'can-i', 'create', 'configmaps')).stdout).toBe('no');
    expect((await kubectl('get', 'configmap', 'visible', '-o', 'name')).stdout).toBe('configmap/visible');
    const denied = await kubectl('create', 'configmap', 'nope');
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/forbidden/i);
  });
});
