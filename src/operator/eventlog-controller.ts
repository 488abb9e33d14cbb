/**
 * The EventLog reconciler: the ControllerDefinition the Manager runs. It reads the
 * informer caches, calls the pure decision layer (src/decisions/), and performs the
 * writes that implies. docs/controller.md ("The reconcile loop") walks through it.
 *
 * Guarantees
 * - Reads of the EventLog, its PVC, pod, Service, token Secret and NetworkPolicy come
 *   from the caches; only the StorageClass (not watched) is read from the API server,
 *   and the token Secret when creating it finds one the cache has not seen yet, and an
 *   owned object the cache lacks although it existed before (it may only have lost the
 *   managed-by label the watches select on: that is label drift, not a deletion).
 * - The log server always runs with the EventLog's token (the Secret `<name>-token`,
 *   token-secret.ts): the Secret is made before the pod, a token is never replaced
 *   while valid, a new token recreates the pod, and the operator polls and repairs
 *   with the token. The NetworkPolicy is made before the pod too, so the pod never
 *   runs unprotected on a CNI that enforces it.
 * - Writes to the EventLog: the finalizer (guarded JSON patches) and the status
 *   subresource (a merge patch with a resourceVersion precondition, sent only when
 *   `statusChanged`). Spec and other metadata are never written. A steady EventLog
 *   causes zero writes.
 * - The finalizer is added (and the pass ends) before anything is created, so every
 *   owned object exists only under a finalizer.
 * - Owned objects are written with server-side apply under FIELD_MANAGER; `force`
 *   only when putting back fields another manager took (driftPolicy Correct).
 * - One pod at a time on the ReadWriteOnce PVC: a pod is recreated only after the old
 *   one is gone (fixed name), and nothing is applied while the PVC is terminating.
 * - Failures return an error outcome (the queue backs off) whose message names the
 *   EventLog, the step and the object.
 *
 * Caveats
 * - A deleted owned object is always recreated (the pod is disposable, the PVC is the
 *   identity), also under driftPolicy Report; Report leaves changed *fields* alone.
 * - Approved repair: when `eventlog.dev/approve-repair` equals the corruption id the
 *   live server reports, the reconciler calls `POST /admin/repair` once (synchronously,
 *   bounded at 60 s) and records the result in `status.recovery.repair`. A Failed
 *   repair of the same id is not retried automatically.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { APPROVE_REPAIR_ANNOTATION, API_VERSION, DriftPolicy, FINALIZER, GROUP, KIND, PLURAL, RetentionPolicy, VERSION, parseEventLog, type EventLog, type EventLogStatus, type Repair } from '../api/eventlog.ts';
import { formatTime } from '../decisions/conditions.ts';
import type { Logger } from '../common/logger.ts';
import { DEFAULT_OPERATOR_NAMESPACE, DEFAULT_PORT, desiredNetworkPolicy, desiredPod, desiredPvc, desiredService, desiredTokenSecret, networkPolicyName, podName, pvcName, serviceName, tokenSecretName, type DesiredObject, type OwnedKind } from '../decisions/desired.ts';
import { classifyDifferences, listsToReplace, podNeedsRecreate, podRolloutNeedsRecreate, type DriftFinding } from '../decisions/drift.ts';
import { TOKEN_KEY, tokenFingerprint, tokenFromSecret } from '../decisions/token.ts';
import { transitionEvents } from '../decisions/events.ts';
import { FIELD_MANAGER, LABEL_MANAGED_BY, MANAGED_BY, SPEC_HASH_ANNOTATION } from '../decisions/labels.ts';
import { PollError, type ServerObservation } from '../decisions/server-status.ts';
import { computeStatus, countersRefreshDueIn, pollTimeoutTolerated, statusChanged, type DriftInput, type LivePod, type LivePvc, type LiveService, type StatusInput } from '../decisions/status.ts';
import type { ManifestApplier } from '../kube/apply.ts';
import { statusCodeOf, type KubeHttp } from '../runtime/kube-http.ts';
import type { KubeObject } from '../runtime/store.ts';
import { Outcome, type ReconcileOutcome } from '../runtime/reconcile.ts';
import { removeFinalizer, ensureFinalizer } from '../runtime/finalizer.ts';
import type { ControllerDefinition, ReconcileRequest } from '../runtime/manager.ts';
import { mergePatch } from '../runtime/merge-patch.ts';
import { pollServerStatus, requestRepair, type PollOptions } from './poller.ts';
import type { EventRecorder } from '../runtime/recorder.ts';
import { ensureTokenSecret, type SecretObject } from './token-secret.ts';
import type { EventLogMetricsSink } from './eventlog-metrics.ts';

export const CONTROLLER_NAME = 'eventlog';
/** Owned objects are watched with this selector (every owned object carries the label). */
export const OWNED_SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY}`;
/** Resource (plural) of each owned kind, for direct reads. */
const OWNED_PLURALS: Record<OwnedKind, string> = {
  PersistentVolumeClaim: 'persistentvolumeclaims',
  Pod: 'pods',
  Service: 'services',
  Secret: 'secrets',
  NetworkPolicy: 'networkpolicies',
};
/** The API path of one owned object. */
function ownedObjectPath(ns: string, d: DesiredObject): string {
  const base = d.apiVersion.includes('/') ? `/apis/${d.apiVersion}` : `/api/${d.apiVersion}`;
  return `${base}/namespaces/${encodeURIComponent(ns)}/${OWNED_PLURALS[d.kind]}/${encodeURIComponent(d.metadata.name)}`;
}
/** Requeue while waiting for something to go away (pod/PVC terminating). */
export const WAIT_REQUEUE_MS = 1_000;

export interface EventLogControllerDeps {
  http: KubeHttp;
  applier: Pick<ManifestApplier, 'apply'>;
  recorder: Pick<EventRecorder, 'record'>;
  /** operatorNamespace: admitted by every log's NetworkPolicy (default eventlog-system). */
  config: { defaultImage: string; pollInterval: number; statusCounterInterval: number; operatorNamespace?: string };
  /** Defaults to `pollServerStatus`; tests may replace it. */
  poll?: (podIP: string, port: number, opts: PollOptions) => Promise<ServerObservation>;
  pollTimeoutMs?: number;
  /** Token source for new token Secrets (default: 32 random bytes); tests may replace it. */
  newToken?: () => string;
  /** Defaults to `requestRepair` (POST /admin/repair); tests may replace it. */
  repair?: (podIP: string, port: number, corruptionId: string, opts: PollOptions) => Promise<ServerObservation>;
  /** Server port (container and Service). Default 8080. */
  port?: number;
  now?: () => Date;
  /** The EventLog gauges (src/operator/eventlog-metrics.ts); none when absent. */
  metrics?: EventLogMetricsSink;
}

/** Wraps a step so a failure names the EventLog, the step and the object. */
class StepError extends Error {
  override name = 'ReconcileStepError';
}

async function step<T>(evl: string, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw new StepError(`EventLog ${evl}: ${what}: ${(error as Error).message}`, { cause: error });
  }
}

/** HTTP status of an API error, looking through StepError/Error causes. */
function codeOf(error: unknown): number | undefined {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const c = statusCodeOf(e);
    if (c !== undefined) return c;
  }
  return undefined;
}

type Raw = KubeObject & { spec?: unknown; status?: unknown };

function ownerRefIndex(obj: KubeObject | undefined, uid: string | undefined): number {
  return obj?.metadata?.ownerReferences?.findIndex((r) => r.uid === uid) ?? -1;
}

/** The minimal drift/rollout plan for one owned object (pure; exported for tests). */
export interface ObjectPlan {
  kind: OwnedKind;
  /** Object missing: create it. */
  create: boolean;
  /** It existed before (status knew it): its absence is drift. */
  existedBefore: boolean;
  rollout: DriftFinding[];
  drift: DriftFinding[];
}

export function planObject(kind: OwnedKind, desired: DesiredObject, live: unknown, existedBefore: boolean): ObjectPlan {
  if (live === undefined) return { kind, create: true, existedBefore, rollout: [], drift: [] };
  const { drift, rollout } = classifyDifferences(kind, desired, live, FIELD_MANAGER);
  return { kind, create: false, existedBefore, rollout, drift };
}

/** Combines per-object drift outcomes into the one `DriftInput` status takes (pure). */
export function combineDrift(items: DriftFinding[], outcomes: DriftInput['outcome'][], errors: string[]): DriftInput {
  if (items.length === 0) return { items: [], outcome: 'none' };
  if (errors.length > 0 || outcomes.includes('failed')) return { items, outcome: 'failed', error: errors.join('; ') || 'correction failed' };
  if (outcomes.includes('correcting')) return { items, outcome: 'correcting' };
  if (outcomes.includes('corrected')) return { items, outcome: 'corrected' };
  return { items, outcome: 'none' };
}

/** requeueAfter of a finished pass: the poll interval, sooner for counters or waits (pure). */
export function nextRequeueMs(pollInterval: number, countersDueIn: number | undefined, waiting: boolean): number {
  let ms = pollInterval;
  if (countersDueIn !== undefined) ms = Math.min(ms, Math.max(countersDueIn, 100));
  if (waiting) ms = Math.min(ms, WAIT_REQUEUE_MS);
  return ms;
}

export function eventLogController(deps: EventLogControllerDeps): ControllerDefinition {
  const port = deps.port ?? DEFAULT_PORT;
  const poll = deps.poll ?? pollServerStatus;
  /** Polls that timed out in a row, per EventLog key (in memory: a restart starts afresh). */
  const pollTimeouts = new Map<string, number>();
  /** Drops what this process keeps about an EventLog that is gone (or about to be). */
  const forget = (namespace: string, name: string) => {
    deps.metrics?.forget(namespace, name);
    pollTimeouts.delete(`${namespace}/${name}`);
  };
  const runRepair = deps.repair ?? requestRepair;
  const now = deps.now ?? (() => new Date());
  const http = deps.http;

  const collection = (ns: string) => `/apis/${GROUP}/${VERSION}/namespaces/${encodeURIComponent(ns)}/${PLURAL}`;

  async function lookupStorageClass(name: string): Promise<{ name: string; found: boolean; allowVolumeExpansion?: boolean }> {
    try {
      const sc = await http.json<{ allowVolumeExpansion?: boolean }>('GET', `/apis/storage.k8s.io/v1/storageclasses/${encodeURIComponent(name)}`, { timeoutMs: 10_000 });
      return { name, found: true, ...(sc.allowVolumeExpansion !== undefined ? { allowVolumeExpansion: sc.allowVolumeExpansion } : {}) };
    } catch (error) {
      if (statusCodeOf(error) === 404) return { name, found: false };
      throw error;
    }
  }

  /**
   * An owned object the label-filtered caches lack, read from the API server: it may only
   * have lost the label the watches select on (someone removed
   * app.kubernetes.io/managed-by), which is label drift, not a deleted object.
   */
  async function readUncached(ns: string, d: DesiredObject): Promise<KubeObject | undefined> {
    try {
      return await http.json<KubeObject>('GET', ownedObjectPath(ns, d), { timeoutMs: 10_000 });
    } catch (error) {
      if (statusCodeOf(error) === 404) return undefined;
      throw error;
    }
  }

  /**
   * Replaces whole lists of a live object with the desired ones (JSON patch, guarded by
   * its resourceVersion so a concurrent change is never overwritten blind): what a
   * forced apply cannot do for items another manager keyed differently (drift.ts,
   * `listsToReplace`). A 409/422 from the guard surfaces as a failed correction and the
   * next pass retries on the fresh object.
   */
  async function replaceLists(ns: string, d: DesiredObject, live: KubeObject, paths: readonly string[]): Promise<void> {
    const valueAt = (obj: unknown, path: string) => path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], obj);
    await http.json('PATCH', ownedObjectPath(ns, d), {
      query: { fieldManager: FIELD_MANAGER },
      contentType: 'application/json-patch+json',
      body: [
        { op: 'test', path: '/metadata/resourceVersion', value: live.metadata?.resourceVersion },
        ...paths.map((path) => ({ op: 'replace', path: `/${path.split('.').join('/')}`, value: valueAt(d, path) })),
      ],
      timeoutMs: 10_000,
    });
  }

  async function deletePod(ns: string, name: string, uid: string | undefined): Promise<void> {
    try {
      await http.json('DELETE', `/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(name)}`, {
        body: { apiVersion: 'v1', kind: 'DeleteOptions', ...(uid ? { preconditions: { uid } } : {}) },
        timeoutMs: 10_000,
      });
    } catch (error) {
      // Already gone (404) or already replaced (409 uid precondition): nothing to do.
      const code = statusCodeOf(error);
      if (code !== 404 && code !== 409) throw error;
    }
  }

  async function reconcile({ namespace, name, log, caches }: ReconcileRequest): Promise<ReconcileOutcome> {
    const key = `${namespace}/${name}`;
    const raw = caches.primary.get(namespace, name) as Raw | undefined;
    if (!raw) {
      log.debug('EventLog not in cache (deleted): nothing to do');
      forget(namespace, name);
      return Outcome.done();
    }
    const parsed = parseEventLog(raw);
    if (!parsed.success) {
      // The API server validates with the same schema; this means a newer/older CRD.
      return Outcome.terminal(new Error(`EventLog ${key}: cannot parse: ${parsed.error}`));
    }
    const evl = parsed.data;
    const meta = raw.metadata ?? {};
    const uid = meta.uid;
    const target = { collection: collection(namespace), name, finalizers: meta.finalizers, resourceVersion: meta.resourceVersion ?? '' };
    const ref = { apiVersion: API_VERSION, kind: KIND, namespace, name, uid: uid ?? '', ...(meta.resourceVersion ? { resourceVersion: meta.resourceVersion } : {}) };
    const pvcs = caches.owned.persistentvolumeclaims;
    const pods = caches.owned.pods;
    const services = caches.owned.services;
    const secrets = caches.owned.secrets;
    const netpols = caches.owned.networkpolicies;
    if (!pvcs || !pods || !services || !secrets || !netpols) throw new Error('eventlog controller: the manager must watch persistentvolumeclaims, pods, services, secrets and networkpolicies');

    // ---- deletion ------------------------------------------------------------------
    if (meta.deletionTimestamp) {
      if (!meta.finalizers?.includes(FINALIZER)) {
        forget(namespace, name);
        return Outcome.done();
      }
      // Read the PVC from the API server, not the cache: a claim the cache has not seen
      // yet must not be left to garbage collection by mistake.
      const pvcPath = `/api/v1/namespaces/${encodeURIComponent(namespace)}/persistentvolumeclaims/${encodeURIComponent(pvcName(evl))}`;
      const pvc =
        evl.spec.storage.retentionPolicy === RetentionPolicy.Retain
          ? await step(key, `reading PersistentVolumeClaim ${namespace}/${pvcName(evl)}`, async () => {
              try {
                return await http.json<KubeObject>('GET', pvcPath, { timeoutMs: 10_000 });
              } catch (error) {
                if (statusCodeOf(error) === 404) return undefined;
                throw error;
              }
            })
          : undefined;
      if (pvc) {
        const i = ownerRefIndex(pvc, uid);
        if (i >= 0) {
          const claim = pvc.metadata?.name ?? pvcName(evl);
          await step(key, `removing the owner reference from PersistentVolumeClaim ${namespace}/${claim} (retentionPolicy Retain)`, () =>
            http.json('PATCH', pvcPath, {
              contentType: 'application/json-patch+json',
              body: [
                { op: 'test', path: `/metadata/ownerReferences/${i}/uid`, value: uid },
                { op: 'remove', path: `/metadata/ownerReferences/${i}` },
              ],
              timeoutMs: 10_000,
            }),
          );
          await deps.recorder.record(ref, {
            type: 'Normal',
            reason: 'StorageRetained',
            note: `retentionPolicy Retain: PersistentVolumeClaim ${claim} is kept (owner reference removed); delete it by hand when the data is no longer needed`,
            action: 'Finalize',
          });
          log.info({ pvc: claim }, 'PVC retained: owner reference removed');
        }
      }
      try {
        await step(key, 'removing the finalizer', () => removeFinalizer(http, target, FINALIZER));
      } catch (error) {
        // Gone already: a pass on a stale cache after our own removal let it be deleted.
        if (codeOf(error) === 404) return Outcome.done();
        throw error;
      }
      log.info({ retentionPolicy: evl.spec.storage.retentionPolicy }, 'finalized');
      forget(namespace, name);
      return Outcome.done();
    }

    const suspended = evl.spec.suspend;
    // ---- finalizer first -----------------------------------------------------------
    if (!suspended && !meta.finalizers?.includes(FINALIZER)) {
      await step(key, 'adding the finalizer', () => ensureFinalizer(http, target, FINALIZER));
      log.debug('finalizer added; the update event reconciles again');
      return Outcome.done();
    }

    const opts = { defaultImage: deps.config.defaultImage, port, operatorNamespace: deps.config.operatorNamespace ?? DEFAULT_OPERATOR_NAMESPACE };
    let secret = secrets.get(namespace, tokenSecretName(evl)) as SecretObject | undefined;
    let token = tokenFromSecret(secret);
    const dPvc = desiredPvc(evl, opts);
    const dSvc = desiredService(evl, opts);
    const dNetpol = desiredNetworkPolicy(evl, opts);
    // The pod follows the token (its fingerprint is part of the pod's spec hash); it is
    // rebuilt once the token Secret has been ensured below.
    let dPod = desiredPod(evl, { ...opts, ...(token !== undefined ? { tokenHash: tokenFingerprint(token) } : {}) });
    let pvc = pvcs.get(namespace, pvcName(evl)) as (KubeObject & LivePvc) | undefined;
    let svc = services.get(namespace, serviceName(evl)) as (KubeObject & LiveService) | undefined;
    let pod = pods.get(namespace, podName(evl)) as (KubeObject & LivePod) | undefined;
    let netpol = netpols.get(namespace, networkPolicyName(evl));
    const old: EventLogStatus | undefined = evl.status;

    // ---- StorageClass ----------------------------------------------------------------
    const className = evl.spec.storage.storageClassName ?? (pvc as LivePvc | undefined)?.spec?.storageClassName;
    const storageClass = className ? await step(key, `reading StorageClass ${className}`, () => lookupStorageClass(className)) : undefined;

    let waiting = false;
    let drift: DriftInput = { items: [], outcome: 'none' };
    if (!suspended && storageClass?.found !== false) {
      const items: DriftFinding[] = [];
      const outcomes: DriftInput['outcome'][] = [];
      const errors: string[] = [];
      const correct = evl.spec.driftPolicy === DriftPolicy.Correct;
      // ManifestApplier returns the API server's JSON as-is (plain objects, string times).
      const apply = (d: DesiredObject, force: boolean): Promise<KubeObject> =>
        step(key, `applying ${d.kind} ${namespace}/${d.metadata.name}${force ? ' (force: correcting drift)' : ''}`, async () =>
          (await deps.applier.apply(d as unknown as KubernetesObject, FIELD_MANAGER, force ? { force: true } : {})) as unknown as KubeObject,
        );

      // PVC first. A terminating PVC is waited for, never raced.
      const pvcTerminating = pvc?.metadata?.deletionTimestamp !== undefined;
      if (pvcTerminating) {
        waiting = true;
        log.info('PersistentVolumeClaim is terminating: waiting for it to be gone before creating anything');
      } else {
        // The token Secret before the pod: the pod mounts it, and the pod's desired spec
        // depends on the token.
        const ensured = await step(key, `ensuring the token Secret ${namespace}/${tokenSecretName(evl)}`, () =>
          ensureTokenSecret({ http: deps.http, applier: deps.applier, ...(deps.newToken ? { newToken: deps.newToken } : {}) }, evl, secret),
        );
        secret = ensured.secret;
        token = ensured.token;
        dPod = desiredPod(evl, { ...opts, tokenHash: tokenFingerprint(token) });
        if (ensured.created) log.info({ secret: tokenSecretName(evl) }, old?.tokenSecret !== undefined ? 'token Secret was deleted: created it with a new token' : 'token Secret created');
        if (ensured.created && old?.tokenSecret !== undefined) {
          items.push({ kind: 'Secret', name: tokenSecretName(evl), path: '.', expected: 'present', actual: 'deleted' });
          outcomes.push('corrected');
        }
        if (ensured.regenerated) {
          log.warn({ secret: tokenSecretName(evl) }, 'token Secret held no valid token: wrote a new one');
          items.push({ kind: 'Secret', name: tokenSecretName(evl), path: `data.${TOKEN_KEY}`, expected: 'a valid token', actual: 'missing or invalid' });
          outcomes.push('corrected');
        }
        const plans: Array<{ desired: DesiredObject; live: KubeObject | undefined; existed: boolean; set: (o: KubeObject) => void }> = [
          { desired: dPvc, live: pvc, existed: old?.storage?.phase !== undefined, set: (o) => (pvc = o as KubeObject & LivePvc) },
          // Labels, owner reference and type only (drift.ts never compares the token).
          { desired: desiredTokenSecret(evl, token), live: secret, existed: true, set: (o) => (secret = o as SecretObject) },
          // tokenSecret in status: the NetworkPolicy arrived with the token Secret, so an
          // EventLog an older operator made has neither, and a missing one is not drift.
          { desired: dNetpol, live: netpol, existed: old?.tokenSecret !== undefined, set: (o) => (netpol = o) },
          { desired: dSvc, live: svc, existed: old?.endpoint !== undefined, set: (o) => (svc = o as KubeObject & LiveService) },
          { desired: dPod, live: pod, existed: old?.pod?.uid !== undefined, set: (o) => (pod = o as KubeObject & LivePod) },
        ];
        for (const p of plans) {
          const kind = p.desired.kind;
          let live = p.live;
          if (live === undefined && p.existed) {
            live = await step(key, `reading ${kind} ${namespace}/${p.desired.metadata.name} (not in the cache)`, () => readUncached(namespace, p.desired));
            if (live) {
              log.debug({ kind, object: p.desired.metadata.name }, 'owned object is not in the cache but exists: its watched labels were changed');
              p.set(live);
            }
          }
          if (live?.metadata?.deletionTimestamp) {
            // Terminating (a deleted pod, or one we deleted for a rollout): wait for it to go.
            waiting = true;
            continue;
          }
          const plan = planObject(kind, p.desired, live, p.existed);
          try {
            if (plan.create) {
              p.set(await apply(p.desired, false));
              log.info({ kind, object: p.desired.metadata.name }, plan.existedBefore ? 'recreated a deleted object' : 'created');
              if (plan.existedBefore) {
                items.push({ kind, name: p.desired.metadata.name, path: '.', expected: 'present', actual: 'deleted' });
                outcomes.push('corrected');
              }
              continue;
            }
            const recreate = kind === 'Pod' && (podRolloutNeedsRecreate(plan.rollout) || (correct && podNeedsRecreate(plan.drift)));
            if (plan.drift.length > 0) items.push(...plan.drift);
            if (recreate) {
              await step(key, `deleting Pod ${namespace}/${p.desired.metadata.name} to recreate it on the same volume`, () => deletePod(namespace, p.desired.metadata.name, live?.metadata?.uid));
              log.info({ rollout: plan.rollout.map((f) => f.path), drift: plan.drift.map((f) => f.path) }, 'pod deleted: immutable fields differ; it is recreated when gone');
              waiting = true;
              if (plan.drift.length > 0) outcomes.push('correcting');
              continue;
            }
            // Updates: the cache brings the result (and the next pass sees it).
            if (plan.drift.length > 0 && correct) {
              const lists = listsToReplace(kind, plan.drift);
              if (lists.length > 0 && live) {
                await step(key, `replacing ${lists.join(', ')} of ${kind} ${namespace}/${p.desired.metadata.name} (correcting drift)`, () => replaceLists(namespace, p.desired, live, lists));
              }
              await apply(p.desired, true);
              log.info({ kind, drift: plan.drift.map((f) => f.path) }, 'drift corrected');
              outcomes.push('corrected');
            } else if (plan.rollout.length > 0) {
              await apply(p.desired, false);
              log.info({ kind, rollout: plan.rollout.map((f) => f.path) }, 'rolled out');
            }
            if (plan.drift.length > 0 && !correct) outcomes.push('none');
          } catch (error) {
            if (plan.drift.length > 0 || plan.existedBefore) {
              errors.push((error as Error).message);
              outcomes.push('failed');
            } else {
              throw error;
            }
          }
        }
      }
      drift = combineDrift(items, outcomes, errors);
    } else if (suspended) {
      // Report only: what differs, nothing done about it.
      const items = [
        ...planObject('PersistentVolumeClaim', dPvc, pvc, false).drift,
        ...(secret && token !== undefined ? planObject('Secret', desiredTokenSecret(evl, token), secret, false).drift : []),
        ...planObject('NetworkPolicy', dNetpol, netpol, false).drift,
        ...planObject('Service', dSvc, svc, false).drift,
        ...planObject('Pod', dPod, pod, false).drift,
      ];
      drift = { items, outcome: 'none' };
    }

    // ---- poll the log server ---------------------------------------------------------
    let server: ServerObservation | undefined;
    const ip = (pod as LivePod | undefined)?.status?.podIP;
    if (pod && ip && !pod.metadata?.deletionTimestamp) {
      server = await poll(ip, port, { ...(token !== undefined ? { token } : {}), ...(deps.pollTimeoutMs !== undefined ? { timeoutMs: deps.pollTimeoutMs } : {}) });
      if (!server.ok && server.error === PollError.Timeout) pollTimeouts.set(key, (pollTimeouts.get(key) ?? 0) + 1);
      else pollTimeouts.delete(key);
      if (!server.ok) log.debug({ error: server.error, message: server.message }, 'log server poll failed');
    }

    // ---- approved repair ---------------------------------------------------------------
    let repair: Repair | undefined;
    const approval = evl.metadata.annotations?.[APPROVE_REPAIR_ANNOTATION];
    const corruptionId = server?.ok && server.status.state === 'corrupt' ? server.status.recovery?.corruption?.id : undefined;
    const previous = old?.recovery?.repair;
    const failedBefore = previous?.corruptionId === corruptionId && previous?.result === 'Failed';
    if (!suspended && ip && corruptionId !== undefined && approval === corruptionId && !failedBefore) {
      const approvedAt = formatTime(now());
      log.warn({ corruptionId }, `repair approved with ${APPROVE_REPAIR_ANNOTATION}: asking the log server to truncate at the corrupt record`);
      const r = await runRepair(ip, port, corruptionId, token !== undefined ? { token } : {});
      const completedAt = formatTime(now());
      if (r.ok) {
        server = r;
        const moved = r.status.repair;
        repair = {
          corruptionId,
          approvedAt,
          completedAt,
          result: 'Succeeded',
          ...(moved?.bytesMoved !== undefined ? { bytesDiscarded: moved.bytesMoved } : {}),
          message: `the log was truncated at the corrupt record${moved?.movedTo ? `; the cut bytes are kept in ${moved.movedTo}` : ''}`,
        };
        log.warn({ corruptionId, bytesMoved: moved?.bytesMoved, movedTo: moved?.movedTo }, 'approved repair done');
      } else {
        repair = { corruptionId, approvedAt, completedAt, result: 'Failed', message: `${r.error}: ${r.message}`.slice(0, 4000) };
        log.error({ corruptionId, error: r.error, message: r.message }, 'approved repair failed');
      }
    }

    // ---- status ------------------------------------------------------------------------
    const input: StatusInput = {
      evl,
      ...(pvc ? { pvc: pvc as LivePvc } : {}),
      ...(pod ? { pod: pod as LivePod } : {}),
      ...(svc ? { service: svc as LiveService } : {}),
      ...(storageClass ? { storageClass } : {}),
      ...(server ? { server } : {}),
      ...(pollTimeouts.has(key) ? { pollTimeoutsInARow: pollTimeouts.get(key)! } : {}),
      drift,
      ...(repair ? { repair } : {}),
      ...(secret && token !== undefined ? { tokenSecret: { name: tokenSecretName(evl), key: TOKEN_KEY } } : {}),
      desiredPodHash: dPod.metadata.annotations[SPEC_HASH_ANNOTATION],
      now: now(),
      options: { countersMinIntervalMs: deps.config.statusCounterInterval, port },
    };
    const next = computeStatus(input);
    if (statusChanged(old, next)) {
      // Diff against what the server holds (raw), so keys that disappeared are nulled.
      const patch = mergePatch(raw.status ?? {}, next);
      try {
        await step(key, 'patching the status subresource', () =>
          http.json('PATCH', `${collection(namespace)}/${encodeURIComponent(name)}/status`, {
            contentType: 'application/merge-patch+json',
            // The precondition: a status computed from a stale cache is refused (409).
            body: { metadata: { resourceVersion: meta.resourceVersion }, status: patch },
            timeoutMs: 10_000,
          }),
        );
      } catch (error) {
        const code = codeOf(error);
        // 409: the cache was behind (usually our own previous status write); the update
        // event that brings the newer object enqueues this key again. 404: deleted.
        if (code === 409) {
          log.debug('status patch conflict: the cache is behind; reconciling again when it catches up');
          return Outcome.requeueAfter(deps.config.pollInterval);
        }
        if (code === 404) return Outcome.done();
        throw error;
      }
      logTransition(log, old, next);
      // Drift found and put back in this pass is gone from status; its DriftDetected still names it.
      for (const e of transitionEvents(old, next, drift.outcome === 'corrected' ? drift.items : undefined)) await deps.recorder.record(ref, e);
    }
    // The status now stored (written, or unchanged): the gauges follow it.
    deps.metrics?.observe(namespace, name, next, old);
    // A tolerated poll timeout kept Ready: poll again soon rather than after a full interval.
    return Outcome.requeueAfter(nextRequeueMs(deps.config.pollInterval, countersRefreshDueIn(input, next), waiting || pollTimeoutTolerated(input)));
  }

  return {
    name: CONTROLLER_NAME,
    primary: { group: GROUP, version: VERSION, plural: PLURAL, apiVersion: API_VERSION, kind: KIND },
    owned: {
      pods: { version: 'v1', plural: 'pods', labelSelector: OWNED_SELECTOR },
      persistentvolumeclaims: { version: 'v1', plural: 'persistentvolumeclaims', labelSelector: OWNED_SELECTOR },
      services: { version: 'v1', plural: 'services', labelSelector: OWNED_SELECTOR },
      // Only Secrets with our label are listed and cached (RBAC cannot narrow list/watch
      // by label: the ClusterRole still allows reading every Secret; see docs/operator.md).
      secrets: { version: 'v1', plural: 'secrets', labelSelector: OWNED_SELECTOR },
      networkpolicies: { group: 'networking.k8s.io', version: 'v1', plural: 'networkpolicies', labelSelector: OWNED_SELECTOR },
    },
    reconcile,
  };
}

function logTransition(log: Logger, old: EventLogStatus | undefined, next: EventLogStatus): void {
  const ready = (s: EventLogStatus | undefined) => s?.conditions?.find((c) => c.type === 'Ready');
  const a = ready(old);
  const b = ready(next);
  if (a?.status !== b?.status || a?.reason !== b?.reason || old?.phase !== next.phase) {
    log.info({ phase: next.phase, ready: b?.status, reason: b?.reason }, 'status changed');
  } else {
    log.debug('status written');
  }
}

export type { EventLog };
