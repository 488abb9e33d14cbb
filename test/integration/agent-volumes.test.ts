/**
 * The node agent's PersistentVolumes as real file systems (global-setup's agent runs
 * as root here, so its volumes are ext4 images on loop devices): exact size, what a
 * pod sees, expansion through the PVC as external-resizer + kubelet do it (online
 * class, offline-only class, a class without expansion), and cleanup on delete.
 *
 * Needs root: it fails loudly otherwise (never skips). Online growth of a mounted
 * ext4 needs CAP_SYS_RESOURCE; where the agent lacks it (the sandbox this was written
 * in), the default class behaves like the offline one for the file-system step and
 * the test asserts exactly that, with the reason on the claim.
 */
import { execFileSync } from 'node:child_process';
import { readFile, statfs } from 'node:fs/promises';
import { CoreV1Api, PatchStrategy, StorageV1Api, setHeaderOptions, type KubeConfig, type V1PersistentVolumeClaim, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onlineResizeSupport } from '../../dev/volumes/loopfs.ts';
import { which } from '../../dev/volumes/exec.ts';
import { freshNamespace, kubeConfigFromInject, statusOf, waitFor, type FreshNamespace } from './helpers.ts';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const MiB = 1024 * 1024;

let kc: KubeConfig;
let core: CoreV1Api;
let ns: FreshNamespace;
let online: { supported: boolean; reason: string };

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('agent-volumes tests need root: the node agent makes loop-ext4 volumes only as root (this test never skips)');
  kc = kubeConfigFromInject();
  core = kc.makeApiClient(CoreV1Api);
  ns = await freshNamespace('agent-volumes');
  // The agent runs in the vitest main process with the same privileges as this worker.
  online = await onlineResizeSupport();
  console.log(`agent-volumes: online ext4 growth on this node: ${online.supported ? 'yes' : `no (${online.reason})`}`);
});

afterAll(async () => {
  await ns?.cleanup();
});

function serverPod(name: string, claim: string): V1Pod {
  return {
    metadata: { name },
    spec: {
      terminationGracePeriodSeconds: 10,
      containers: [
        {
          name: 'server',
          image: 'eventlog:dev',
          command: ['eventlog-server'],
          args: ['--data-dir', '/data', '--host', '$(POD_IP)', '--port', '8080'],
          env: [{ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }],
          readinessProbe: { httpGet: { path: '/readyz', port: 8080 }, periodSeconds: 1, failureThreshold: 1 },
          volumeMounts: [{ name: 'data', mountPath: '/data' }],
        },
      ],
      volumes: [{ name: 'data', persistentVolumeClaim: { claimName: claim } }],
    },
  };
}

const readClaim = (name: string): Promise<V1PersistentVolumeClaim> => core.readNamespacedPersistentVolumeClaim({ name, namespace: ns.name });
const readPod = (name: string): Promise<V1Pod> => core.readNamespacedPod({ name, namespace: ns.name });

async function createClaim(name: string, size: string, storageClassName?: string): Promise<void> {
  await core.createNamespacedPersistentVolumeClaim({
    namespace: ns.name,
    body: { metadata: { name }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: size } }, ...(storageClassName ? { storageClassName } : {}) } },
  });
}

async function boundVolume(claim: string): Promise<{ pvName: string; path: string }> {
  const c = await waitFor(async () => {
    const x = await readClaim(claim);
    return x.status?.phase === 'Bound' ? x : undefined;
  }, { message: `claim ${claim} to be Bound` });
  const pv = await core.readPersistentVolume({ name: c.spec?.volumeName ?? '' });
  return { pvName: pv.metadata?.name ?? '', path: pv.spec?.local?.path ?? '' };
}

async function waitReady(name: string): Promise<V1Pod> {
  return waitFor(async () => {
    const p = await readPod(name);
    return p.status?.containerStatuses?.[0]?.ready ? p : undefined;
  }, { message: `pod ${name} to be Ready`, timeoutMs: 60_000 });
}

async function deletePodAndWait(name: string): Promise<void> {
  await core.deleteNamespacedPod({ name, namespace: ns.name });
  await waitFor(async () => {
    try {
      await readPod(name);
      return false;
    } catch (err) {
      return statusOf(err) === 404;
    }
  }, { message: `pod ${name} to be removed`, timeoutMs: 60_000 });
}

const totalBytes = async (path: string): Promise<number> => {
  const s = await statfs(path);
  return s.blocks * s.bsize;
};
const mountOf = async (path: string): Promise<{ fsType: string; source: string } | undefined> => {
  for (const line of (await readFile('/proc/self/mountinfo', 'utf8')).split('\n')) {
    const [left, right] = line.split(' - ');
    if (left?.split(' ')[4] === path && right) {
      const [fsType, source] = right.split(' ');
      return { fsType: fsType ?? '', source: source ?? '' };
    }
  }
  return undefined;
};
const attached = (image: string): string[] => {
  const out = execFileSync(which('losetup') ?? 'losetup', ['-J', '-l'], { encoding: 'utf8' });
  if (!out.trim()) return [];
  return (JSON.parse(out) as { loopdevices: Array<{ name: string; 'back-file': string }> }).loopdevices.filter((d) => d['back-file'].startsWith(image)).map((d) => d.name);
};
const conditionTypes = (c: V1PersistentVolumeClaim): string[] => (c.status?.conditions ?? []).map((x) => x.type).sort();
const resize = (claim: string, size: string): Promise<V1PersistentVolumeClaim> =>
  core.patchNamespacedPersistentVolumeClaim({ name: claim, namespace: ns.name, body: { spec: { resources: { requests: { storage: size } } } } }, mergePatch);

async function claimEvents(claim: string): Promise<Array<{ reason: string; message: string; at: number }>> {
  const list = await core.listNamespacedEvent({ namespace: ns.name, fieldSelector: `involvedObject.kind=PersistentVolumeClaim,involvedObject.name=${claim}` });
  return list.items.map((e) => ({ reason: e.reason ?? '', message: e.message ?? '', at: new Date(e.lastTimestamp ?? e.eventTime ?? 0).getTime() }));
}

describe('node agent volumes (loop-ext4)', () => {
  it('provides the three StorageClasses', async () => {
    const storage = kc.makeApiClient(StorageV1Api);
    const [def, offline, fixed] = await Promise.all(['eventlog-local', 'eventlog-local-offline', 'eventlog-local-fixed'].map((name) => storage.readStorageClass({ name })));
    expect(def?.allowVolumeExpansion).toBe(true);
    expect(offline?.allowVolumeExpansion).toBe(true);
    expect(offline?.parameters?.['eventlog.dev/online-expansion']).toBe('false');
    expect(fixed?.allowVolumeExpansion).toBe(false);
  });

  it('gives a 64Mi claim a 64 MiB ext4 file system that its pod writes to, and grows it to 96Mi through the claim', async () => {
    await createClaim('grow', '64Mi');
    const { pvName, path } = await boundVolume('grow');
    const pv = await core.readPersistentVolume({ name: pvName });
    expect(pv.metadata?.annotations?.['eventlog.dev/volume-mode']).toBe('loop-ext4');
    expect(pv.spec?.capacity?.storage).toBe('64Mi');
    const mount = await mountOf(path);
    expect(mount?.fsType).toBe('ext4');
    expect(mount?.source).toMatch(/^\/dev\/loop\d+$/);
    const before = await totalBytes(path);
    expect(before).toBeGreaterThan(0.9 * 64 * MiB);
    expect(before).toBeLessThanOrEqual(64 * MiB);

    await core.createNamespacedPod({ namespace: ns.name, body: serverPod('grower', 'grow') });
    const pod = await waitReady('grower');
    const ip = pod.status?.podIP ?? '';
    const post = await fetch(`http://${ip}:8080/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'before-growth' }) });
    expect(post.status).toBe(201);
    const startedAt = pod.status?.containerStatuses?.[0]?.state?.running?.startedAt;

    const t0 = performance.now();
    await resize('grow', '96Mi');
    await waitFor(async () => (await core.readPersistentVolume({ name: pvName })).spec?.capacity?.storage === '96Mi', { message: 'PV capacity 96Mi' });

    if (online.supported) {
      // Online: the running pod's file system grows under it.
      const done = await waitFor(async () => {
        const c = await readClaim('grow');
        return c.status?.capacity?.storage === '96Mi' ? c : undefined;
      }, { message: 'claim grow to report 96Mi' });
      const ms = performance.now() - t0;
      console.log(`agent-volumes: online expansion 64Mi -> 96Mi (claim patched -> status.capacity) took ${ms.toFixed(0)} ms`);
      expect(conditionTypes(done)).toEqual([]);
      expect(await totalBytes(path)).toBeGreaterThan(before + 30 * MiB);
      const still = await readPod('grower');
      expect(still.status?.containerStatuses?.[0]?.restartCount).toBe(0);
      expect(still.status?.containerStatuses?.[0]?.state?.running?.startedAt).toEqual(startedAt);
      expect((await fetch(`http://${ip}:8080/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"type":"after"}' })).status).toBe(201);
      await deletePodAndWait('grower');
      return;
    }

    // No online growth on this node: the block device and the PV grew, the file system waits
    // for the pod to go, and the claim says why.
    const pending = await waitFor(async () => {
      const c = await readClaim('grow');
      return c.status?.conditions?.some((x) => x.type === 'FileSystemResizePending' && x.message?.includes('a pod uses the volume')) ? c : undefined;
    }, { message: 'claim grow to be FileSystemResizePending because the pod uses it' });
    expect(pending.status?.allocatedResources?.storage).toBe('96Mi');
    expect(pending.status?.allocatedResourceStatuses?.storage).toBe('NodeResizePending');
    expect(pending.status?.capacity?.storage).toBe('64Mi');
    expect(pending.status?.conditions?.find((x) => x.type === 'FileSystemResizePending')?.message).toContain('CAP_SYS_RESOURCE');
    expect(await totalBytes(path)).toBe(before);
    expect((await readPod('grower')).status?.containerStatuses?.[0]?.restartCount).toBe(0);

    const t1 = performance.now();
    await deletePodAndWait('grower');
    const done = await waitFor(async () => {
      const c = await readClaim('grow');
      return c.status?.capacity?.storage === '96Mi' ? c : undefined;
    }, { message: 'claim grow to report 96Mi once no pod uses it' });
    console.log(`agent-volumes: no online growth here; file system 64Mi -> 96Mi finished ${(performance.now() - t1).toFixed(0)} ms after the pod was gone (${(performance.now() - t0).toFixed(0)} ms after the patch)`);
    expect(conditionTypes(done)).toEqual([]);
    expect(done.status?.allocatedResourceStatuses ?? {}).toEqual({});
    expect(await totalBytes(path)).toBeGreaterThan(before + 30 * MiB);
    const reasons = (await claimEvents('grow')).map((e) => e.reason);
    expect(reasons).toEqual(expect.arrayContaining(['Resizing', 'VolumeResizeSuccessful', 'FileSystemResizeRequired', 'FileSystemResizeSuccessful']));

    // The data written before the growth is still there for the next pod.
    await core.createNamespacedPod({ namespace: ns.name, body: serverPod('grower2', 'grow') });
    const next = await waitReady('grower2');
    const text = await (await fetch(`http://${next.status?.podIP}:8080/events`)).text();
    expect(text).toContain('before-growth');
    await deletePodAndWait('grower2');
  });

  it('offline class: stays FileSystemResizePending while a pod runs, and finishes before the next pod starts', async () => {
    await createClaim('offline', '64Mi', 'eventlog-local-offline');
    const { pvName, path } = await boundVolume('offline');
    const before = await totalBytes(path);
    await core.createNamespacedPod({ namespace: ns.name, body: serverPod('first', 'offline') });
    await waitReady('first');

    await resize('offline', '96Mi');
    const pending = await waitFor(async () => {
      const c = await readClaim('offline');
      return c.status?.conditions?.some((x) => x.type === 'FileSystemResizePending' && x.message?.includes('a pod uses the volume')) ? c : undefined;
    }, { message: 'claim offline to be FileSystemResizePending because the pod uses it' });
    expect((await core.readPersistentVolume({ name: pvName })).spec?.capacity?.storage).toBe('96Mi');
    expect(pending.status?.conditions?.find((x) => x.type === 'FileSystemResizePending')?.message).toContain('eventlog.dev/online-expansion: "false"');
    // It stays so across several agent passes while the pod runs.
    await new Promise((r) => setTimeout(r, 6_000));
    const still = await readClaim('offline');
    expect(conditionTypes(still)).toEqual(['FileSystemResizePending']);
    expect(still.status?.capacity?.storage).toBe('64Mi');
    expect(await totalBytes(path)).toBe(before);
    expect((await readPod('first')).status?.containerStatuses?.[0]?.ready).toBe(true);

    // Delete the pod and start the next one at once: the resize completes before it starts.
    await deletePodAndWait('first');
    await core.createNamespacedPod({ namespace: ns.name, body: serverPod('second', 'offline') });
    const second = await waitReady('second');
    const done = await readClaim('offline');
    expect(done.status?.capacity?.storage).toBe('96Mi');
    expect(conditionTypes(done)).toEqual([]);
    expect(await totalBytes(path)).toBeGreaterThan(before + 30 * MiB);
    const started = new Date(second.status?.containerStatuses?.[0]?.state?.running?.startedAt ?? 0).getTime();
    const finished = (await claimEvents('offline')).find((e) => e.reason === 'FileSystemResizeSuccessful');
    expect(finished?.message).toContain('offline');
    expect(finished!.at).toBeLessThanOrEqual(started);
    await deletePodAndWait('second');
  });

  it('fixed class: the API server refuses to expand the claim', async () => {
    await createClaim('fixed', '64Mi', 'eventlog-local-fixed');
    await boundVolume('fixed');
    const err = await resize('fixed', '96Mi').catch((e: unknown) => e);
    expect(statusOf(err)).toBe(403);
    expect(String((err as { body?: unknown }).body)).toContain('only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize');
    expect((await readClaim('fixed')).spec?.resources?.requests?.storage).toBe('64Mi');
  });

  it('deleting a claim unmounts, detaches and deletes its image', async () => {
    await createClaim('doomed', '16Mi');
    const { pvName, path } = await boundVolume('doomed');
    const image = `${path}.img`;
    expect(attached(image)).toHaveLength(1);
    await core.deleteNamespacedPersistentVolumeClaim({ name: 'doomed', namespace: ns.name });
    await waitFor(async () => {
      try {
        await core.readPersistentVolume({ name: pvName });
        return false;
      } catch (err) {
        return statusOf(err) === 404;
      }
    }, { message: `PV ${pvName} to be deleted` });
    expect(attached(image)).toEqual([]);
    expect(await mountOf(path)).toBeUndefined();
    await expect(readFile(image)).rejects.toThrow(/ENOENT/);
  });
});
