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
 *   `withoutAnnotations(keys)`, `withoutAllAnnotations`, `sharedSubtrees()`: cache transforms (a change only to what a transform drops
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

/**
 * Cache transform factory: structural sharing ("hash consing") of the subtrees at `paths`
 * (e.g. `['spec']`, `['metadata', 'managedFields']`). The objects the operator owns are
 * near-identical across EventLogs: the same pod spec (containers, probes, security
 * context, tolerations) and the same managedFields trees, except for names and uids. Equal
 * subtrees (objects, arrays, strings) are replaced by one canonical instance; cached
 * objects are deep-frozen, so sharing is safe. Only the given paths are shared: elsewhere
 * (metadata, status) most values are unique (names, uids, times) and a table entry would
 * cost more than it saves.
 *
 * Bounded: at most `maxEntries` canonical values are remembered; then the table starts
 * afresh (objects cached before keep what they share, later ones share new instances),
 * so at most two generations of canonical values are alive.
 */
export function sharedSubtrees(paths: readonly (readonly string[])[], opts: { maxEntries?: number } = {}): <T extends KubeObject>(obj: T) => T {
  const maxEntries = opts.maxEntries ?? 4_096;
  let table = new Map<string, unknown>();
  let ids = new WeakMap<object, number>();
  let next = 0;
  const id = (v: object): number => {
    let n = ids.get(v);
    if (n === undefined) ids.set(v, (n = next++));
    return n;
  };
  // The canonical value of `v` and its part of a parent's key (primitives inline, objects by id).
  const share = (v: unknown): [unknown, string] => {
    if (v === null || typeof v !== 'object') {
      const key = JSON.stringify(v) ?? 'u';
      if (typeof v !== 'string') return [v, key];
      const hit = table.get(key);
      if (hit !== undefined) return [hit, key];
      table.set(key, v);
      return [v, key];
    }
    const parts: string[] = [];
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const [c, k] = share(v[i]);
        v[i] = c;
        parts.push(k);
      }
    } else {
      const o = v as Record<string, unknown>;
      for (const k of Object.keys(o)) {
        const [c, kk] = share(o[k]);
        o[k] = c;
        parts.push(`${JSON.stringify(k)}:${kk}`);
      }
    }
    const key = Array.isArray(v) ? `[${parts.join(',')}]` : `{${parts.join(',')}}`;
    const hit = table.get(key);
    if (hit !== undefined) return [hit, `#${id(hit as object)}`];
    if (table.size >= maxEntries) {
      table = new Map();
      ids = new WeakMap();
    }
    table.set(key, v);
    return [v, `#${id(v)}`];
  };
  return <T extends KubeObject>(obj: T): T => {
    for (const path of paths) {
      let parent = obj as unknown as Record<string, unknown> | undefined;
      for (const seg of path.slice(0, -1)) parent = parent?.[seg] as Record<string, unknown> | undefined;
      const last = path[path.length - 1]!;
      if (parent && typeof parent === 'object' && parent[last] !== undefined) parent[last] = share(parent[last])[0];
    }
    return obj;
  };
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
