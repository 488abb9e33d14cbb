/**
 * Which watch events are worth a reconcile (controller-runtime's predicates), and cache
 * transforms that keep only what the reconcile reads. Pure functions.
 *
 * - `changedParts(old, new)`: which parts of an object an update changed: `metadata`
 *   (labels, annotations, finalizers, owner references, deletionTimestamp, generation ...;
 *   never resourceVersion or managedFields), `status`, and `spec` (every other top-level
 *   field). An update that changes none of them (only the resourceVersion, or only
 *   managedFields that the cache does not keep) changes nothing a reconcile reads.
 * - `withoutManagedFields`, `keepManagedFieldsOf(manager)`, `withoutFinalizers`,
 *   `withoutAnnotations(keys)`, `withoutAllAnnotations`: cache transforms (a change only to what a transform drops
 *   is then no change at all).
 */
import { jsonEqual } from '../common/json.ts';
import type { KubeObject } from './store.ts';

export type ObjectPart = 'metadata' | 'status' | 'spec';

const IGNORED_METADATA = new Set(['resourceVersion', 'managedFields']);

function metadataEqual(a: Record<string, unknown> | undefined, b: Record<string, unknown> | undefined): boolean {
  const keys = new Set([...Object.keys(a ?? {}), ...Object.keys(b ?? {})]);
  for (const k of keys) {
    if (IGNORED_METADATA.has(k)) continue;
    if (!jsonEqual(a?.[k], b?.[k])) return false;
  }
  return true;
}

/** The parts an update from `old` to `now` changed (empty: nothing but resourceVersion/managedFields). */
export function changedParts(old: KubeObject, now: KubeObject): Set<ObjectPart> {
  const parts = new Set<ObjectPart>();
  if (!metadataEqual(old.metadata, now.metadata)) parts.add('metadata');
  const a = old as Record<string, unknown>;
  const b = now as Record<string, unknown>;
  if (!jsonEqual(a.status, b.status)) parts.add('status');
  const rest = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of rest) {
    if (k === 'metadata' || k === 'status') continue;
    if (!jsonEqual(a[k], b[k])) {
      parts.add('spec');
      break;
    }
  }
  return parts;
}

/** Cache transform: drop metadata.managedFields (for objects whose reconcile never reads them). */
export function withoutManagedFields<T extends KubeObject>(obj: T): T {
  if (obj.metadata && 'managedFields' in obj.metadata) delete obj.metadata.managedFields;
  return obj;
}

/**
 * Cache transform: keep only the managedFields entries of `manager` for the main resource
 * (no subresource). Drift detection (src/decisions/drift.ts `classifyDifferences`) reads
 * exactly those: a field is ours when our applied entry manages it; other managers'
 * entries (the kubelet's status, controllers') are never read.
 */
export function keepManagedFieldsOf(manager: string): <T extends KubeObject>(obj: T) => T {
  return <T extends KubeObject>(obj: T): T => {
    const mf = obj.metadata?.managedFields;
    if (Array.isArray(mf)) {
      const kept = (mf as Array<{ manager?: string; subresource?: string }>).filter((e) => e?.manager === manager && !e.subresource);
      if (kept.length !== mf.length) obj.metadata!.managedFields = kept;
    }
    return obj;
  };
}

/** Cache transform: drop metadata.finalizers (for objects whose reconcile never reads them, e.g. an owned PVC's pvc-protection). */
export function withoutFinalizers<T extends KubeObject>(obj: T): T {
  if (obj.metadata && 'finalizers' in obj.metadata) delete obj.metadata.finalizers;
  return obj;
}

/** Cache transform: drop every annotation (for objects whose desired state sets none and whose reconcile reads none). */
export function withoutAllAnnotations<T extends KubeObject>(obj: T): T {
  if (obj.metadata && 'annotations' in obj.metadata) delete obj.metadata.annotations;
  return obj;
}

/** Composes cache transforms left to right. */
export function composeTransforms<T extends KubeObject>(...fns: Array<(obj: T) => T>): (obj: T) => T {
  return (obj) => fns.reduce((o, f) => f(o), obj);
}

/** Cache transform: drop the given annotations (e.g. kubectl's last-applied-configuration, a full copy of the object). */
export function withoutAnnotations(keys: readonly string[]): <T extends KubeObject>(obj: T) => T {
  return <T extends KubeObject>(obj: T): T => {
    const ann = obj.metadata?.annotations;
    if (ann && keys.some((k) => k in ann)) {
      const copy = { ...ann };
      for (const k of keys) delete copy[k];
      obj.metadata!.annotations = copy;
    }
    return obj;
  };
}
