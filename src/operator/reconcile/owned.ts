/**
 * The owned objects: the token Secret first (the pod mounts it and its spec hash
 * follows the token), then PVC, Secret labels, NetworkPolicy, Service and pod, each
 * planned by src/decisions/plan.ts and written here.
 *
 * Guarantees
 * - A terminating PVC is waited for, never raced: nothing is applied meanwhile.
 * - The NetworkPolicy is applied before the pod, so the pod never runs unprotected on
 *   a CNI that enforces it.
 * - Owned objects are written with server-side apply under FIELD_MANAGER; `force` only
 *   when putting back fields another manager took (driftPolicy Correct).
 * - One pod at a time on the ReadWriteOnce PVC: a pod is recreated only after the old
 *   one is gone (fixed name, uid precondition on the delete).
 * - An owned object the label-filtered caches lack although it existed before is read
 *   from the API server: it may only have lost the managed-by label the watches select
 *   on, which is label drift, not a deletion.
 *
 * Caveats
 * - A deleted owned object is always recreated (the pod is disposable, the PVC is the
 *   identity), also under driftPolicy Report; Report leaves changed *fields* alone.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { DriftPolicy } from '../../api/eventlog.ts';
import { desiredNetworkPolicy, desiredPod, desiredPvc, desiredService, desiredTokenSecret, tokenSecretName, type DesiredObject } from '../../decisions/desired.ts';
import { listsToReplace, type DriftFinding } from '../../decisions/drift.ts';
import { FIELD_MANAGER, SPEC_HASH_ANNOTATION, TOKEN_HASH_ANNOTATION } from '../../decisions/labels.ts';
import { needsRolloutSlot } from '../../decisions/rollout.ts';
import { combineDrift, existedBefore, objectAction, planObject } from '../../decisions/plan.ts';
import type { DriftInput } from '../../decisions/status.ts';
import { TOKEN_KEY, tokenFingerprint } from '../../decisions/token.ts';
import { Resource, type ResourceType } from '../../runtime/resources.ts';
import type { KubeObject } from '../../runtime/store.ts';
import { ensureTokenSecret } from '../token-secret.ts';
import { step, type LiveObjects, type ReconcileContext } from './context.ts';
import { rolloutPod } from './rollout.ts';

/** The desired objects of one pass (the pod's depends on the token, once known). */
export interface DesiredSet {
  pvc: DesiredObject;
  service: DesiredObject;
  networkPolicy: DesiredObject;
  pod: ReturnType<typeof desiredPod>;
}

export function desiredSet(ctx: ReconcileContext, token: string | undefined): DesiredSet {
  const { evl, desiredOptions: opts } = ctx;
  return {
    pvc: desiredPvc(evl, { pvcRequest: ctx.livePvcRequest }),
    service: desiredService(evl, opts),
    networkPolicy: desiredNetworkPolicy(evl, opts),
    pod: desiredPod(evl, { ...opts, ...(token !== undefined ? { tokenHash: tokenFingerprint(token) } : {}) }),
  };
}

export interface OwnedResult {
  desired: DesiredSet;
  drift: DriftInput;
  /** Something is terminating: poll again soon. */
  waiting: boolean;
}

/** Suspended: report what differs, change nothing. */
export function reportOwnedDrift(ctx: ReconcileContext, live: LiveObjects): OwnedResult {
  const desired = desiredSet(ctx, live.token);
  const items = [
    ...planObject('PersistentVolumeClaim', desired.pvc, live.pvc, false).drift,
    ...(live.secret && live.token !== undefined ? planObject('Secret', desiredTokenSecret(ctx.evl, live.token), live.secret, false).drift : []),
    ...planObject('NetworkPolicy', desired.networkPolicy, live.networkPolicy, false).drift,
    ...planObject('Service', desired.service, live.service, false).drift,
    ...planObject('Pod', desired.pod, live.pod, false).drift,
  ];
  return { desired, drift: { items, outcome: 'none' }, waiting: false };
}

/** Makes the owned objects what the spec asks (or records why not). Updates `live`. */
export async function applyOwned(ctx: ReconcileContext, live: LiveObjects): Promise<OwnedResult> {
  const { log, namespace } = ctx;
  if (live.pvc?.metadata?.deletionTimestamp !== undefined) {
    log.info('PersistentVolumeClaim is terminating: waiting for it to be gone before creating anything');
    return { desired: desiredSet(ctx, live.token), drift: { items: [], outcome: 'none' }, waiting: true };
  }
  const { items, outcomes } = await ensureToken(ctx, live);
  const errors: string[] = [];
  const desired = desiredSet(ctx, live.token);
  const token = live.token as string;
  const order: Array<{ desired: DesiredObject; get: () => KubeObject | undefined; set: (o: KubeObject) => void }> = [
    { desired: desired.pvc, get: () => live.pvc, set: (o) => (live.pvc = o as LiveObjects['pvc']) },
    // Labels, owner reference and type only (drift.ts never compares the token).
    { desired: desiredTokenSecret(ctx.evl, token), get: () => live.secret, set: (o) => (live.secret = o) },
    { desired: desired.networkPolicy, get: () => live.networkPolicy, set: (o) => (live.networkPolicy = o) },
    { desired: desired.service, get: () => live.service, set: (o) => (live.service = o as LiveObjects['service']) },
    { desired: desired.pod, get: () => live.pod, set: (o) => (live.pod = o as LiveObjects['pod']) },
  ];
  let waiting = false;
  const correct = ctx.evl.spec.driftPolicy === DriftPolicy.Correct;
  for (const o of order) {
    const r = await reconcileObject(ctx, o.desired, o.get(), existedBefore(o.desired.kind, ctx.old) && !deletedByOperator(ctx, o.desired.kind), correct, o.set);
    items.push(...r.items);
    if (r.outcome) outcomes.push(r.outcome);
    if (r.error) errors.push(r.error);
    waiting ||= r.waiting;
  }
  return { desired, drift: combineDrift(items, outcomes, errors), waiting };
}

/**
 * The token Secret before the pod: the pod mounts it, and the pod's desired spec
 * depends on the token. A valid token is never replaced; a deleted Secret or an invalid
 * token is drift that this step corrects.
 */
async function ensureToken(ctx: ReconcileContext, live: LiveObjects): Promise<{ items: DriftFinding[]; outcomes: DriftInput['outcome'][] }> {
  const { log, namespace } = ctx;
  const secret = tokenSecretName(ctx.evl);
  const ensured = await step(ctx, `ensuring the token Secret ${namespace}/${secret}`, () =>
    ensureTokenSecret({ http: ctx.deps.http, applier: ctx.deps.applier, ...(ctx.deps.newToken ? { newToken: ctx.deps.newToken } : {}) }, ctx.evl, live.secret),
  );
  live.secret = ensured.secret;
  live.token = ensured.token;
  const items: DriftFinding[] = [];
  const outcomes: DriftInput['outcome'][] = [];
  if (ensured.created) log.info({ secret }, ctx.old?.tokenSecret !== undefined ? 'token Secret was deleted: created it with a new token' : 'token Secret created');
  if (ensured.created && ctx.old?.tokenSecret !== undefined) {
    items.push({ kind: 'Secret', name: secret, path: '.', expected: 'present', actual: 'deleted' });
    outcomes.push('corrected');
  }
  if (ensured.regenerated) {
    log.warn({ secret }, 'token Secret held no valid token: wrote a new one');
    items.push({ kind: 'Secret', name: secret, path: `data.${TOKEN_KEY}`, expected: 'a valid token', actual: 'missing or invalid' });
    outcomes.push('corrected');
  }
  return { items, outcomes };
}

/** The pod the last status knew was deleted by the operator itself: recreating it is not drift. */
function deletedByOperator(ctx: ReconcileContext, kind: DesiredObject['kind']): boolean {
  const uid = ctx.old?.pod?.uid;
  return kind === 'Pod' && uid !== undefined && ctx.memory.podsDeletedByOperator.has(uid);
}

interface ObjectResult {
  items: DriftFinding[];
  outcome?: DriftInput['outcome'];
  error?: string;
  waiting: boolean;
}

async function reconcileObject(
  ctx: ReconcileContext,
  desired: DesiredObject,
  cached: KubeObject | undefined,
  existed: boolean,
  correct: boolean,
  set: (o: KubeObject) => void,
): Promise<ObjectResult> {
  const { log, namespace } = ctx;
  const kind = desired.kind;
  const name = desired.metadata.name;
  const type = RESOURCE_OF[kind];
  let live = cached;
  if (live === undefined && existed) {
    live = await step(ctx, `reading ${kind} ${namespace}/${name} (not in the cache)`, () => ctx.resources.getOptional<KubeObject>(type, namespace, name));
    if (live) {
      log.debug({ kind, object: name }, 'owned object is not in the cache but exists: its watched labels were changed');
      set(live);
    }
  }
  // Terminating (a deleted pod, or one we deleted for a rollout): wait for it to go.
  if (live?.metadata?.deletionTimestamp) return { items: [], waiting: true };
  // A template rollout of a serving pod waits for a rollout slot (reconcile/rollout.ts); the pod is left as it is meanwhile.
  if (kind === 'Pod' && live && !ctx.mayRollPod && needsRolloutSlot(podTemplateOf(desired), rolloutPod(live as LiveObjects['pod']))) {
    log.debug({ kind, object: name }, 'pod runs an older template: its rollout waits for a slot');
    return { items: [], waiting: false };
  }
  const plan = planObject(kind, desired, live, existed);
  const apply = async (force: boolean): Promise<KubeObject> =>
    step(ctx, `applying ${kind} ${namespace}/${name}${force ? ' (force: correcting drift)' : ''}`, async () =>
      // ManifestApplier returns the API server's JSON as-is (plain objects, string times).
      (await ctx.deps.applier.apply(desired as unknown as KubernetesObject, FIELD_MANAGER, force ? { force: true } : {})) as unknown as KubeObject,
    );
  const action = objectAction(plan, correct);
  try {
    switch (action) {
      case 'create': {
        set(await apply(false));
        // A new pod: the uids of the ones the operator deleted are no longer needed.
        if (kind === 'Pod') ctx.memory.podsDeletedByOperator.clear();
        log.info({ kind, object: name }, plan.existedBefore ? 'recreated a deleted object' : 'created');
        return plan.existedBefore ? { items: [{ kind, name, path: '.', expected: 'present', actual: 'deleted' }], outcome: 'corrected', waiting: false } : { items: [], waiting: false };
      }
      case 'recreate-pod':
        if (live?.metadata?.uid) ctx.memory.podsDeletedByOperator.add(live.metadata.uid);
        await step(ctx, `deleting Pod ${namespace}/${name} to recreate it on the same volume`, () => ctx.resources.deleteOptional(Resource.pods, namespace, name, { ...uidOf(live) }));
        log.info({ rollout: plan.rollout.map((f) => f.path), drift: plan.drift.map((f) => f.path) }, 'pod deleted: immutable fields differ; it is recreated when gone');
        return { items: plan.drift, ...(plan.drift.length > 0 ? { outcome: 'correcting' as const } : {}), waiting: true };
      case 'correct': {
        const lists = listsToReplace(kind, plan.drift);
        if (lists.length > 0 && live) {
          const current = live;
          await step(ctx, `replacing ${lists.join(', ')} of ${kind} ${namespace}/${name} (correcting drift)`, () => replaceLists(ctx, type, desired, current, lists));
        }
        await apply(true);
        log.info({ kind, drift: plan.drift.map((f) => f.path) }, 'drift corrected');
        return { items: plan.drift, outcome: 'corrected', waiting: false };
      }
      case 'report':
        // driftPolicy Report leaves the changed fields alone but still rolls out ours.
        if (plan.rollout.length > 0) {
          await apply(false);
          log.info({ kind, rollout: plan.rollout.map((f) => f.path) }, 'rolled out');
        }
        return { items: plan.drift, outcome: 'none', waiting: false };
      case 'rollout':
        await apply(false);
        log.info({ kind, rollout: plan.rollout.map((f) => f.path) }, 'rolled out');
        return { items: [], waiting: false };
      case 'nothing':
        return { items: [], waiting: false };
    }
  } catch (error) {
    // A failed correction is status (Drifted, the error), not a failed pass; a failed
    // first create is a failed pass (back-off).
    if (plan.drift.length > 0 || plan.existedBefore) return { items: plan.drift, outcome: 'failed', error: (error as Error).message, waiting: false };
    throw error;
  }
}

/** The resource of each owned kind (for reads and patches by name). */
const RESOURCE_OF: Record<DesiredObject['kind'], ResourceType> = {
  PersistentVolumeClaim: Resource.persistentVolumeClaims,
  Pod: Resource.pods,
  Service: Resource.services,
  Secret: Resource.secrets,
  NetworkPolicy: Resource.networkPolicies,
};

/** The template and token fingerprint annotations of a pod (desired or live). */
function podTemplateOf(o: { metadata?: { annotations?: Record<string, string> } }): { template: string; tokenHash?: string } {
  const a = o.metadata?.annotations ?? {};
  return { template: a[SPEC_HASH_ANNOTATION] ?? '', ...(a[TOKEN_HASH_ANNOTATION] !== undefined ? { tokenHash: a[TOKEN_HASH_ANNOTATION] } : {}) };
}

const uidOf = (o: KubeObject | undefined): { uid?: string } => (o?.metadata?.uid ? { uid: o.metadata.uid } : {});

/**
 * Replaces whole lists of a live object with the desired ones (JSON patch, guarded by
 * its resourceVersion so a concurrent change is never overwritten blind): what a forced
 * apply cannot do for items another manager keyed differently (drift.ts,
 * `listsToReplace`). A 409/422 from the guard surfaces as a failed correction and the
 * next pass retries on the fresh object.
 */
async function replaceLists(ctx: ReconcileContext, type: ResourceType, d: DesiredObject, live: KubeObject, paths: readonly string[]): Promise<void> {
  const valueAt = (obj: unknown, path: string) => path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], obj);
  await ctx.resources.patch(type, ctx.namespace, d.metadata.name, 'json', [
    { op: 'test', path: '/metadata/resourceVersion', value: live.metadata?.resourceVersion },
    ...paths.map((path) => ({ op: 'replace', path: `/${path.split('.').join('/')}`, value: valueAt(d, path) })),
  ], { query: { fieldManager: FIELD_MANAGER } });
}

