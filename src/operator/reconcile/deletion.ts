/**
 * Deletion of an EventLog (the Cleanup half of kube-rs' finalizer wrapper): honour
 * `spec.storage.retentionPolicy`, then remove the finalizer so garbage collection takes
 * the owned objects.
 *
 * Guarantees
 * - retentionPolicy Retain: the PVC is read from the API server, not the cache (a claim
 *   the cache has not seen yet must not be left to garbage collection by mistake), and
 *   its owner reference is removed with a guarded JSON patch before the finalizer goes.
 * - The finalizer is removed with a guarded patch that never clobbers other finalizers.
 * - An EventLog already gone (404) ends the pass quietly.
 */
import { FINALIZER, RetentionPolicy } from '../../api/eventlog.ts';
import { pvcName } from '../../decisions/desired.ts';
import { removeFinalizer, type FinalizerTarget } from '../../runtime/finalizer.ts';
import { Outcome, type ReconcileOutcome } from '../../runtime/reconcile.ts';
import { Resource } from '../../runtime/resources.ts';
import type { KubeObject } from '../../runtime/store.ts';
import { codeOf, step, type ReconcileContext } from './context.ts';

function ownerRefIndex(obj: KubeObject | undefined, uid: string | undefined): number {
  return obj?.metadata?.ownerReferences?.findIndex((r) => r.uid === uid) ?? -1;
}

export async function finalize(ctx: ReconcileContext, target: FinalizerTarget): Promise<ReconcileOutcome> {
  const { evl, namespace, log } = ctx;
  const meta = ctx.raw.metadata ?? {};
  if (!meta.finalizers?.includes(FINALIZER)) return Outcome.done();
  if (evl.spec.storage.retentionPolicy === RetentionPolicy.Retain) await releaseClaim(ctx, meta.uid);
  try {
    await step(ctx, 'removing the finalizer', () => removeFinalizer(ctx.deps.http, target, FINALIZER));
  } catch (error) {
    // Gone already: a pass on a stale cache after our own removal let it be deleted.
    if (codeOf(error) === 404) return Outcome.done();
    throw error;
  }
  log.info({ retentionPolicy: evl.spec.storage.retentionPolicy }, 'finalized');
  return Outcome.done();

  /** retentionPolicy Retain: the PVC outlives the EventLog (its owner reference goes). */
  async function releaseClaim(c: ReconcileContext, uid: string | undefined): Promise<void> {
    const claim = pvcName(evl);
    const pvc = await step(c, `reading PersistentVolumeClaim ${namespace}/${claim}`, () => c.resources.getOptional<KubeObject>(Resource.persistentVolumeClaims, namespace, claim));
    const i = ownerRefIndex(pvc, uid);
    if (!pvc || i < 0) return;
    await step(c, `removing the owner reference from PersistentVolumeClaim ${namespace}/${claim} (retentionPolicy Retain)`, () =>
      c.resources.patch(Resource.persistentVolumeClaims, namespace, claim, 'json', [
        { op: 'test', path: `/metadata/ownerReferences/${i}/uid`, value: uid },
        { op: 'remove', path: `/metadata/ownerReferences/${i}` },
      ]),
    );
    await c.deps.recorder.record(c.ref, {
      type: 'Normal',
      reason: 'StorageRetained',
      note: `retentionPolicy Retain: PersistentVolumeClaim ${claim} is kept (owner reference removed); delete it by hand when the data is no longer needed`,
      action: 'Finalize',
    });
    log.info({ pvc: claim }, 'PVC retained: owner reference removed');
  }
}
