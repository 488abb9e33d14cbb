/**
 * Storage growth (spec.storage.autoGrow): when the log's file system is full or past
 * autoGrow.usedPercent, ask for a larger PVC; when an expansion waits for an offline
 * file-system resize and spec.storage.restartPodForResize allows it, delete the pod so
 * the resize can finish. What to do is decided by src/decisions/storage.ts.
 *
 * Guarantees
 * - Only the PVC's `spec.resources.requests.storage` is written (a merge patch as the
 *   operator's field manager); the EventLog's spec, which belongs to Git, never is.
 * - At most one growth is in flight: nothing is asked while the PVC still asks for more
 *   than it has.
 * - The pod is deleted for a resize at most once per PVC request, only while the PVC
 *   reports FileSystemResizePending and the pod runs (a new pod waits for the resize
 *   anyway), with a uid precondition (never a newer pod), and an Event says why.
 */
import type { StorageGrowth } from '../../api/eventlog.ts';
import { formatTime } from '../../kube/time.ts';
import { planGrowth, resizeState, restartForResize, storageUsage, type GrowthPlan } from '../../decisions/storage.ts';
import type { ServerObservation } from '../../decisions/server-status.ts';
import { FIELD_MANAGER } from '../../decisions/labels.ts';
import { Resource } from '../../runtime/resources.ts';
import type { StorageClassInfo } from './storage-class.ts';
import { step, type LiveObjects, type ReconcileContext } from './context.ts';

export interface GrowthResult {
  /** The growth asked for in this pass, for status.storage.growth. */
  growth?: StorageGrowth;
  /** The pod was deleted to finish an offline resize. */
  podRestarted: boolean;
}

export async function maybeGrowStorage(ctx: ReconcileContext, live: LiveObjects, server: ServerObservation | undefined, storageClass: StorageClassInfo | undefined): Promise<GrowthResult> {
  const { log, namespace, evl } = ctx;
  const pvc = live.pvc;
  if (!pvc || evl.spec.suspend) return { podRestarted: false };
  const status = server?.ok ? server.status : undefined;
  const plan: GrowthPlan = planGrowth({ evl, pvc, usage: storageUsage(status), full: status?.state === 'full', allowVolumeExpansion: storageClass?.allowVolumeExpansion });

  if (plan.kind === 'grow') {
    const name = pvc.metadata?.name ?? '';
    await step(ctx, `growing PersistentVolumeClaim ${namespace}/${name} from ${plan.from} to ${plan.to} (autoGrow)`, () =>
      ctx.resources.patch(Resource.persistentVolumeClaims, namespace, name, 'merge', { spec: { resources: { requests: { storage: plan.to } } } }, { query: { fieldManager: FIELD_MANAGER } }),
    );
    log.info({ from: plan.from, to: plan.to, reason: plan.reason }, 'storage auto-grow: PVC expansion requested');
    await ctx.deps.recorder.record(ctx.ref, {
      type: 'Normal',
      reason: 'StorageGrowing',
      note: `autoGrow: expanding PersistentVolumeClaim ${name} from ${plan.from} to ${plan.to} (${plan.reason}); maxSize ${evl.spec.storage.autoGrow?.maxSize}`,
      action: 'GrowStorage',
    });
    return { growth: { from: plan.from, to: plan.to, at: formatTime(ctx.now()), reason: plan.reason.slice(0, 512) }, podRestarted: false };
  }

  const pod = live.pod;
  const request = pvc.spec?.resources?.requests?.storage;
  if (
    restartForResize({
      resize: resizeState(pvc),
      allowed: evl.spec.storage.restartPodForResize,
      podRunning: pod !== undefined && !pod.metadata?.deletionTimestamp && pod.status?.phase === 'Running',
      request,
      restartedFor: ctx.memory.resizeRestartFor,
    }) &&
    pod
  ) {
    const podName = pod.metadata?.name ?? '';
    ctx.memory.resizeRestartFor = request;
    if (pod.metadata?.uid) ctx.memory.podsDeletedByOperator.add(pod.metadata.uid);
    const deleted = await step(ctx, `deleting Pod ${namespace}/${podName} so the file system resize of its volume can finish (restartPodForResize)`, () =>
      ctx.resources.deleteOptional(Resource.pods, namespace, podName, pod.metadata?.uid ? { uid: pod.metadata.uid } : {}),
    );
    // Already gone, or already replaced by a newer pod (uid precondition): nothing to restart.
    if (!deleted) return { podRestarted: false };
    log.warn({ pod: podName }, 'pod deleted so the offline file-system resize can finish; it is recreated on the same volume');
    await ctx.deps.recorder.record(ctx.ref, {
      type: 'Normal',
      reason: 'RestartedForResize',
      note: `PersistentVolumeClaim ${pvc.metadata?.name} waits for an offline file-system resize (FileSystemResizePending): pod ${podName} deleted (spec.storage.restartPodForResize); it is recreated on the same volume when the resize is done`,
      action: 'GrowStorage',
    });
    return { podRestarted: true };
  }
  return { podRestarted: false };
}
