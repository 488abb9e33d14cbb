/**
 * The EventLog controller: the ControllerDefinition the Manager runs. `reconcile` reads
 * like a table of contents; each step is a small function in ./reconcile/ and every
 * decision is a pure function in src/decisions/. docs/controller.md ("The reconcile
 * loop") walks through it.
 *
 *   read      the EventLog and its owned objects from the caches
 *   finalize  (being deleted) honour retentionPolicy, remove the finalizer
 *   finalizer add it first, so every owned object exists only under it
 *   storage   look up the StorageClass (nothing is created while it is missing)
 *   owned     token Secret, PVC, NetworkPolicy, Service, pod (or, suspended, report only)
 *   observe   poll the log server's /status
 *   repair    run a repair a human approved for the corruption the server reports
 *   rollout   who holds a rollout slot; take one, keep it, or give it back (a template
 *             change of the pod waits for a slot: at most --max-concurrent-rollouts)
 *   status    compute, write if changed, record Events, feed the gauges
 *
 * Guarantees
 * - Reads come from the caches; only the StorageClass (not watched; a read is reused for
 *   up to 30 s) is read from the API server, plus the cases owned.ts names (a token Secret the cache has not seen, an
 *   owned object that lost its watched label).
 * - Writes to the EventLog: the finalizer (guarded JSON patches) and the status
 *   subresource. Spec and other metadata are never written. A steady EventLog causes
 *   zero writes.
 * - Failures return an error outcome (the queue backs off) whose message names the
 *   EventLog, the step and the object.
 */
import { API_VERSION, EVENTLOG_RESOURCE, FINALIZER, KIND, parseEventLog } from '../api/eventlog.ts';
import { DEFAULT_OPERATOR_NAMESPACE, DEFAULT_PORT, networkPolicyName, podName, pvcName, serviceName, tokenSecretName } from '../decisions/desired.ts';
import { FIELD_MANAGER, LABEL_MANAGED_BY, MANAGED_BY, SPEC_HASH_ANNOTATION, TOKEN_HASH_ANNOTATION } from '../decisions/labels.ts';
import { DEFAULT_MAX_CONCURRENT_ROLLOUTS, mayRollPod, RolloutState } from '../decisions/rollout.ts';
import { nextRequeueMs } from '../decisions/plan.ts';
import { countersRefreshDueIn, pollTimeoutTolerated, type StatusInput } from '../decisions/status.ts';
import { TOKEN_KEY, tokenFromSecret } from '../decisions/token.ts';
import { ensureFinalizer, type FinalizerTarget } from '../runtime/finalizer.ts';
import { composeTransforms, keepManagedFieldsOf, sharedSubtrees, withoutAllAnnotations, withoutAnnotations, withoutFinalizers, withoutManagedFields } from '../runtime/predicates.ts';
import type { ControllerDefinition, ReconcileRequest } from '../runtime/manager.ts';
import { Outcome, type ReconcileOutcome } from '../runtime/reconcile.ts';
import { Resource, Resources, resourcePath } from '../runtime/resources.ts';
import { TtlCache } from '../runtime/ttl-cache.ts';
import { pollServerStatus, requestRepair } from './poller.ts';
import { step, type EventLogControllerDeps, type EventLogMemory, type LiveObjects, type RawEventLog, type ReconcileContext } from './reconcile/context.ts';
import { finalize } from './reconcile/deletion.ts';
import { observeServer } from './reconcile/observe.ts';
import { applyOwned, desiredSet, reportOwnedDrift } from './reconcile/owned.ts';
import { maybeRepair } from './reconcile/repair.ts';
import { RolloutSlots, rolloutStep } from './reconcile/rollout.ts';
import { lookupStorageClass, type StorageClassInfo } from './reconcile/storage-class.ts';
import { maybeGrowStorage } from './reconcile/storage-growth.ts';
import { writeStatus } from './reconcile/write-status.ts';
import { resizeState } from '../decisions/storage.ts';
import type { SecretObject } from './token-secret.ts';

export type { EventLogControllerDeps } from './reconcile/context.ts';

export const CONTROLLER_NAME = 'eventlog';
/** How old a StorageClass read may be (allowVolumeExpansion, existence). */
export const STORAGE_CLASS_TTL_MS = 30_000;
/** Owned objects are watched with this selector (every owned object carries the label). */
export const OWNED_SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY}`;

/**
 * What the caches keep (memory and watch events: docs/benchmarks.md). The reconcile never
 * reads an EventLog's managedFields or kubectl's last-applied copy of it; of an owned
 * object's managedFields it reads only our own applied entry (drift.ts
 * classifyDifferences); it never reads an owned object's finalizers, nor annotations of
 * the PVC, Service, Secret and NetworkPolicy (their desired objects set none, so drift
 * compares none). A change to those alone (the PVC's kubernetes.io/pvc-protection
 * finalizer, the PV controller's storage-provisioner annotations) then reconciles nothing.
 * A step that starts reading one of these must drop it from the transform. Equal specs,
 * statuses and managedFields trees are shared between cached objects (sharedSubtrees).
 */
const shared = sharedSubtrees([['spec'], ['status'], ['metadata', 'managedFields']]);
const primaryTransform = composeTransforms(withoutManagedFields, withoutAnnotations(['kubectl.kubernetes.io/last-applied-configuration']), shared);
const podTransform = composeTransforms(keepManagedFieldsOf(FIELD_MANAGER), withoutFinalizers, shared);
const ownedTransform = composeTransforms(keepManagedFieldsOf(FIELD_MANAGER), withoutFinalizers, withoutAllAnnotations, shared);

export function eventLogController(deps: EventLogControllerDeps): ControllerDefinition {
  const port = deps.port ?? DEFAULT_PORT;
  const now = deps.now ?? (() => new Date());
  const resources = new Resources(deps.http);
  const poll = deps.poll ?? pollServerStatus;
  /** StorageClasses are read (RBAC: get only), not watched: at most one GET per class per 30 s, not one per pass. */
  const storageClasses = new TtlCache<StorageClassInfo>(STORAGE_CLASS_TTL_MS);
  const runRepair = deps.repair ?? requestRepair;
  /** What this process remembers per EventLog key between passes (reconcile/context.ts). */
  const memory = new Map<string, EventLogMemory>();
  /** Rollout slots this process just took (the caches hold the rest: reconcile/rollout.ts). */
  const slots = new RolloutSlots();
  const maxRollouts = deps.config.maxConcurrentRollouts ?? DEFAULT_MAX_CONCURRENT_ROLLOUTS;
  /** Drops what this process keeps about an EventLog that is gone (or about to be). */
  const forget = (namespace: string, name: string) => {
    deps.metrics?.forget(namespace, name);
    memory.delete(`${namespace}/${name}`);
    slots.release(`${namespace}/${name}`);
  };

  async function reconcile(req: ReconcileRequest): Promise<ReconcileOutcome> {
    const { namespace, name, log } = req;
    const key = `${namespace}/${name}`;

    // ---- read ----
    const raw = req.caches.primary.get(namespace, name) as RawEventLog | undefined;
    if (!raw) {
      log.debug('EventLog not in cache (deleted): nothing to do');
      forget(namespace, name);
      return Outcome.done();
    }
    const parsed = parseEventLog(raw);
    // The API server validates with the same schema; this means a newer/older CRD.
    if (!parsed.success) return Outcome.terminal(new Error(`EventLog ${key}: cannot parse: ${parsed.error}`));
    const evl = parsed.data;
    const meta = raw.metadata ?? {};
    const ctx: ReconcileContext = {
      key,
      namespace,
      name,
      evl,
      raw,
      old: evl.status,
      ref: { apiVersion: API_VERSION, kind: KIND, namespace, name, uid: meta.uid ?? '', ...(meta.resourceVersion ? { resourceVersion: meta.resourceVersion } : {}) },
      log,
      deps,
      resources,
      desiredOptions: { defaultImage: deps.config.defaultImage, port, operatorNamespace: deps.config.operatorNamespace ?? DEFAULT_OPERATOR_NAMESPACE },
      port,
      now,
      memory: memory.get(key) ?? { podsDeletedByOperator: new Set() },
      mayRollPod: mayRollPod(evl.status, evl.spec.suspend),
    };
    memory.set(key, ctx.memory);
    const finalizerTarget: FinalizerTarget = { collection: resourcePath(EVENTLOG_RESOURCE, namespace), name, finalizers: meta.finalizers, resourceVersion: meta.resourceVersion ?? '' };

    // ---- finalize ----
    if (meta.deletionTimestamp) {
      const outcome = await finalize(ctx, finalizerTarget);
      if (outcome.type === 'done') forget(namespace, name);
      return outcome;
    }

    // ---- finalizer first ----
    const suspended = evl.spec.suspend;
    if (!suspended && !meta.finalizers?.includes(FINALIZER)) {
      await step(ctx, 'adding the finalizer', () => ensureFinalizer(deps.http, finalizerTarget, FINALIZER));
      log.debug('finalizer added; the update event reconciles again');
      return Outcome.done();
    }

    const live = readOwned(req, ctx);
    ctx.livePvcRequest = live.pvc?.spec?.resources?.requests?.storage;

    // ---- storage class ----
    const className = evl.spec.storage.storageClassName ?? live.pvc?.spec?.storageClassName;
    const storageClass = className ? await step(ctx, `reading StorageClass ${className}`, () => storageClasses.get(className, () => lookupStorageClass(resources, className))) : undefined;

    // ---- owned objects ----
    const owned = suspended ? reportOwnedDrift(ctx, live) : storageClass?.found === false ? undefined : await applyOwned(ctx, live);

    // ---- observe, repair ----
    const observed = await observeServer(ctx, live, poll, deps.pollTimeoutMs);
    const { repair, server } = await maybeRepair(ctx, live, observed, runRepair);

    // ---- storage growth ----
    const grown = storageClass?.found === false ? { podRestarted: false } : await maybeGrowStorage(ctx, live, server, storageClass);

    // ---- rollout ----
    const desiredPod = (owned?.desired ?? desiredSet(ctx, live.token)).pod;
    const tokenHash = desiredPod.metadata.annotations[TOKEN_HASH_ANNOTATION];
    const rollout = rolloutStep(
      ctx,
      { eventLogs: () => req.caches.primary.list() as RawEventLog[], slots, max: maxRollouts, enqueue: req.enqueue },
      live,
      { template: desiredPod.metadata.annotations[SPEC_HASH_ANNOTATION]!, ...(tokenHash !== undefined ? { tokenHash } : {}) },
      server,
    );

    // ---- status ----
    const timeouts = ctx.memory.pollTimeoutsInARow;
    const input: StatusInput = {
      evl,
      ...(live.pvc ? { pvc: live.pvc } : {}),
      ...(live.pod ? { pod: live.pod } : {}),
      ...(live.service ? { service: live.service } : {}),
      ...(storageClass ? { storageClass } : {}),
      ...(server ? { server } : {}),
      ...(timeouts !== undefined ? { pollTimeoutsInARow: timeouts } : {}),
      drift: owned?.drift ?? { items: [], outcome: 'none' },
      ...(repair ? { repair } : {}),
      ...(grown.growth ? { growth: grown.growth } : {}),
      usageSamples: ctx.memory.usageSamples ?? [],
      ...(live.secret && live.token !== undefined ? { tokenSecret: { name: tokenSecretName(evl), key: TOKEN_KEY } } : {}),
      desiredPodHash: desiredPod.metadata.annotations[SPEC_HASH_ANNOTATION],
      rollout,
      now: now(),
      options: { countersMinIntervalMs: deps.config.statusCounterInterval, port, ...(deps.config.storageWarningPercent !== undefined ? { storageWarningPercent: deps.config.storageWarningPercent } : {}) },
    };
    const written = await writeStatus(ctx, input);
    if ('conflict' in written) return Outcome.requeueAfter(deps.config.pollInterval);
    if ('gone' in written) return Outcome.done();
    // A tolerated poll timeout kept Ready: poll again soon rather than after a full interval.
    return Outcome.requeueAfter(nextRequeueMs(deps.config.pollInterval, countersRefreshDueIn(input, written.next), (owned?.waiting ?? false) || grown.podRestarted || rollout.status.state === RolloutState.RollingOut || pollTimeoutTolerated(input) || growing(input)));
  }

  return {
    name: CONTROLLER_NAME,
    primary: { ...EVENTLOG_RESOURCE, apiVersion: API_VERSION, kind: KIND, transform: primaryTransform },
    owned: {
      pods: { ...Resource.pods, labelSelector: OWNED_SELECTOR, transform: podTransform },
      persistentvolumeclaims: { ...Resource.persistentVolumeClaims, labelSelector: OWNED_SELECTOR, transform: ownedTransform },
      services: { ...Resource.services, labelSelector: OWNED_SELECTOR, transform: ownedTransform },
      // Only Secrets with our label are listed and cached (RBAC cannot narrow list/watch
      // by label: the ClusterRole still allows reading every Secret; see docs/operator.md).
      secrets: { ...Resource.secrets, labelSelector: OWNED_SELECTOR, transform: ownedTransform },
      networkpolicies: { ...Resource.networkPolicies, labelSelector: OWNED_SELECTOR, transform: ownedTransform },
    },
    reconcile,
  };
}

/** An expansion in progress: poll sooner than the poll interval to see it finish. */
function growing(input: StatusInput): boolean {
  return input.growth !== undefined || resizeState(input.pvc) !== undefined;
}

/** The owned objects as the caches hold them. */
function readOwned({ caches }: ReconcileRequest, ctx: ReconcileContext): LiveObjects {
  const { namespace, evl } = ctx;
  const { persistentvolumeclaims: pvcs, pods, services, secrets, networkpolicies: netpols } = caches.owned;
  if (!pvcs || !pods || !services || !secrets || !netpols) throw new Error('eventlog controller: the manager must watch persistentvolumeclaims, pods, services, secrets and networkpolicies');
  const secret = secrets.get(namespace, tokenSecretName(evl)) as SecretObject | undefined;
  return {
    pvc: pvcs.get(namespace, pvcName(evl)) as LiveObjects['pvc'],
    pod: pods.get(namespace, podName(evl)) as LiveObjects['pod'],
    service: services.get(namespace, serviceName(evl)) as LiveObjects['service'],
    secret,
    networkPolicy: netpols.get(namespace, networkPolicyName(evl)),
    token: tokenFromSecret(secret),
  };
}
