/**
 * The reflector's cache: objects of one resource by key (`namespace/name`, or `name`
 * for cluster-scoped objects, like client-go's MetaNamespaceKeyFunc), with a namespace
 * index. The watcher is its only writer; everyone else gets the `ReadonlyStore` view.
 *
 * Guarantees:
 * - Objects are deep-frozen on insert (unless disabled): a reconciler cannot corrupt the
 *   cache by mutating what it read (controller-runtime's "never mutate cache objects",
 *   enforced). Copy before changing (`structuredClone(obj)`).
 * - `replace(items)` computes what a full relist means for the cache: adds for new keys,
 *   updates for keys whose `metadata.resourceVersion` changed, deletes for keys that are
 *   gone; unchanged objects (same resourceVersion) produce no change.
 * - `list(namespace?)` returns a fresh array (safe to sort); order is unspecified.
 * - `transform` (optional) runs on every object before it is stored (and on the object a
 *   delete reports): a cache keeps only what its readers use (e.g. no managedFields).
 *   It must keep `metadata.name`, `namespace`, `uid` and `resourceVersion`, may return
 *   the object it was given (modified) or a new one, and must not throw.
 *
 * Caveats:
 * - Objects without `metadata.name` are rejected by `keyOf` (the API never sends them).
 * - A delete found by a relist carries the last object the cache saw, not the final
 *   state (client-go's DeletedFinalStateUnknown).
 */

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  resourceVersion?: string;
  uid?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: Array<{ apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }>;
  deletionTimestamp?: string;
  finalizers?: string[];
  [k: string]: unknown;
}

/** Anything with Kubernetes object metadata. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
}

/** `namespace/name`, or `name` for cluster-scoped objects. */
export function keyOf(obj: KubeObject): string {
  const name = obj.metadata?.name;
  if (!name) throw new Error(`store: object without metadata.name (kind ${obj.kind ?? 'unknown'})`);
  const ns = obj.metadata?.namespace;
  return ns ? `${ns}/${name}` : name;
}

/** Splits a key made by `keyOf` into namespace ('' for cluster-scoped) and name. */
export function splitKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/');
  return i < 0 ? { namespace: '', name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

/** Read access to a cache. */
export interface ReadonlyStore<T extends KubeObject> {
  /** The object `namespace/name` (namespace '' or undefined for cluster-scoped). */
  get(namespace: string | undefined, name: string): T | undefined;
  getByKey(key: string): T | undefined;
  /** All objects, or those of one namespace. A new array each call. */
  list(namespace?: string): T[];
  keys(): string[];
  readonly size: number;
}

export type StoreChange<T> =
  | { type: 'add'; obj: T }
  | { type: 'update'; old: T; obj: T }
  | { type: 'delete'; obj: T };

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}

export class Store<T extends KubeObject> implements ReadonlyStore<T> {
  readonly #items = new Map<string, T>();
  readonly #byNamespace = new Map<string, Set<string>>();
  readonly #freeze: boolean;
  readonly #transform: ((obj: T) => T) | undefined;

  constructor(opts: { freeze?: boolean; transform?: (obj: T) => T } = {}) {
    this.#freeze = opts.freeze ?? true;
    this.#transform = opts.transform;
  }

  #prepare(obj: T): T {
    const o = this.#transform ? this.#transform(obj) : obj;
    return this.#freeze ? deepFreeze(o) : o;
  }

  get size(): number {
    return this.#items.size;
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.#items.get(namespace ? `${namespace}/${name}` : name);
  }

  getByKey(key: string): T | undefined {
    return this.#items.get(key);
  }

  list(namespace?: string): T[] {
    if (namespace === undefined) return [...this.#items.values()];
    const keys = this.#byNamespace.get(namespace);
    if (!keys) return [];
    const out: T[] = [];
    for (const k of keys) {
      const o = this.#items.get(k);
      if (o) out.push(o);
    }
    return out;
  }

  keys(): string[] {
    return [...this.#items.keys()];
  }

  /** Insert or replace one object; returns the change (undefined if the resourceVersion is unchanged). */
  upsert(obj: T): StoreChange<T> | undefined {
    const key = keyOf(obj);
    const old = this.#items.get(key);
    if (old && old.metadata?.resourceVersion !== undefined && old.metadata.resourceVersion === obj.metadata?.resourceVersion) {
      return undefined;
    }
    this.#set(key, obj);
    return old ? { type: 'update', old, obj: this.#items.get(key)! } : { type: 'add', obj: this.#items.get(key)! };
  }

  /** Remove one object; returns the change with the removed object (the given one if it was unknown). */
  remove(obj: T): StoreChange<T> | undefined {
    const key = keyOf(obj);
    const old = this.#items.get(key);
    if (!old) return undefined;
    this.#delete(key);
    return { type: 'delete', obj: this.#prepare(obj) };
  }

  /** Replace the whole content (a relist); returns the changes, adds/updates first, then deletes. */
  replace(items: readonly T[]): StoreChange<T>[] {
    const changes: StoreChange<T>[] = [];
    const seen = new Set<string>();
    for (const obj of items) {
      const key = keyOf(obj);
      seen.add(key);
      const c = this.upsert(obj);
      if (c) changes.push(c);
    }
    for (const [key, old] of [...this.#items]) {
      if (!seen.has(key)) {
        this.#delete(key);
        changes.push({ type: 'delete', obj: old });
      }
    }
    return changes;
  }

  #set(key: string, obj: T): void {
    this.#items.set(key, this.#prepare(obj));
    const ns = splitKey(key).namespace;
    let set = this.#byNamespace.get(ns);
    if (!set) this.#byNamespace.set(ns, (set = new Set()));
    set.add(key);
  }

  #delete(key: string): void {
    this.#items.delete(key);
    const ns = splitKey(key).namespace;
    const set = this.#byNamespace.get(ns);
    if (set) {
      set.delete(key);
      if (set.size === 0) this.#byNamespace.delete(ns);
    }
  }
}
