/**
 * Desired owned objects of one EventLog: pure functions of the (parsed, defaulted)
 * EventLog and the operator's configuration. No I/O.
 *
 * Guarantees:
 * - Each builder returns a server-side apply configuration: apiVersion, kind,
 *   metadata (name, namespace, labels, annotations, ownerReferences) and exactly the
 *   spec fields the operator owns. Nothing the API server, admission or the kubelet
 *   defaults is included (e.g. `restartPolicy`, `dnsPolicy`, `terminationMessagePath`,
 *   port `protocol`, `fieldRef.apiVersion`, `volumeMode`, `clusterIP`,
 *   `sessionAffinity`), so the field manager owns only what we decide and drift
 *   detection (drift.ts) compares only those fields.
 * - The result is deterministic (same input, same object, same key order), so
 *   `podSpecHash` is stable across operator restarts and versions that build the same
 *   pod.
 * - Every object has one owner reference to the EventLog with `controller: true` and
 *   `blockOwnerDeletion: true` (garbage collection and the owner->reconcile mapping).
 *
 * Names (fixed, derived from the EventLog name, which is a DNS-1035 label <= 63):
 * - PVC `<name>-data`; Service `<name>`;
 * - pod `<name>-0`. A fixed name (not generateName) is deliberate: the API server
 *   refuses a second pod with the same name until the old one is fully gone, so a
 *   recreated pod can never run next to the old one on the ReadWriteOnce volume (the
 *   StatefulSet "at most one" guarantee, without a StatefulSet). The `-0` suffix reads
 *   as "instance 0" (room for a replica later), and keeps the pod distinct from the
 *   Service of the same EventLog in events and `kubectl get all`.
 *
 * Caveats:
 * - Throws if the EventLog has no `metadata.uid` or `metadata.namespace` (an object
 *   read from the API always has both; a hand-built test object may not).
 * - The Service has no ClusterIP routing in the local cluster (no kube-proxy); the
 *   operator talks to the pod IP. The Service is for clients.
 */
import { createHash } from 'node:crypto';
import { API_VERSION, Durability, KIND, type EventLog } from '../api/eventlog.ts';
import { Component, commonLabels, podAnnotations, podLabels, selectorLabels } from './labels.ts';

/** Operator configuration the builders need. */
export interface DesiredOptions {
  /** Image used when `spec.image` is unset (the operator's own image). */
  defaultImage: string;
  /** Server port (container and Service). Default 8080. */
  port?: number;
  /** Where the PVC is mounted in the pod. Default /var/lib/eventlog. */
  dataMountPath?: string;
  /** Secret with the server's bearer token; when set, the pod gets EVENTLOG_TOKEN from it. */
  tokenSecretName?: string;
  /** Key in that Secret. Default `token`. */
  tokenSecretKey?: string;
  /** Pod grace period. Default 30 (the server needs at most 20 s to shut down cleanly). */
  terminationGracePeriodSeconds?: number;
}

export const DEFAULT_PORT = 8080;
export const DEFAULT_DATA_MOUNT_PATH = '/var/lib/eventlog';
export const DEFAULT_TOKEN_SECRET_KEY = 'token';
export const DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS = 30;
/** Name of the server container (drift paths and status refer to it). */
export const CONTAINER_NAME = 'server';
export const DATA_VOLUME_NAME = 'data';
export const PORT_NAME = 'http';
/** The non-root user of the image (distroless "nonroot"). */
export const RUN_AS_USER = 65532;

/** Durability of the spec -> value of the server's --durability flag. */
export const DURABILITY_FLAG: Record<Durability, 'fsync' | 'interval' | 'none'> = {
  [Durability.Fsync]: 'fsync',
  [Durability.Interval]: 'interval',
  [Durability.None]: 'none',
};

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller: true;
  blockOwnerDeletion: true;
}

export interface ApplyMetadata {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences: OwnerReference[];
}

export interface PvcApply {
  apiVersion: 'v1';
  kind: 'PersistentVolumeClaim';
  metadata: ApplyMetadata;
  spec: {
    accessModes: ['ReadWriteOnce'];
    resources: { requests: { storage: string } };
    storageClassName?: string;
  };
}

export interface PodApply {
  apiVersion: 'v1';
  kind: 'Pod';
  metadata: ApplyMetadata & { annotations: Record<string, string> };
  spec: JsonObject;
}

export interface ServiceApply {
  apiVersion: 'v1';
  kind: 'Service';
  metadata: ApplyMetadata;
  spec: {
    type: 'ClusterIP';
    selector: Record<string, string>;
    ports: [{ name: string; port: number; targetPort: string }];
  };
}

export type OwnedKind = 'PersistentVolumeClaim' | 'Pod' | 'Service';
export type DesiredObject = PvcApply | PodApply | ServiceApply;

type Evl = Pick<EventLog, 'metadata' | 'spec'>;

export function pvcName(evl: Pick<EventLog, 'metadata'>): string {
  return `${evl.metadata.name}-data`;
}
export function podName(evl: Pick<EventLog, 'metadata'>): string {
  return `${evl.metadata.name}-0`;
}
export function serviceName(evl: Pick<EventLog, 'metadata'>): string {
  return evl.metadata.name;
}

/** In-cluster URL of the log server through its Service. */
export function endpointUrl(evl: Pick<EventLog, 'metadata'>, opts: Pick<DesiredOptions, 'port'> = {}): string {
  return `http://${serviceName(evl)}.${namespaceOf(evl)}.svc:${opts.port ?? DEFAULT_PORT}`;
}

function namespaceOf(evl: Pick<EventLog, 'metadata'>): string {
  const ns = evl.metadata.namespace;
  if (!ns) throw new Error(`EventLog ${evl.metadata.name}: metadata.namespace is required to build owned objects`);
  return ns;
}

/** The owner reference every owned object carries. */
export function ownerReference(evl: Pick<EventLog, 'metadata'>): OwnerReference {
  const uid = evl.metadata.uid;
  if (!uid) throw new Error(`EventLog ${evl.metadata.namespace ?? ''}/${evl.metadata.name}: metadata.uid is required for an owner reference`);
  return { apiVersion: API_VERSION, kind: KIND, name: evl.metadata.name, uid, controller: true, blockOwnerDeletion: true };
}

function meta(evl: Evl, name: string, labels: Record<string, string>): ApplyMetadata {
  return { name, namespace: namespaceOf(evl), labels, ownerReferences: [ownerReference(evl)] };
}

export function desiredPvc(evl: Evl, _opts?: DesiredOptions): PvcApply {
  const spec: PvcApply['spec'] = {
    accessModes: ['ReadWriteOnce'],
    resources: { requests: { storage: evl.spec.storage.size } },
  };
  if (evl.spec.storage.storageClassName !== undefined) spec.storageClassName = evl.spec.storage.storageClassName;
  return { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: meta(evl, pvcName(evl), commonLabels(evl, Component.Storage)), spec };
}

export function desiredService(evl: Evl, opts: Pick<DesiredOptions, 'port'> = {}): ServiceApply {
  const port = opts.port ?? DEFAULT_PORT;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(evl, serviceName(evl), commonLabels(evl, Component.LogServer)),
    spec: {
      type: 'ClusterIP',
      selector: selectorLabels(evl),
      ports: [{ name: PORT_NAME, port, targetPort: PORT_NAME }],
    },
  };
}

/** Only the resource keys the user set (no empty objects). */
function resources(evl: Evl): JsonObject | undefined {
  const r = evl.spec.resources;
  if (!r) return undefined;
  const out: JsonObject = {};
  for (const side of ['requests', 'limits'] as const) {
    const list = r[side];
    if (!list) continue;
    const m: JsonObject = {};
    if (list.cpu !== undefined) m.cpu = list.cpu;
    if (list.memory !== undefined) m.memory = list.memory;
    if (Object.keys(m).length > 0) out[side] = m;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** The pod spec (without metadata). */
export function desiredPodSpec(evl: Evl, opts: DesiredOptions): JsonObject {
  const port = opts.port ?? DEFAULT_PORT;
  const mount = opts.dataMountPath ?? DEFAULT_DATA_MOUNT_PATH;
  const env: Json[] = [{ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }];
  if (opts.tokenSecretName) {
    env.push({ name: 'EVENTLOG_TOKEN', valueFrom: { secretKeyRef: { name: opts.tokenSecretName, key: opts.tokenSecretKey ?? DEFAULT_TOKEN_SECRET_KEY } } });
  }
  const container: JsonObject = {
    name: CONTAINER_NAME,
    image: evl.spec.image ?? opts.defaultImage,
    command: ['eventlog-server'],
    args: ['--data-dir', mount, '--host', '$(POD_IP)', '--port', String(port), '--durability', DURABILITY_FLAG[evl.spec.durability]],
    env,
    ports: [{ name: PORT_NAME, containerPort: port }],
    readinessProbe: { httpGet: { path: '/readyz', port: PORT_NAME }, periodSeconds: 5, failureThreshold: 3 },
    livenessProbe: { httpGet: { path: '/healthz', port: PORT_NAME }, periodSeconds: 10, failureThreshold: 6 },
    volumeMounts: [{ name: DATA_VOLUME_NAME, mountPath: mount }],
    // The server writes its own JSON report there; fall back to the log tail otherwise.
    terminationMessagePolicy: 'FallbackToLogsOnError',
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    },
  };
  const res = resources(evl);
  if (res) container.resources = res;

  const spec: JsonObject = {
    automountServiceAccountToken: false,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: RUN_AS_USER,
      runAsGroup: RUN_AS_USER,
      fsGroup: RUN_AS_USER,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    terminationGracePeriodSeconds: opts.terminationGracePeriodSeconds ?? DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS,
    containers: [container],
    volumes: [{ name: DATA_VOLUME_NAME, persistentVolumeClaim: { claimName: pvcName(evl) } }],
  };
  const t = evl.spec.podTemplate;
  if (t?.nodeSelector && Object.keys(t.nodeSelector).length > 0) spec.nodeSelector = { ...t.nodeSelector };
  if (t?.tolerations && t.tolerations.length > 0) spec.tolerations = t.tolerations.map((x) => ({ ...x }) as JsonObject);
  if (t?.affinity && Object.keys(t.affinity).length > 0) spec.affinity = structuredClone(t.affinity) as JsonObject;
  if (t?.priorityClassName !== undefined) spec.priorityClassName = t.priorityClassName;
  return spec;
}

/** JSON with object keys sorted, for hashing. */
export function stableStringify(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stableStringify(o[k])}`)
    .join(',')}}`;
}

/**
 * Hash of what the operator wants the pod to be: the pod spec plus the user's pod
 * labels/annotations (16 hex chars of SHA-256). Stored in the `eventlog.dev/spec-hash`
 * annotation; a live pod with another hash predates the current spec (a rollout).
 */
export function podSpecHash(spec: JsonObject, labels: Record<string, string>, userAnnotations: Record<string, string> | undefined): string {
  return createHash('sha256')
    .update(stableStringify({ spec, labels, annotations: userAnnotations ?? {} }))
    .digest('hex')
    .slice(0, 16);
}

export function desiredPod(evl: Evl, opts: DesiredOptions): PodApply {
  const spec = desiredPodSpec(evl, opts);
  const labels = podLabels(evl);
  const withoutHash = podAnnotations(evl, '');
  const hash = podSpecHash(spec, labels, withoutHash);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { ...meta(evl, podName(evl), labels), annotations: podAnnotations(evl, hash) },
    spec,
  };
}

/** All three desired objects, in creation order (PVC first: the pod needs it). */
export function desiredObjects(evl: Evl, opts: DesiredOptions): [PvcApply, ServiceApply, PodApply] {
  return [desiredPvc(evl, opts), desiredService(evl, opts), desiredPod(evl, opts)];
}
