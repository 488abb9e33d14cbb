/** Shared fixtures for the controller decision-layer tests. */
import { parseEventLog, type EventLog, type EventLogSpecInput } from '../../../src/api/eventlog.ts';
import { desiredPod, desiredPvc, desiredService, type DesiredOptions, type DesiredObject } from '../../../src/decisions/desired.ts';
import { SPEC_HASH_ANNOTATION } from '../../../src/decisions/labels.ts';
import type { ServerStatus } from '../../../src/decisions/server-status.ts';
import type { StatusInput } from '../../../src/decisions/status.ts';

export const OPTS: DesiredOptions = { defaultImage: 'eventlog:dev' };
export const NOW = new Date('2026-11-22T05:00:00.000Z');

export function at(seconds: number): Date {
  return new Date(NOW.getTime() + seconds * 1000);
}

export function makeEvl(spec: Partial<EventLogSpecInput> = {}, meta: Record<string, unknown> = {}): EventLog {
  const r = parseEventLog({
    apiVersion: 'eventlog.dev/v1alpha1',
    kind: 'EventLog',
    metadata: { name: 'orders', namespace: 'shop', uid: 'uid-1', generation: 1, ...meta },
    spec: { storage: { size: '1Gi' }, ...spec },
  });
  if (!r.success) throw new Error(r.error);
  return r.data;
}

/** A deep copy that can be edited freely. */
export function clone<T>(v: T): T {
  return structuredClone(v);
}

/**
 * What the API server (and admission, and the kubelet) would make of an applied
 * object: the same fields plus the defaults and additions they make.
 */
export function asLive(desired: DesiredObject): Record<string, any> {
  const o = clone(desired) as Record<string, any>;
  o.metadata.uid = 'live-uid';
  o.metadata.resourceVersion = '42';
  o.metadata.creationTimestamp = '2026-11-22T04:00:00Z';
  o.metadata.labels['someone-else/added'] = 'x';
  if (o.kind === 'Pod') {
    const s = o.spec;
    s.restartPolicy = 'Always';
    s.dnsPolicy = 'ClusterFirst';
    s.schedulerName = 'default-scheduler';
    s.serviceAccountName = 'default';
    s.nodeName = 'eventlog-node';
    s.enableServiceLinks = true;
    s.preemptionPolicy = 'PreemptLowerPriority';
    s.priority = 0;
    s.tolerations = [
      ...(s.tolerations ?? []),
      { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
      { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
    ];
    for (const c of s.containers) {
      c.terminationMessagePath = '/dev/termination-log';
      c.imagePullPolicy = 'IfNotPresent';
      for (const p of c.ports) p.protocol = 'TCP';
      for (const e of c.env) if (e.valueFrom?.fieldRef) e.valueFrom.fieldRef.apiVersion = 'v1';
      for (const probe of [c.readinessProbe, c.livenessProbe]) {
        probe.httpGet.scheme = 'HTTP';
        probe.timeoutSeconds = 1;
        probe.successThreshold = 1;
      }
    }
    o.status = { phase: 'Running', podIP: '127.1.0.7' };
  }
  if (o.kind === 'Service') {
    o.spec.clusterIP = '10.0.0.12';
    o.spec.clusterIPs = ['10.0.0.12'];
    o.spec.sessionAffinity = 'None';
    o.spec.ipFamilies = ['IPv4'];
    o.spec.internalTrafficPolicy = 'Cluster';
    for (const p of o.spec.ports) p.protocol = 'TCP';
  }
  if (o.kind === 'PersistentVolumeClaim') {
    o.spec.volumeMode = 'Filesystem';
    o.spec.volumeName = 'pvc-live-uid';
    o.spec.storageClassName ??= 'eventlog-local';
    o.status = { phase: 'Bound', capacity: { storage: o.spec.resources.requests.storage } };
  }
  return o;
}

export function serverStatus(over: Partial<ServerStatus> = {}): ServerStatus {
  return {
    state: 'ready',
    version: '0.1.0',
    durability: 'fsync',
    startedAt: '2026-11-22T04:59:00.000Z',
    bootId: 'boot-1',
    recovery: {
      outcome: 'Clean',
      startedAt: '2026-11-22T04:59:00.100Z',
      durationMs: 12,
      segmentsScanned: 1,
      bytesScanned: 100,
      recordsRecovered: 10,
      bytesTruncated: 0,
    },
    stats: { total: 10, bytes: 1000, lastSequence: 10, segments: 1, diskBytes: 1400 },
    ...over,
  };
}

/** A status input whose pod and PVC are loosely typed, so tests can edit any field. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type LooseStatusInput = Omit<StatusInput, 'pod' | 'pvc'> & { pod: any; pvc: any };

/** The desired pod as the kubelet reports it running: scheduled, ready, never restarted. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function livePod(evl: EventLog): any {
  const p = asLive(desiredPod(evl, OPTS));
  p.status = {
    phase: 'Running',
    podIP: '127.1.0.7',
    conditions: [
      { type: 'PodScheduled', status: 'True' },
      { type: 'Ready', status: 'True' },
    ],
    containerStatuses: [{ name: 'server', ready: true, restartCount: 0, started: true, state: { running: { startedAt: '2026-11-22T04:59:00Z' } } }],
  };
  return p;
}

/** A healthy EventLog: everything exists, bound, ready, server ready. */
export function healthy(evl: EventLog = makeEvl()): LooseStatusInput {
  const pod = livePod(evl);
  return {
    evl,
    pvc: asLive(desiredPvc(evl, OPTS)),
    pod,
    service: asLive(desiredService(evl, OPTS)) as never,
    server: { ok: true, status: serverStatus() },
    drift: { items: [], outcome: 'none' },
    desiredPodHash: pod.metadata.annotations[SPEC_HASH_ANNOTATION],
    now: NOW,
  };
}
