/**
 * The scheduler for a one-node cluster: every pending pod that asks for the
 * default scheduler (spec.schedulerName unset or "default-scheduler") and has
 * no nodeName is bound to this node through the pods/binding subresource —
 * once its PersistentVolumeClaims exist and are bound, as kube-scheduler's
 * volume binding requires. Until then the pod gets PodScheduled=False,
 * reason Unschedulable, with the reason in the message.
 */
import type { CoreV1Api, V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import type { Logger } from '../../src/common/logger.ts';
import type { EventRecorder } from './events.ts';
import { describeError, isConflict, isNotFound, mergePatch } from './kube.ts';
import { formatTime } from '../../src/kube/time.ts';

export const defaultSchedulerName = 'default-scheduler';

/** Whether this agent should schedule the pod. */
export function wantsScheduling(pod: V1Pod, schedulerNames: readonly string[] = [defaultSchedulerName]): boolean {
  if (pod.spec?.nodeName) return false;
  if (pod.metadata?.deletionTimestamp) return false;
  if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return false;
  const name = pod.spec?.schedulerName ?? defaultSchedulerName;
  return schedulerNames.includes(name);
}

/** Why the pod cannot be placed yet (undefined = it can). */
export function unschedulableReason(pod: V1Pod, claims: ReadonlyMap<string, V1PersistentVolumeClaim>): string | undefined {
  const namespace = pod.metadata?.namespace ?? 'default';
  const missing: string[] = [];
  const unbound: string[] = [];
  for (const v of pod.spec?.volumes ?? []) {
    const claimName = v.persistentVolumeClaim?.claimName;
    if (!claimName) continue;
    const pvc = claims.get(`${namespace}/${claimName}`);
    if (!pvc) missing.push(claimName);
    else if (pvc.metadata?.deletionTimestamp) missing.push(`${claimName} (being deleted)`);
    else if (pvc.status?.phase !== 'Bound') unbound.push(claimName);
  }
  if (missing.length > 0) return `0/1 nodes are available: persistentvolumeclaim ${missing.map((m) => `"${m}"`).join(', ')} not found.`;
  if (unbound.length > 0) return `0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims (${unbound.join(', ')}). preemption: not eligible.`;
  return undefined;
}

export class Binder {
  readonly #core: CoreV1Api;
  readonly #nodeName: string;
  readonly #events: EventRecorder;
  readonly #log: Logger;

  constructor(core: CoreV1Api, nodeName: string, events: EventRecorder, log: Logger) {
    this.#core = core;
    this.#nodeName = nodeName;
    this.#events = events;
    this.#log = log;
  }

  async schedule(pod: V1Pod, claims: ReadonlyMap<string, V1PersistentVolumeClaim>): Promise<void> {
    const name = pod.metadata?.name ?? '';
    const namespace = pod.metadata?.namespace ?? 'default';
    const reason = unschedulableReason(pod, claims);
    if (reason) {
      const prev = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
      if (prev?.status === 'False' && prev.message === reason) return;
      await this.#core.patchNamespacedPodStatus(
        {
          name,
          namespace,
          body: {
            status: {
              phase: 'Pending',
              conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: reason, lastTransitionTime: formatTime(Date.now()), lastProbeTime: null }],
            },
          },
        },
        mergePatch,
      );
      this.#events.pod(pod, 'Warning', 'FailedScheduling', reason);
      this.#log.info({ pod: `${namespace}/${name}`, reason }, 'pod not schedulable yet');
      return;
    }
    try {
      await this.#core.createNamespacedPodBinding({
        name,
        namespace,
        body: {
          apiVersion: 'v1',
          kind: 'Binding',
          metadata: { name, namespace, uid: pod.metadata?.uid },
          target: { apiVersion: 'v1', kind: 'Node', name: this.#nodeName },
        },
      });
    } catch (err) {
      // Already bound (someone else won) or gone: the next pass sees the truth.
      if (isConflict(err) || isNotFound(err)) return;
      throw new Error(`binding pod ${namespace}/${name} to node ${this.#nodeName}: ${describeError(err)}`);
    }
    this.#events.pod(pod, 'Normal', 'Scheduled', `Successfully assigned ${namespace}/${name} to ${this.#nodeName}`);
    this.#log.info({ pod: `${namespace}/${name}`, node: this.#nodeName }, 'pod bound');
  }
}
