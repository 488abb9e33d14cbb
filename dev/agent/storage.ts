/**
 * Storage provisioning for the local node, like a local-path provisioner plus the
 * external-resizer: three StorageClasses of provisioner `eventlog.dev/local-agent`,
 *
 *   eventlog-local          default class, allowVolumeExpansion, online expansion
 *   eventlog-local-offline  allowVolumeExpansion, parameter eventlog.dev/online-expansion: "false"
 *                           (the file system grows only while no pod uses the volume)
 *   eventlog-local-fixed    allowVolumeExpansion: false (the API server refuses expansion)
 *
 * and for each PersistentVolumeClaim of one of them (or of no class, i.e. the default) a
 * PersistentVolume `pvc-<uid>` whose `local.path` is the volume's directory on this node
 * (node-volumes.ts: a real ext4 file system of the requested size on a loop device when the
 * agent runs as root, else a plain directory; annotation `eventlog.dev/volume-mode`), bound
 * both ways (PV claimRef + Bound; PVC volumeName + Bound + capacity + accessModes).
 *
 * Expansion (resize.ts decides): a bound claim asking for more than its PV ->
 * `Resizing` (allocatedResources, ControllerResizeInProgress), grow the block device,
 * PV spec.capacity; `FileSystemResizePending` (NodeResizePending) -> grow the file
 * system online, or offline when no pod uses it (also right before a pod starts on it)
 * -> status.capacity, conditions and allocatedResourceStatuses cleared. Failures are
 * reported as `ControllerResizeError` / `NodeResizeError` conditions, Warning events and
 * log lines, and retried every pass; they never stop the agent.
 *
 * A claim of an unknown class is left Pending, as on a real cluster. When a claim is
 * gone, its PV is deleted with its storage (reclaimPolicy Delete) or marked Released
 * (Retain).
 */
import type { CoreV1Api, StorageV1Api, V1PersistentVolume, V1PersistentVolumeClaim, V1PersistentVolumeClaimCondition, V1PersistentVolumeClaimStatus, V1StorageClass } from '@kubernetes/client-node';
import type { Logger } from '../../src/common/logger.ts';
import { bytesToQuantity, compareQuantities, isQuantity, quantityToUnits } from '../../src/kube/quantity.ts';
import type { EventRecorder, EventType } from './events.ts';
import { describeError, isAlreadyExists, isNotFound, mergePatch } from './kube.ts';
import { volumeModeAnnotation, volumeModeOf, type NodeVolumes, type VolumeMode } from './node-volumes.ts';
import { type AgentPaths } from './paths.ts';
import { nextResizeStep, onlineExpansionParameter, resizeConditions, resizeStatusKey, type ResizeStep } from './resize.ts';

export const storageClassName = 'eventlog-local';
export const offlineStorageClassName = 'eventlog-local-offline';
export const fixedStorageClassName = 'eventlog-local-fixed';
export const storageClassNames = [storageClassName, offlineStorageClassName, fixedStorageClassName] as const;
export const provisionerName = 'eventlog.dev/local-agent';
export { onlineExpansionParameter } from './resize.ts';
const provisionedByAnnotation = 'pv.kubernetes.io/provisioned-by';

function storageClass(name: string, opts: { isDefault?: boolean; allowVolumeExpansion: boolean; parameters?: Record<string, string> }): V1StorageClass {
  return {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: {
      name,
      ...(opts.isDefault ? { annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } } : {}),
      labels: { 'app.kubernetes.io/managed-by': 'eventlog-node-agent' },
    },
    provisioner: provisionerName,
    reclaimPolicy: 'Delete',
    volumeBindingMode: 'Immediate',
    allowVolumeExpansion: opts.allowVolumeExpansion,
    ...(opts.parameters ? { parameters: opts.parameters } : {}),
  };
}

export function defaultStorageClass(): V1StorageClass {
  return storageClass(storageClassName, { isDefault: true, allowVolumeExpansion: true });
}

/** The three classes the agent provides (default/online, offline-only expansion, no expansion). */
export function storageClasses(): V1StorageClass[] {
  return [
    defaultStorageClass(),
    storageClass(offlineStorageClassName, { allowVolumeExpansion: true, parameters: { [onlineExpansionParameter]: 'false' } }),
    storageClass(fixedStorageClassName, { allowVolumeExpansion: false }),
  ];
}

/** The class a claim asks for: `undefined` (unset) means the default class, which is ours. */
export function claimIsOurs(pvc: V1PersistentVolumeClaim): boolean {
  const cls = pvc.spec?.storageClassName;
  return cls === undefined || cls === null || (storageClassNames as readonly string[]).includes(cls);
}

export function isOurVolume(pv: V1PersistentVolume): boolean {
  return pv.metadata?.annotations?.[provisionedByAnnotation] === provisionerName;
}

export interface VolumeExtras {
  storageClassName?: string;
  mode?: VolumeMode;
  /** PV capacity when it differs from the request (rounded up). */
  capacity?: string;
}

/** The PV the agent creates for a claim (name `pvc-<uid>`, like external provisioners). */
export function volumeFor(pvc: V1PersistentVolumeClaim, nodeName: string, dir: string, reclaimPolicy: string, extras: VolumeExtras = {}): V1PersistentVolume {
  const size = extras.capacity ?? pvc.spec?.resources?.requests?.storage ?? '1Gi';
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: {
      name: `pvc-${pvc.metadata?.uid}`,
      annotations: { [provisionedByAnnotation]: provisionerName, 'pv.kubernetes.io/bound-by-controller': 'yes', [volumeModeAnnotation]: extras.mode ?? 'directory' },
      labels: { 'app.kubernetes.io/managed-by': 'eventlog-node-agent' },
    },
    spec: {
      capacity: { storage: String(size) },
      accessModes: pvc.spec?.accessModes?.length ? pvc.spec.accessModes : ['ReadWriteOnce'],
      persistentVolumeReclaimPolicy: reclaimPolicy,
      storageClassName: extras.storageClassName ?? pvc.spec?.storageClassName ?? storageClassName,
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

/** The capacity to report for `actual` bytes when `requested` was asked: the request's spelling when exact. */
export function capacityFor(requested: string, actual: bigint): string {
  return quantityToUnits(requested) === actual ? requested : bytesToQuantity(actual);
}

export interface StorageDeps {
  core: CoreV1Api;
  storage: StorageV1Api;
  paths: AgentPaths;
  nodeName: string;
  log: Logger;
  volumes: NodeVolumes;
  events: EventRecorder;
}

const resizeConditionTypes = new Set(['Resizing', 'FileSystemResizePending', 'ControllerResizeError', 'NodeResizeError']);
const claimKey = (pvc: V1PersistentVolumeClaim): string => `${pvc.metadata?.namespace}/${pvc.metadata?.name}`;
const str = (q: unknown): string | undefined => (q === undefined || q === null ? undefined : String(q));

export class StorageProvisioner {
  readonly #d: StorageDeps;
  /** Last message reported per claim and kind, so a repeated failure or wait is logged/evented once. */
  readonly #reported = new Map<string, string>();
  /** When this agent started the controller step of a claim's current expansion (for the log line). */
  readonly #started = new Map<string, number>();

  constructor(deps: StorageDeps) {
    this.#d = deps;
  }

  /** Create our StorageClasses where missing (an existing one is left as the user set it). */
  async ensureStorageClasses(): Promise<Map<string, V1StorageClass>> {
    const out = new Map<string, V1StorageClass>();
    for (const body of storageClasses()) {
      const name = body.metadata?.name ?? '';
      try {
        out.set(name, await this.#d.storage.readStorageClass({ name }));
        continue;
      } catch (err) {
        if (!isNotFound(err)) throw new Error(`reading StorageClass ${name}: ${describeError(err)}`);
      }
      try {
        out.set(name, await this.#d.storage.createStorageClass({ body }));
        this.#d.log.info({ storageClass: name }, 'StorageClass created');
      } catch (err) {
        if (!isAlreadyExists(err)) throw new Error(`creating StorageClass ${name}: ${describeError(err)}`);
        out.set(name, await this.#d.storage.readStorageClass({ name }));
      }
    }
    return out;
  }

  /** Kept for callers of the single-class API. */
  async ensureStorageClass(): Promise<V1StorageClass> {
    return (await this.ensureStorageClasses()).get(storageClassName) as V1StorageClass;
  }

  /** One level-triggered pass over all claims and our volumes. */
  async sync(): Promise<void> {
    const classes = await this.ensureStorageClasses();
    const [pvcList, pvList] = await Promise.all([this.#d.core.listPersistentVolumeClaimForAllNamespaces({}), this.#d.core.listPersistentVolume({})]);
    const pvs = new Map(pvList.items.map((pv) => [pv.metadata?.name ?? '', pv]));
    const byClaimUid = new Map<string, V1PersistentVolume>();
    for (const pv of pvList.items) if (isOurVolume(pv) && pv.spec?.claimRef?.uid) byClaimUid.set(pv.spec.claimRef.uid, pv);

    const errors: string[] = [];
    for (const pvc of pvcList.items) {
      if (!claimIsOurs(pvc) || pvc.metadata?.deletionTimestamp) continue;
      try {
        await this.#syncClaim(pvc, classes, pvs, byClaimUid);
      } catch (err) {
        errors.push(`claim ${claimKey(pvc)}: ${describeError(err)}`);
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

  async #syncClaim(pvc: V1PersistentVolumeClaim, classes: Map<string, V1StorageClass>, pvs: Map<string, V1PersistentVolume>, byClaimUid: Map<string, V1PersistentVolume>): Promise<void> {
    const namespace = pvc.metadata?.namespace ?? 'default';
    const name = pvc.metadata?.name ?? '';
    const uid = pvc.metadata?.uid ?? '';
    let cls = pvc.spec?.storageClassName ?? undefined;
    if (cls === undefined) {
      // A claim created before the default class existed: assign it, as the retroactive default does.
      await this.#d.core.patchNamespacedPersistentVolumeClaim({ name, namespace, body: { spec: { storageClassName } } }, mergePatch);
      cls = storageClassName;
    }
    const sc = classes.get(cls);
    let pv = pvc.spec?.volumeName ? pvs.get(pvc.spec.volumeName) : byClaimUid.get(uid);
    if (pvc.spec?.volumeName && (!pv || !isOurVolume(pv))) return; // bound to someone else's volume
    if (!pv) {
      const pvName = `pvc-${uid}`;
      const requested = String(pvc.spec?.resources?.requests?.storage ?? '1Gi');
      if (!isQuantity(requested)) throw new Error(`requested storage ${JSON.stringify(requested)} is not a quantity`);
      const t0 = performance.now();
      const made = await this.#d.volumes.provision(pvName, quantityToUnits(requested));
      const capacity = capacityFor(requested, made.bytes);
      const body = volumeFor(pvc, this.#d.nodeName, made.path, sc?.reclaimPolicy ?? 'Delete', { storageClassName: cls, mode: made.mode, capacity });
      try {
        pv = await this.#d.core.createPersistentVolume({ body });
        this.#d.log.info({ claim: `${namespace}/${name}`, volume: pvName, size: capacity, mode: made.mode, dir: made.path, ms: Math.round(performance.now() - t0) }, 'volume provisioned');
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
        pv = await this.#d.core.readPersistentVolume({ name: pvName });
      }
    }
    const pvName = pv.metadata?.name ?? '';
    if (pv.spec?.claimRef?.uid && pv.spec.claimRef.uid !== uid) return; // belongs to another claim

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
    const pvCapacity = str(pv.spec?.capacity?.storage) ?? '';
    if (pvc.status?.phase !== 'Bound' || pvc.status.capacity?.storage === undefined) {
      // First bind: the claim gets the volume's size; expansion is handled from the next pass on.
      await this.#patchClaimStatus(pvc, { phase: 'Bound', accessModes, capacity: { storage: pvCapacity }, conditions: null, allocatedResourceStatuses: null });
      this.#d.log.info({ claim: `${namespace}/${name}`, volume: pvName, capacity: pvCapacity }, 'claim bound');
      await this.#d.volumes.ensureReady(pv);
      return;
    }
    if (JSON.stringify(pvc.status.accessModes ?? []) !== JSON.stringify(accessModes)) {
      await this.#patchClaimStatus(pvc, { accessModes });
    }
    await this.#d.volumes.ensureReady(pv);
    await this.#resize(pvc, pv, sc);
  }

  #report(pvc: V1PersistentVolumeClaim, kind: string, type: EventType, reason: string, message: string, level: 'info' | 'warn'): void {
    const key = `${pvc.metadata?.uid}/${kind}`;
    if (this.#reported.get(key) === `${reason}:${message}`) return;
    this.#reported.set(key, `${reason}:${message}`);
    this.#d.events.object({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: pvc.metadata?.namespace ?? 'default', name: pvc.metadata?.name ?? '', uid: pvc.metadata?.uid ?? '' }, type, reason, message);
    this.#d.log[level]({ claim: claimKey(pvc), volume: pvc.spec?.volumeName, reason }, message);
  }

  /** A merge patch of the claim's status (`null` removes a field). */
  async #patchClaimStatus(pvc: V1PersistentVolumeClaim, status: { [K in keyof V1PersistentVolumeClaimStatus]?: unknown }): Promise<V1PersistentVolumeClaim> {
    const updated = await this.#d.core.patchNamespacedPersistentVolumeClaimStatus(
      { name: pvc.metadata?.name ?? '', namespace: pvc.metadata?.namespace ?? 'default', body: { status } },
      mergePatch,
    );
    return updated;
  }

  /** Write the resize-owned part of the claim's status only when it differs. */
  async #setResizeStatus(
    pvc: V1PersistentVolumeClaim,
    status: { conditions: V1PersistentVolumeClaimCondition[]; allocatedResourceStatuses?: Record<string, string> | null; allocatedResources?: Record<string, string>; capacity?: Record<string, string> },
  ): Promise<V1PersistentVolumeClaim> {
    const desired = {
      conditions: status.conditions,
      allocatedResourceStatuses: status.allocatedResourceStatuses === undefined ? pvc.status?.allocatedResourceStatuses : status.allocatedResourceStatuses,
      allocatedResources: status.allocatedResources ?? pvc.status?.allocatedResources,
      capacity: status.capacity ?? pvc.status?.capacity,
    };
    if (resizeStatusKey(desired) === resizeStatusKey(pvc.status)) return pvc;
    return this.#patchClaimStatus(pvc, status);
  }

  #facts(pvc: V1PersistentVolumeClaim, pv: V1PersistentVolume, sc: V1StorageClass | undefined) {
    const dir = volumeModeOf(pv) === 'directory';
    const online = this.#d.volumes.onlineExpansion;
    return {
      requested: str(pvc.spec?.resources?.requests?.storage),
      pvCapacity: str(pv.spec?.capacity?.storage),
      claimCapacity: str(pvc.status?.capacity?.storage),
      classAllowsExpansion: sc?.allowVolumeExpansion === true,
      classOnline: sc?.parameters?.[onlineExpansionParameter] !== 'false',
      nodeOnline: dir || online.supported,
      nodeOnlineReason: online.reason,
      inUse: this.#d.volumes.inUse(pv.metadata?.name ?? ''),
    };
  }

  /** Drive the claim through the resize steps as far as they can go now. */
  async #resize(pvc: V1PersistentVolumeClaim, pv: V1PersistentVolume, sc: V1StorageClass | undefined): Promise<void> {
    const pvName = pv.metadata?.name ?? '';
    for (let round = 0; round < 3; round++) {
      const step = nextResizeStep(this.#facts(pvc, pv, sc));
      if (step.kind === 'none') {
        // Nothing left to do: clear resize leftovers (e.g. a lowered request after a failure).
        if ((pvc.status?.conditions ?? []).some((c) => resizeConditionTypes.has(c.type))) {
          await this.#setResizeStatus(pvc, { conditions: (pvc.status?.conditions ?? []).filter((c) => !resizeConditionTypes.has(c.type)), allocatedResourceStatuses: null });
        }
        return;
      }
      if (step.kind === 'refused') {
        this.#report(pvc, 'refused', 'Warning', 'VolumeResizeFailed', `resize of volume ${pvName} refused: ${step.message}`, 'warn');
        return;
      }
      if (step.kind === 'wait') {
        pvc = await this.#setResizeStatus(pvc, { conditions: resizeConditions(pvc.status?.conditions, 'FileSystemResizePending', step.message, Date.now()), allocatedResourceStatuses: { storage: 'NodeResizePending' } });
        this.#report(pvc, 'wait', 'Normal', 'FileSystemResizeRequired', `file system of volume ${pvName} grows to ${step.capacity} when no pod uses it: ${step.message}`, 'info');
        return;
      }
      const next = await this.#d.volumes.withLock(pvName, async () => {
        if (step.kind === 'controller') return this.#controllerStep(pvc, pv, step);
        // Re-check under the lock: a pod may have started on the volume meanwhile.
        const again = nextResizeStep(this.#facts(pvc, pv, sc));
        if (again.kind !== 'filesystem') return { pvc, pv };
        return this.#filesystemStep(pvc, pv, again);
      });
      if (!next) return; // failed and reported; retried next pass
      ({ pvc, pv } = next);
    }
  }

  async #controllerStep(pvc: V1PersistentVolumeClaim, pv: V1PersistentVolume, step: Extract<ResizeStep, { kind: 'controller' }>): Promise<{ pvc: V1PersistentVolumeClaim; pv: V1PersistentVolume } | undefined> {
    const pvName = pv.metadata?.name ?? '';
    const from = str(pv.spec?.capacity?.storage) ?? '';
    const message = `External resizer is resizing volume ${pvName}`;
    pvc = await this.#setResizeStatus(pvc, {
      conditions: resizeConditions(pvc.status?.conditions, 'Resizing', message, Date.now()),
      allocatedResources: { storage: step.to },
      allocatedResourceStatuses: { storage: 'ControllerResizeInProgress' },
    });
    this.#report(pvc, 'controller', 'Normal', 'Resizing', message, 'info');
    const t0 = performance.now();
    if (!this.#started.has(pvc.metadata?.uid ?? '')) this.#started.set(pvc.metadata?.uid ?? '', t0);
    let capacity: string;
    try {
      const bytes = await this.#d.volumes.growDevice(pv, quantityToUnits(step.to));
      capacity = capacityFor(step.to, bytes);
      pv = await this.#d.core.patchPersistentVolume({ name: pvName, body: { spec: { capacity: { storage: capacity } } } }, mergePatch);
    } catch (err) {
      const msg = `resize volume ${pvName} from ${from} to ${step.to} failed: ${describeError(err)}`;
      await this.#setResizeStatus(pvc, { conditions: resizeConditions(pvc.status?.conditions, 'Resizing', message, Date.now(), { type: 'ControllerResizeError', message: msg }) }).catch(() => undefined);
      this.#report(pvc, 'controller-error', 'Warning', 'VolumeResizeFailed', msg, 'warn');
      return undefined;
    }
    this.#d.log.info({ claim: claimKey(pvc), volume: pvName, from, to: capacity, step: 'controller', ms: Math.round(performance.now() - t0) }, 'volume block device expanded');
    this.#d.events.object(this.#ref(pvc), 'Normal', 'VolumeResizeSuccessful', `Resize volume succeeded: ${pvName} is now ${capacity}`);
    pvc = await this.#setResizeStatus(pvc, {
      conditions: resizeConditions(undefined, 'FileSystemResizePending', 'Waiting for the node to finish file system resize of the volume', Date.now()),
      allocatedResourceStatuses: { storage: 'NodeResizePending' },
    });
    return { pvc, pv };
  }

  #ref(pvc: V1PersistentVolumeClaim) {
    return { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: pvc.metadata?.namespace ?? 'default', name: pvc.metadata?.name ?? '', uid: pvc.metadata?.uid ?? '' };
  }

  /** Grow the file system (lock held) and complete the claim's status. */
  async #filesystemStep(pvc: V1PersistentVolumeClaim, pv: V1PersistentVolume, step: Extract<ResizeStep, { kind: 'filesystem' }>): Promise<{ pvc: V1PersistentVolumeClaim; pv: V1PersistentVolume } | undefined> {
    const pvName = pv.metadata?.name ?? '';
    const from = str(pvc.status?.capacity?.storage) ?? '';
    const t0 = performance.now();
    try {
      await this.#d.volumes.growFilesystem(pv, step.online);
    } catch (err) {
      const msg = `MountVolume.NodeExpandVolume failed for volume "${pvName}": ${describeError(err)}`;
      await this.#setResizeStatus(pvc, {
        conditions: resizeConditions(pvc.status?.conditions, 'FileSystemResizePending', 'Waiting for the node to finish file system resize of the volume', Date.now(), { type: 'NodeResizeError', message: msg }),
      }).catch(() => undefined);
      this.#report(pvc, 'node-error', 'Warning', 'FileSystemResizeFailed', msg, 'warn');
      return undefined;
    }
    const ms = Math.round(performance.now() - t0);
    pvc = await this.#setResizeStatus(pvc, { capacity: { storage: step.capacity }, conditions: (pvc.status?.conditions ?? []).filter((c) => !resizeConditionTypes.has(c.type)), allocatedResourceStatuses: null });
    const started = this.#started.get(pvc.metadata?.uid ?? '');
    this.#started.delete(pvc.metadata?.uid ?? '');
    this.#d.log.info(
      { claim: claimKey(pvc), volume: pvName, from, to: step.capacity, step: 'filesystem', online: step.online, ms, ...(started !== undefined ? { totalMs: Math.round(performance.now() - started) } : {}) },
      'volume file system expanded; expansion complete',
    );
    this.#d.events.object(this.#ref(pvc), 'Normal', 'FileSystemResizeSuccessful', `MountVolume.NodeExpandVolume succeeded for volume "${pvName}" (${step.online ? 'online' : 'offline'}, ${from} -> ${step.capacity})`);
    this.#reported.delete(`${pvc.metadata?.uid}/wait`);
    this.#reported.delete(`${pvc.metadata?.uid}/node-error`);
    this.#reported.delete(`${pvc.metadata?.uid}/controller-error`);
    this.#reported.delete(`${pvc.metadata?.uid}/controller`);
    return { pvc, pv };
  }

  /**
   * A pod is about to use a claim's volume (kubelet: NodeStage/NodePublish): make it
   * ready and, when no other pod uses it and its file system is behind the PV, finish
   * the file-system resize first. Returns the directory, or undefined when the PV is
   * not one this agent provisioned (the caller uses its path as it is).
   */
  async stageClaimVolume(pv: V1PersistentVolume, podUid: string): Promise<string | undefined> {
    if (!isOurVolume(pv)) return undefined;
    const ref = pv.spec?.claimRef;
    return this.#d.volumes.stage(pv, podUid, async () => {
      if (!ref?.name || !ref.namespace) return;
      const [pvc, fresh] = await Promise.all([
        this.#d.core.readNamespacedPersistentVolumeClaim({ name: ref.name, namespace: ref.namespace }),
        this.#d.core.readPersistentVolume({ name: pv.metadata?.name ?? '' }),
      ]);
      const cap = str(fresh.spec?.capacity?.storage);
      const have = str(pvc.status?.capacity?.storage);
      if (!cap || !have || !isQuantity(cap) || !isQuantity(have) || compareQuantities(cap, have) <= 0) return;
      const online = volumeModeOf(fresh) === 'directory' || this.#d.volumes.onlineExpansion.supported;
      const done = await this.#filesystemStep(pvc, fresh, { kind: 'filesystem', capacity: cap, online });
      if (!done) throw new Error(`the pending file system resize of volume ${pv.metadata?.name} failed (see the claim's NodeResizeError condition)`);
    });
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
    await this.#d.volumes.remove(pv);
    try {
      await this.#d.core.deletePersistentVolume({ name });
      this.#d.log.info({ volume: name, claim: `${ref?.namespace}/${ref?.name}`, mode: volumeModeOf(pv) }, 'claim deleted; volume and its storage deleted');
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}
