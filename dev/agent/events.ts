/**
 * Kubernetes Events for what the agent does to a pod (Scheduled, Started,
 * Killing, BackOff, Failed, ...), like the kubelet's event recorder, so
 * `kubectl describe pod` tells the story. Best effort: a failed write is
 * logged, never fatal.
 */
import type { CoreV1Api, V1Pod } from '@kubernetes/client-node';
import type { Logger } from '../../src/common/logger.ts';
import { describeError } from './kube.ts';
import { rfc3339 } from './pod-status.ts';

export type EventType = 'Normal' | 'Warning';

export interface EventRecorder {
  pod(pod: V1Pod, type: EventType, reason: string, message: string, fieldPath?: string): void;
}

export function eventRecorder(core: CoreV1Api, component: string, host: string, log: Logger): EventRecorder {
  let seq = 0;
  return {
    pod(pod, type, reason, message, fieldPath) {
      const namespace = pod.metadata?.namespace ?? 'default';
      const name = pod.metadata?.name ?? 'unknown';
      const now = rfc3339(Date.now());
      seq = (seq + 1) % 1_000_000;
      const involvedObject: Record<string, unknown> = { apiVersion: 'v1', kind: 'Pod', namespace, name, uid: pod.metadata?.uid };
      if (fieldPath) involvedObject.fieldPath = fieldPath;
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
      log.debug({ pod: `${namespace}/${name}`, reason, message }, 'event');
      core.createNamespacedEvent({ namespace, body: body as never }).catch((err: unknown) => {
        log.warn({ pod: `${namespace}/${name}`, reason, err: describeError(err) }, 'could not record event');
      });
    },
  };
}

export const noEvents: EventRecorder = { pod() {} };
