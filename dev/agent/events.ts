/**
 * Kubernetes Events for what the agent does to a pod (Scheduled, Started,
 * Killing, BackOff, Failed, ...), like the kubelet's event recorder, so
 * `kubectl describe pod` tells the story, and for a claim's resize steps
 * (Resizing, FileSystemResizeSuccessful, VolumeResizeFailed, ...). Best effort: a failed write is
 * logged, never fatal.
 */
import type { CoreV1Api, V1Pod } from '@kubernetes/client-node';
import type { Logger } from '../../src/common/logger.ts';
import { describeError } from './kube.ts';
import { formatTime } from '../../src/kube/time.ts';

export type EventType = 'Normal' | 'Warning';

export interface InvolvedObject {
  apiVersion: string;
  kind: string;
  namespace?: string;
  name: string;
  uid?: string;
}

export interface EventRecorder {
  pod(pod: V1Pod, type: EventType, reason: string, message: string, fieldPath?: string): void;
  /** An event about any object (a PersistentVolumeClaim's resize steps). Cluster-scoped objects' events go to "default". */
  object(obj: InvolvedObject, type: EventType, reason: string, message: string): void;
}

export function eventRecorder(core: CoreV1Api, component: string, host: string, log: Logger): EventRecorder {
  let seq = 0;
  const record = (involvedObject: Record<string, unknown>, namespace: string, name: string, type: EventType, reason: string, message: string): void => {
    const now = formatTime(Date.now());
    seq = (seq + 1) % 1_000_000;
    const body = {
      metadata: { name: `${name.slice(0, 200)}.${Date.now().toString(16)}${seq.toString(16)}`, namespace },
      involvedObject,
      type,
      reason,
      message,
      source: { component, host },
      reportingComponent: component,
      reportingInstance: host,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    log.debug({ object: `${involvedObject.kind} ${namespace}/${name}`, reason, message }, 'event');
    core.createNamespacedEvent({ namespace, body: body as never }).catch((err: unknown) => {
      log.warn({ object: `${involvedObject.kind} ${namespace}/${name}`, reason, err: describeError(err) }, 'could not record event');
    });
  };
  return {
    pod(pod, type, reason, message, fieldPath) {
      const namespace = pod.metadata?.namespace ?? 'default';
      const name = pod.metadata?.name ?? 'unknown';
      const involvedObject: Record<string, unknown> = { apiVersion: 'v1', kind: 'Pod', namespace, name, uid: pod.metadata?.uid };
      if (fieldPath) involvedObject.fieldPath = fieldPath;
      record(involvedObject, namespace, name, type, reason, message);
    },
    object(obj, type, reason, message) {
      const namespace = obj.namespace ?? 'default';
      record({ ...obj }, namespace, obj.name, type, reason, message);
    },
  };
}

export const noEvents: EventRecorder = { pod() {}, object() {} };
