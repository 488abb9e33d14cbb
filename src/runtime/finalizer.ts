/**
 * Adding and removing our finalizer without touching anyone else's.
 *
 * A merge patch of `metadata.finalizers` replaces the whole list (it would drop a
 * finalizer another controller added a moment ago), and an update needs the whole
 * object. So both operations are JSON patches guarded by a `test` op on exactly what
 * they change: add appends at the end only if the list is what we saw (or, with no
 * list yet, only if the object is unchanged); remove deletes index i only if index i
 * still holds our finalizer. A conflicting change makes the
 * API server answer 422 (test failed), and the caller retries from a fresh read —
 * the reconcile loop does that by returning an error.
 *
 * These are the only writes the operator makes to an EventLog outside its status.
 */
import type { KubeHttp } from './kube-http.ts';

export interface FinalizerTarget {
  /** Collection path, e.g. /apis/eventlog.dev/v1alpha1/namespaces/ns/eventlogs */
  collection: string;
  name: string;
  finalizers: readonly string[] | undefined;
  /** The resourceVersion the finalizers were read at. */
  resourceVersion: string;
}

type JsonPatchOp = { op: 'add' | 'remove' | 'test'; path: string; value?: unknown };

/**
 * The JSON patch that adds `finalizer`, or undefined when it is already there. With
 * no list yet, `add` would replace a list someone created since our read, and JSON
 * patch cannot test for absence, so that case tests the resourceVersion instead.
 */
export function addFinalizerPatch(current: readonly string[] | undefined, finalizer: string, resourceVersion: string): JsonPatchOp[] | undefined {
  if (current?.includes(finalizer)) return undefined;
  if (!current || current.length === 0) {
    return [
      { op: 'test', path: '/metadata/resourceVersion', value: resourceVersion },
      { op: 'add', path: '/metadata/finalizers', value: [finalizer] },
    ];
  }
  return [
    { op: 'test', path: '/metadata/finalizers', value: [...current] },
    { op: 'add', path: '/metadata/finalizers/-', value: finalizer },
  ];
}

/** The JSON patch that removes `finalizer`, or undefined when it is not there. */
export function removeFinalizerPatch(current: readonly string[] | undefined, finalizer: string): JsonPatchOp[] | undefined {
  const index = current?.indexOf(finalizer) ?? -1;
  if (index < 0) return undefined;
  return [
    { op: 'test', path: `/metadata/finalizers/${index}`, value: finalizer },
    { op: 'remove', path: `/metadata/finalizers/${index}` },
  ];
}

async function send(http: KubeHttp, target: FinalizerTarget, patch: JsonPatchOp[] | undefined, what: string): Promise<boolean> {
  if (!patch) return false;
  try {
    await http.json('PATCH', `${target.collection}/${encodeURIComponent(target.name)}`, { contentType: 'application/json-patch+json', body: patch });
    return true;
  } catch (error) {
    throw new Error(`${what} on ${target.collection}/${target.name}: ${(error as Error).message}`, { cause: error });
  }
}

/** Adds `finalizer`; returns whether a write was made. */
export function ensureFinalizer(http: KubeHttp, target: FinalizerTarget, finalizer: string): Promise<boolean> {
  return send(http, target, addFinalizerPatch(target.finalizers, finalizer, target.resourceVersion), `adding finalizer ${finalizer}`);
}

/** Removes `finalizer`; returns whether a write was made. */
export function removeFinalizer(http: KubeHttp, target: FinalizerTarget, finalizer: string): Promise<boolean> {
  return send(http, target, removeFinalizerPatch(target.finalizers, finalizer), `removing finalizer ${finalizer}`);
}
