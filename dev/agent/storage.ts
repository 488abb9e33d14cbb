/**
 * Storage provisioning for the local node, like a local-path provisioner:
 * a default StorageClass `eventlog-local` (allowVolumeExpansion), and for each
 * PersistentVolumeClaim of that class (or of no class, i.e. the default) a
 * PersistentVolume whose `local.path` is a directory under the agent's data
 * dir, sized as requested, bound both ways (PV claimRef + Bound; PVC volumeName
 * + Bound + capacity + accessModes). A larger request on a bound claim is an
 * expansion: PV capacity and PVC status.capacity follow. A claim of an unknown
 * class is left Pending, as on a real cluster. When a claim is gone, its PV is
 * deleted with its directory (reclaimPolicy Delete) or marked Released (Retain).
 */
import { mkdir, rm } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import type { CoreV1Api, StorageV1Api, V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import type { Logger } from '../../src/common/logger.ts';
import { describeError, isAlreadyExists, isNotFound, mergePatch } from './kube.ts';
import { pvDir, type AgentPaths } from './paths.ts';
import { quantityGreater } from '../../src/kube/quantity.ts';

export const storageClassName = 'eventlog-local';
export const provisionerName = 'eventlog.dev/local-agent';
const provisionedByAnnotation = 'pv.kubernetes.io/provisioned-by';

export function defaultStorageClass(): V1StorageClass {
  return {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: {
      name: storageClassName,
      annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' },
      labels: { 'app.kubernetes.io/managed-by': 'eventlog-node-agent' },
    },
    provisioner: provisionerName,
    reclaimPolicy: 'Delete',
    volumeBindingMode: 'Immediate',
    allowVolumeExpansion: true,
  };
}

/** The class a claim asks for: `undefined` (unset) means the default class, which is ours. */
export function claimIsOurs(pvc: V1PersistentVolumeClaim): boolean {
  const cls = pvc.spec?.storageClassName;
  return cls === undefined || cls === null || cls === storageClassName;
}

export function isOurVolume(pv: V1PersistentVolume): boolean {
  return pv.metadata?.annotations?.[provisionedByAnnotation] === provisionerName;
}

/** The PV the agent creates for a claim (name `pvc-<uid>`, like external provisioners). */
export function volumeFor(pvc: V1PersistentVolumeClaim, nodeName: string, dir: string, reclaimPolicy: string): V1PersistentVolume {
  const size = pvc.spec?.resources?.requests?.storage ?? '1Gi';
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: {
      name: `pvc-${pvc.metadata?.uid}`,
      annotations: { [provisionedByAnnotation]: provisionerName, 'pv.kubernetes.io/bound-by-controller': 'yes' },
      labels: { 'app.kubernetes.io/managed-by': 'eventlog-node-agent' },
    },
    spec: {
      capacity: { storage: String(size) },
      accessModes: pvc.spec?.accessModes?.length ? pvc.spec.accessModes : ['ReadWriteOnce'],
      persistentVolumeReclaimPolicy: reclaimPolicy,
      storageClassName,
      volumeMode: pvc.spec?.volumeMode ?? 'Filesystem',
      local: { path: dir },
      claimRef: {
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        namespace: pvc.metadata?.namespace ?? 'default',
        name: pvc.metadata?.name ?? '',
        uid: pvc.metadata?.uid ?? '',
      },
      nodeAffinity: {
        required: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [nodeName] }] }],
        },
      },
    },
  };
}

export interface StorageDeps {
  core: CoreV1Api;
  storage: StorageV1Api;
  paths: AgentPaths;
  nodeName: string;
  log: Logger;
}

export class StorageProvisioner {
  readonly #d: StorageDeps;

  constructor(deps: StorageDeps) {
    this.#d = deps;
  }

  /** Create the default StorageClass if it is missing (an existing one is left as the user set it). */
  async ensureStorageClass(): Promise<V1StorageClass> {
    try {
      return await this.#d.storage.readStorageClass({ name: storageClassName });
    } catch (err) {
      if (!isNotFound(err)) throw new Error(`reading StorageClass ${storageClassName}: ${describeError(err)}`);
    }
    try {
      const sc = await this.#d.storage.createStorageClass({ body: defaultStorageClass() });
      this.#d.log.info({ storageClass: storageClassName }, 'default StorageClass created');
      return sc;
    } catch (err) {
      if (isAlreadyExists(err)) return this.#d.storage.readStorageClass({ name: storageClassName });
      throw new Error(`creating StorageClass ${storageClassName}: ${describeError(err)}`);
    }
  }

  /** One level-triggered pass over all claims and our volumes. */
  async sync(): Promise<void> {
    const sc = await this.ensureStorageClass();
    const [pvcList, pvList] = await Promise.all([this.#d.core.listPersistentVolumeClaimForAllNamespaces({}), this.#d.core.listPersistentVolume({})]);
    const pvs = new Map(pvList.items.map((pv) => [pv.metadata?.name ?? '', pv]));
    const byClaimUid = new Map<string, V1PersistentVolume>();
    for (const pv of pvList.items) if (isOurVolume(pv) && pv.spec?.claimRef?.uid) byClaimUid.set(pv.spec.claimRef.uid, pv);

    const errors: string[] = [];
    for (const pvc of pvcList.items) {
      if (!claimIsOurs(pvc) || pvc.metadata?.deletionTimestamp) continue;
      try {
        await this.#syncClaim(pvc, sc, pvs, byClaimUid);
      } catch (err) {
        errors.push(`claim ${pvc.metadata?.namespace}/${pvc.metadata?.name}: ${describeError(err)}`);
      }
    }
    const claimUids = new Set(pvcList.items.map((c) => c.metadata?.uid));
    for (const pv of pvList.items) {
      if (!isOurVolume(pv) || pv.metadata?.deletionTimestamp) continue;
      if (pv.spec?.claimRef?.uid && claimUids.has(pv.spec.claimRef.uid)) continue;
      try {
        await this.#reclaim(pv);
      } catch (err) {
        errors.push(`volume ${pv.metadata?.name}: ${describeError(err)}`);
      }
    }
    if (errors.length > 0) throw new Error(`storage sync: ${errors.join('; ')}`);
  }

  async #syncClaim(pvc: V1PersistentVolumeClaim, sc: V1StorageClass, pvs: Map<string, V1PersistentVolume>, byClaimUid: Map<string, V1PersistentVolume>): Promise<void> {
    const namespace = pvc.metadata?.namespace ?? 'default';
    const name = pvc.metadata?.name ?? '';
    const uid = pvc.metadata?.uid ?? '';
    if (pvc.spec?.storageClassName === undefined || pvc.spec.storageClassName === null) {
      // A claim created before the default class existed: assign it, as the retroactive default does.
      await this.#d.core.patchNamespacedPersistentVolumeClaim({ name, namespace, body: { spec: { storageClassName } } }, mergePatch);
    }
    let pv = pvc.spec?.volumeName ? pvs.get(pvc.spec.volumeName) : byClaimUid.get(uid);
    if (pvc.spec?.volumeName && (!pv || !isOurVolume(pv))) return; // bound to someone else's volume
    if (!pv) {
      const dir = pvDir(this.#d.paths, `pvc-${uid}`);
      await mkdir(dir, { recursive: true });
      const body = volumeFor(pvc, this.#d.nodeName, dir, sc.reclaimPolicy ?? 'Delete');
      try {
        pv = await this.#d.core.createPersistentVolume({ body });
        this.#d.log.info({ claim: `${namespace}/${name}`, volume: body.metadata?.name, size: body.spec?.capacity?.storage, dir }, 'volume provisioned');
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
        pv = await this.#d.core.readPersistentVolume({ name: body.metadata?.name ?? '' });
      }
    }
    const pvName = pv.metadata?.name ?? '';
    if (pv.spec?.claimRef?.uid && pv.spec.claimRef.uid !== uid) return; // belongs to another claim

    // Expansion: the claim asks for more than the volume has.
    const requested = pvc.spec?.resources?.requests?.storage;
    let capacity = String(pv.spec?.capacity?.storage ?? requested ?? '');
    if (requested !== undefined && quantityGreater(String(requested), capacity)) {
      await this.#d.core.patchPersistentVolume({ name: pvName, body: { spec: { capacity: { storage: String(requested) } } } }, mergePatch);
      this.#d.log.info({ claim: `${namespace}/${name}`, volume: pvName, from: capacity, to: String(requested) }, 'volume expanded');
      capacity = String(requested);
    }

    if (pv.status?.phase !== 'Bound') {
      await this.#d.core.patchPersistentVolumeStatus({ name: pvName, body: { status: { phase: 'Bound' } } }, mergePatch);
    }
    if (pvc.spec?.volumeName !== pvName || pvc.metadata?.annotations?.['pv.kubernetes.io/bind-completed'] !== 'yes') {
      await this.#d.core.patchNamespacedPersistentVolumeClaim(
        {
          name,
          namespace,
          body: {
            metadata: {
              annotations: {
                'pv.kubernetes.io/bind-completed': 'yes',
                'pv.kubernetes.io/bound-by-controller': 'yes',
                'volume.kubernetes.io/storage-provisioner': provisionerName,
                'volume.beta.kubernetes.io/storage-provisioner': provisionerName,
              },
            },
            spec: { volumeName: pvName },
          },
        },
        mergePatch,
      );
    }
    const accessModes = pv.spec?.accessModes ?? ['ReadWriteOnce'];
    const statusCapacity = pvc.status?.capacity?.storage !== undefined ? String(pvc.status.capacity.storage) : undefined;
    const needsStatus =
      pvc.status?.phase !== 'Bound' ||
      statusCapacity !== capacity ||
      JSON.stringify(pvc.status?.accessModes ?? []) !== JSON.stringify(accessModes);
    if (needsStatus) {
      await this.#d.core.patchNamespacedPersistentVolumeClaimStatus(
        {
          name,
          namespace,
          body: { status: { phase: 'Bound', accessModes, capacity: { storage: capacity }, conditions: null, allocatedResourceStatuses: null } },
        },
        mergePatch,
      );
      if (pvc.status?.phase !== 'Bound') this.#d.log.info({ claim: `${namespace}/${name}`, volume: pvName, capacity }, 'claim bound');
    }
  }

  async #reclaim(pv: V1PersistentVolume): Promise<void> {
    const ref = pv.spec?.claimRef;
    const name = pv.metadata?.name ?? '';
    if (ref?.name && ref.namespace) {
      // Confirm with a fresh read that the claim is really gone before touching data.
      try {
        const live = await this.#d.core.readNamespacedPersistentVolumeClaim({ name: ref.name, namespace: ref.namespace });
        if (live.metadata?.uid === ref.uid) return;
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    if (pv.status?.phase !== 'Released') {
      await this.#d.core.patchPersistentVolumeStatus({ name, body: { status: { phase: 'Released' } } }, mergePatch);
    }
    if (pv.spec?.persistentVolumeReclaimPolicy !== 'Delete') return;
    const dir = pv.spec?.local?.path;
    const root = resolve(this.#d.paths.volumes) + sep;
    if (dir && resolve(dir).startsWith(root)) await rm(dir, { recursive: true, force: true });
    try {
      await this.#d.core.deletePersistentVolume({ name });
      this.#d.log.info({ volume: name, claim: `${ref?.namespace}/${ref?.name}` }, 'claim deleted; volume and its directory deleted');
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}
