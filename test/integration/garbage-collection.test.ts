/**
 * kube-controller-manager's garbage collector runs: owner references delete
 * dependents when the owner goes (background and foreground propagation) and
 * leave them when asked to orphan.
 */
import { CoreV1Api, type V1ConfigMap, type V1OwnerReference } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshNamespace, kubeConfigFromInject, statusOf, waitFor, type FreshNamespace } from './helpers.ts';

describe('owner-reference garbage collection', () => {
  let core: CoreV1Api;
  let ns: FreshNamespace;

  beforeAll(async () => {
    core = kubeConfigFromInject().makeApiClient(CoreV1Api);
    ns = await freshNamespace('gc');
  });
  afterAll(async () => {
    await ns?.cleanup();
  });

  async function ownerAndChild(name: string): Promise<{ owner: V1ConfigMap; child: V1ConfigMap }> {
    const owner = await core.createNamespacedConfigMap({ namespace: ns.name, body: { metadata: { name: `${name}-owner` } } });
    const ref: V1OwnerReference = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      name: owner.metadata!.name!,
      uid: owner.metadata!.uid!,
      blockOwnerDeletion: true,
    };
    const child = await core.createNamespacedConfigMap({
      namespace: ns.name,
      body: { metadata: { name: `${name}-child`, ownerReferences: [ref] } },
    });
    return { owner, child };
  }

  const gone = (name: string) => async () => {
    try {
      await core.readNamespacedConfigMap({ name, namespace: ns.name });
      return false;
    } catch (err) {
      if (statusOf(err) === 404) return true;
      throw err;
    }
  };

  it('deletes the child ConfigMap when its owner ConfigMap is deleted (background)', async () => {
    const { child } = await ownerAndChild('background');
    await core.deleteNamespacedConfigMap({ name: 'background-owner', namespace: ns.name, propagationPolicy: 'Background' });
    await waitFor(gone(child.metadata!.name!), {
      message: `child ConfigMap ${ns.name}/background-child to be garbage-collected after its owner was deleted`,
      timeoutMs: 60_000,
    });
  });

  it('deletes the child before the owner with foreground propagation', async () => {
    await ownerAndChild('foreground');
    await core.deleteNamespacedConfigMap({ name: 'foreground-owner', namespace: ns.name, propagationPolicy: 'Foreground' });
    await waitFor(gone('foreground-owner'), {
      message: `owner ConfigMap ${ns.name}/foreground-owner to finish foreground deletion`,
      timeoutMs: 60_000,
    });
    expect(await gone('foreground-child')()).toBe(true);
  });

  it('keeps the child when the owner is deleted with propagationPolicy=Orphan', async () => {
    await ownerAndChild('orphan');
    await core.deleteNamespacedConfigMap({ name: 'orphan-owner', namespace: ns.name, propagationPolicy: 'Orphan' });
    await waitFor(gone('orphan-owner'), { message: `owner ConfigMap ${ns.name}/orphan-owner to be deleted`, timeoutMs: 60_000 });
    // The GC removes the owner reference from the orphan (that is what finishes the Orphan deletion).
    const child = await core.readNamespacedConfigMap({ name: 'orphan-child', namespace: ns.name });
    expect(child.metadata?.ownerReferences ?? []).toEqual([]);
  });
});
