/**
 * The manager's read side: what a reconcile reads (`Caches`), one view over the
 * per-namespace stores of a resource (`MultiStore`), and how an owned object's change
 * finds the primary to reconcile (`controllerOwnerKey`).
 *
 * Guarantees
 * - `MultiStore` answers from the first store that holds a key; `list` and `keys` are
 *   the concatenation, in store order. It copies nothing.
 * - `controllerOwnerKey` follows only the controller owner reference of the primary's
 *   kind and group (any version), in the object's own namespace.
 */
import type { KubeObject, ReadonlyStore } from './store.ts';

/** The read side a reconcile gets: one store per watched resource, keyed `ns/name`. */
export interface Caches {
  primary: ReadonlyStore<KubeObject>;
  owned: Record<string, ReadonlyStore<KubeObject>>;
}

/** Combines one store per namespace into one read view. */
export class MultiStore implements ReadonlyStore<KubeObject> {
  readonly #stores: readonly ReadonlyStore<KubeObject>[];
  constructor(stores: readonly ReadonlyStore<KubeObject>[]) {
    this.#stores = stores;
  }
  get(namespace: string | undefined, name: string): KubeObject | undefined {
    for (const s of this.#stores) {
      const o = s.get(namespace, name);
      if (o) return o;
    }
    return undefined;
  }
  getByKey(key: string): KubeObject | undefined {
    for (const s of this.#stores) {
      const o = s.getByKey(key);
      if (o) return o;
    }
    return undefined;
  }
  list(namespace?: string): KubeObject[] {
    return this.#stores.flatMap((s) => s.list(namespace));
  }
  keys(): string[] {
    return this.#stores.flatMap((s) => s.keys());
  }
  get size(): number {
    return this.#stores.reduce((n, s) => n + s.size, 0);
  }
}

/** The key of the primary that controls `obj`, if any (its controller owner reference). */
export function controllerOwnerKey(obj: KubeObject, owner: { apiVersion: string; kind: string }): string | undefined {
  const group = (v: string) => (v.includes('/') ? v.split('/')[0] : '');
  const ref = obj.metadata?.ownerReferences?.find((r) => r.controller === true && r.kind === owner.kind && group(r.apiVersion) === group(owner.apiVersion));
  if (!ref || !obj.metadata?.namespace) return undefined;
  return `${obj.metadata.namespace}/${ref.name}`;
}
