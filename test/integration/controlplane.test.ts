/**
 * The local control plane itself (dev/cluster/): a second, separate control plane
 * starts, keeps its data across a restart, and leaves no process or port behind;
 * a failing component's own output reaches the error; kubectl and
 * @kubernetes/client-node both work against the shared one.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ControlPlaneStartError, startControlPlane, type ControlPlane } from '../../dev/cluster/controlplane.ts';
import { isPortFree } from '../../dev/cluster/ports.ts';
import { freshNamespace, kubeConfigFromInject, waitFor, type FreshNamespace } from './helpers.ts';

const execFileAsync = promisify(execFile);

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

async function expectAllGone(cp: ControlPlane, pids: number[]): Promise<void> {
  expect(pids.length).toBeGreaterThanOrEqual(4); // etcd, kube-apiserver, kube-controller-manager, reaper
  // stop() resolves after the components exited; the reaper exits right after "done".
  await waitFor(() => pids.every((p) => !isAlive(p)), { message: `pids ${pids.join(',')} to be gone`, timeoutMs: 5_000 });
  for (const pid of pids) expect(isAlive(pid), `pid ${pid} still alive`).toBe(false);
  for (const [name, port] of Object.entries(cp.ports)) {
    expect(await isPortFree(port), `${name} port ${port} still in use`).toBe(true);
  }
}

describe('a second, separate control plane', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'cp-test-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('starts, stops with no leaked process or port, and keeps its data across a restart', async () => {
    const first = await startControlPlane({ dataDir, handleSignals: false });
    const firstPids = first.pids();
    let stopped = false;
    try {
      expect(first.server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      expect(new Set(Object.values(first.ports)).size).toBe(3);
      for (const pid of firstPids) expect(isAlive(pid)).toBe(true);
      const core = first.kubeConfig.makeApiClient(CoreV1Api);
      await core.createNamespace({ body: { metadata: { name: 'survives-restart' } } });
      await first.stop();
      stopped = true;
    } finally {
      if (!stopped) await first.stop();
    }
    await expectAllGone(first, firstPids);

    // Same data dir: same CA (the old kubeconfig's CA still verifies), same etcd content.
    const second = await startControlPlane({ dataDir, handleSignals: false });
    const secondPids = second.pids();
    try {
      expect(second.server).not.toBe(first.server);
      const core = second.kubeConfig.makeApiClient(CoreV1Api);
      const ns = await core.readNamespace({ name: 'survives-restart' });
      expect(ns.metadata?.name).toBe('survives-restart');
      const oldCa = first.kubeConfig.getCurrentCluster()?.caData;
      expect(oldCa).toBeTruthy();
      expect(second.kubeConfig.getCurrentCluster()?.caData).toBe(oldCa);
    } finally {
      await second.stop();
    }
    await expectAllGone(second, secondPids);
    expect(existsSync(join(dataDir, 'etcd'))).toBe(true); // a given data dir is kept
  });

  it('fails with the failing component\'s own output in the error', async () => {
    const failDir = await mkdtemp(join(tmpdir(), 'cp-fail-'));
    try {
      const err = await startControlPlane({
        dataDir: failDir,
        handleSignals: false,
        withControllerManager: false,
        extraApiServerArgs: ['--no-such-flag=1'],
      }).then(
        () => { throw new Error('expected the start to fail'); },
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ControlPlaneStartError);
      const e = err as ControlPlaneStartError;
      expect(e.component).toBe('kube-apiserver');
      expect(e.message).toContain('unknown flag: --no-such-flag');
    } finally {
      await rm(failDir, { recursive: true, force: true });
    }
  });
});

describe('the shared control plane', () => {
  let kc: KubeConfig;
  let ns: FreshNamespace;
  beforeAll(async () => {
    kc = kubeConfigFromInject();
    ns = await freshNamespace('controlplane');
  });
  afterAll(async () => {
    await ns?.cleanup();
  });

  it('is provided to tests and to child processes through KUBECONFIG', () => {
    expect(process.env.KUBECONFIG).toBe(inject('kubeconfigPath'));
    expect(inject('apiServer')).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(kc.getCurrentCluster()?.server).toBe(inject('apiServer'));
    // Verified TLS, not insecure-skip-tls-verify.
    expect(kc.getCurrentCluster()?.skipTLSVerify).toBeFalsy();
    expect(kc.getCurrentCluster()?.caData).toBeTruthy();
  });

  it('works with kubectl', async () => {
    const kubectl = (...args: string[]) => execFileAsync('kubectl', args, { env: process.env });
    const { stdout: version } = await kubectl('version', '-o', 'json');
    expect(JSON.parse(version).serverVersion.gitVersion).toMatch(/^v1\.\d+\.\d+/);

    await kubectl('-n', ns.name, 'create', 'configmap', 'from-kubectl', '--from-literal=k=v');
    const core = kc.makeApiClient(CoreV1Api);
    const cm = await core.readNamespacedConfigMap({ name: 'from-kubectl', namespace: ns.name });
    expect(cm.data).toEqual({ k: 'v' });

    await core.createNamespacedConfigMap({
      namespace: ns.name,
      body: { metadata: { name: 'from-client-node' }, data: { hello: 'world' } },
    });
    const { stdout } = await kubectl('-n', ns.name, 'get', 'configmap', 'from-client-node', '-o', 'jsonpath={.data.hello}');
    expect(stdout).toBe('world');

    const { stdout: whoami } = await kubectl('auth', 'whoami', '-o', 'jsonpath={.status.userInfo.groups}');
    expect(whoami).toContain('system:masters');
  });

  it('runs the controller manager: new namespaces get their default ServiceAccount and root CA', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    await waitFor(() => core.readNamespacedServiceAccount({ name: 'default', namespace: ns.name }), {
      message: `ServiceAccount ${ns.name}/default (serviceaccount controller)`,
    });
    const ca = await waitFor(() => core.readNamespacedConfigMap({ name: 'kube-root-ca.crt', namespace: ns.name }), {
      message: `ConfigMap ${ns.name}/kube-root-ca.crt (root-ca-certificate-publisher controller)`,
    });
    expect(ca.data?.['ca.crt']).toContain('BEGIN CERTIFICATE');
  });
});
