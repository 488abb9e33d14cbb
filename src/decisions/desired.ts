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
 * - The token Secret and the NetworkPolicy (the log server's access control):
 *   `desiredTokenSecret` takes the token (token.ts decides which: the live one, or a
 *   new one) and never makes one itself; with `tokenHash` set, the pod mounts the
 *   Secret read-only and runs the server with `--auth-token-file`, and the
 *   `eventlog.dev/token-hash` annotation (part of the spec hash) changes with the token.
 *
 * Names (fixed, derived from the EventLog name, which is a DNS-1035 label <= 63):
 * - PVC `<name>-data`; Service `<name>`; Secret `<name>-token`; NetworkPolicy `<name>`;
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
import { Component, TOKEN_HASH_ANNOTATION, commonLabels, podAnnotations, podLabels, selectorLabels } from './labels.ts';
import { TOKEN_KEY } from './token.ts';
import { desiredRequest } from './storage.ts';

/** Operator configuration the builders need. */
export interface DesiredOptions {
  /** Image used when `spec.image` is unset (the operator's own image). */
  defaultImage: string;
  /** Server port (container and Service). Default 8080. */
  port?: number;
  /** Where the PVC is mounted in the pod. Default /var/lib/eventlog. */
  dataMountPath?: string;
  /**
   * Fingerprint of the current token (token.ts `tokenFingerprint`). When set, the pod
   * mounts the token Secret and the server requires the token; unset: an open server
   * (unit tests, and a pass before the Secret exists never builds a pod without it).
   */
  tokenHash?: string;
  /** Namespace the operator runs in: its pods may reach every log server. */
  operatorNamespace?: string;
  /**
   * The live PVC's request. The desired request is the larger of it and
   * spec.storage.size (storage.ts `desiredRequest`): a PVC grown by auto-grow or by a
   * person is never shrunk and is not drift.
   */
  pvcRequest?: string;
  /** Pod grace period. Default 30 (the server needs at most 20 s to shut down cleanly). */
  terminationGracePeriodSeconds?: number;
}

export const DEFAULT_PORT = 8080;
export const DEFAULT_DATA_MOUNT_PATH = '/var/lib/eventlog';
export const DEFAULT_OPERATOR_NAMESPACE = 'eventlog-system';
/** Where the token Secret is mounted in the pod (read-only). */
export const TOKEN_MOUNT_PATH = '/etc/eventlog/token';
export const TOKEN_VOLUME_NAME = 'token';
/** Mode of the token file: owner root + group fsGroup read (the server runs as RUN_AS_USER with that fsGroup). */
export const TOKEN_FILE_MODE = 0o440;
/** The label every namespace carries with its own name (Kubernetes >= 1.21). */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';
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

export interface SecretApply {
  apiVersion: 'v1';
  kind: 'Secret';
  metadata: ApplyMetadata;
  type: 'Opaque';
  /** `token`: base64. Never compared for drift (drift.ts): the token is kept, not reset. */
  data: Record<string, string>;
}

export interface NetworkPolicyApply {
  apiVersion: 'networking.k8s.io/v1';
  kind: 'NetworkPolicy';
  metadata: ApplyMetadata;
  spec: JsonObject;
}

export type OwnedKind = 'PersistentVolumeClaim' | 'Pod' | 'Service' | 'Secret' | 'NetworkPolicy';
export type DesiredObject = PvcApply | PodApply | ServiceApply | SecretApply | NetworkPolicyApply;

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
export function tokenSecretName(evl: Pick<EventLog, 'metadata'>): string {
  return `${evl.metadata.name}-token`;
}
export function networkPolicyName(evl: Pick<EventLog, 'metadata'>): string {
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

export function desiredPvc(evl: Evl, opts?: Pick<DesiredOptions, 'pvcRequest'>): PvcApply {
  const spec: PvcApply['spec'] = {
    accessModes: ['ReadWriteOnce'],
    resources: { requests: { storage: desiredRequest(evl.spec.storage.size, opts?.pvcRequest) } },
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
  const auth = opts.tokenHash !== undefined;
  const args = ['--data-dir', mount, '--host', '$(POD_IP)', '--port', String(port), '--durability', DURABILITY_FLAG[evl.spec.durability]];
  // A file from a secret volume rather than env (secretKeyRef): not in the process
  // environment (inherited by children, dumped by crash reporters), and mode 0440.
  if (auth) args.push('--auth-token-file', `${TOKEN_MOUNT_PATH}/${TOKEN_KEY}`);
  // Retention runs inside the server (it owns the segments); the spec is passed as is.
  if (evl.spec.retention?.maxAge !== undefined) args.push('--retention-max-age', evl.spec.retention.maxAge);
  if (evl.spec.retention?.maxBytes !== undefined) args.push('--retention-max-bytes', evl.spec.retention.maxBytes);
  const volumeMounts: Json[] = [{ name: DATA_VOLUME_NAME, mountPath: mount }];
  if (auth) volumeMounts.push({ name: TOKEN_VOLUME_NAME, mountPath: TOKEN_MOUNT_PATH, readOnly: true });
  const container: JsonObject = {
    name: CONTAINER_NAME,
    image: evl.spec.image ?? opts.defaultImage,
    command: ['eventlog-server'],
    args,
    env,
    ports: [{ name: PORT_NAME, containerPort: port }],
    // Probes stay on the open routes (/readyz, /healthz): the kubelet sends no token.
    readinessProbe: { httpGet: { path: '/readyz', port: PORT_NAME }, periodSeconds: 5, failureThreshold: 3 },
    livenessProbe: { httpGet: { path: '/healthz', port: PORT_NAME }, periodSeconds: 10, failureThreshold: 6 },
    volumeMounts,
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
    volumes: [
      { name: DATA_VOLUME_NAME, persistentVolumeClaim: { claimName: pvcName(evl) } },
      ...(auth ? [{ name: TOKEN_VOLUME_NAME, secret: { secretName: tokenSecretName(evl), defaultMode: TOKEN_FILE_MODE } }] : []),
    ],
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
  // The token fingerprint is hashed with the rest: a new token is a rollout (recreate).
  const token: Record<string, string> = opts.tokenHash !== undefined ? { [TOKEN_HASH_ANNOTATION]: opts.tokenHash } : {};
  const withoutHash = { ...podAnnotations(evl, ''), ...token };
  const hash = podSpecHash(spec, labels, withoutHash);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { ...meta(evl, podName(evl), labels), annotations: { ...podAnnotations(evl, hash), ...token } },
    spec,
  };
}

/**
 * The token Secret, holding `token` (the caller decides which token: token.ts). Opaque,
 * owned by the EventLog, so it goes when the EventLog goes.
 */
export function desiredTokenSecret(evl: Evl, token: string): SecretApply {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: meta(evl, tokenSecretName(evl), commonLabels(evl, Component.Auth)),
    type: 'Opaque',
    data: { [TOKEN_KEY]: Buffer.from(token, 'utf8').toString('base64') },
  };
}

/**
 * The NetworkPolicy of the log pod: ingress to the server port only from pods in the
 * operator's namespace (status polls, approved repairs) and from the client pods
 * (`spec.clients.podSelector`, in the EventLog's namespace; default: every pod there).
 * Everything in `spec` is set explicitly (including `protocol: TCP`, which the API
 * server would default), because drift compares these fields exactly (drift.ts): an
 * extra peer or a widened selector is drift, not "a field we do not own".
 *
 * Caveats: only enforced by a CNI that implements NetworkPolicy; kubelet probes come
 * from the node and are not subject to it on most CNIs; other ports of the pod (none
 * today) get no ingress at all once the policy selects the pod.
 */
export function desiredNetworkPolicy(evl: Evl, opts: Pick<DesiredOptions, 'port' | 'operatorNamespace'> = {}): NetworkPolicyApply {
  const port = opts.port ?? DEFAULT_PORT;
  const clients = evl.spec.clients?.podSelector;
  const clientSelector: JsonObject = {};
  if (clients?.matchLabels && Object.keys(clients.matchLabels).length > 0) clientSelector.matchLabels = { ...clients.matchLabels };
  if (clients?.matchExpressions && clients.matchExpressions.length > 0) {
    clientSelector.matchExpressions = clients.matchExpressions.map((e) => ({ key: e.key, operator: e.operator, ...(e.values && e.values.length > 0 ? { values: [...e.values] } : {}) }));
  }
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: meta(evl, networkPolicyName(evl), commonLabels(evl, Component.LogServer)),
    spec: {
      podSelector: { matchLabels: selectorLabels(evl) },
      policyTypes: ['Ingress'],
      ingress: [
        {
          from: [
            { namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: opts.operatorNamespace ?? DEFAULT_OPERATOR_NAMESPACE } } },
            { podSelector: clientSelector },
          ],
          ports: [{ protocol: 'TCP', port }],
        },
      ],
    },
  };
}
