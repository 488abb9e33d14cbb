/**
 * A small read-through cache with a time to live, for API reads that are not watched
 * (RBAC allows only `get`) and change rarely, e.g. the StorageClass every reconcile of
 * every EventLog looks up: at 1000 EventLogs and a 10 s poll interval that is 100 GETs/s
 * for one object (docs/benchmarks.md).
 *
 * Guarantees
 * - A value is at most `ttlMs` old when returned.
 * - Concurrent `get`s of a key that is not cached share one load.
 * - A failed load is not cached (the next `get` loads again).
 * - Bounded: at most `maxEntries` keys (the oldest is evicted first).
 */
export class TtlCache<V> {
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, { at: number; value: Promise<V> }>();

  constructor(ttlMs: number, opts: { maxEntries?: number; now?: () => number } = {}) {
    this.#ttlMs = ttlMs;
    this.#maxEntries = opts.maxEntries ?? 256;
    this.#now = opts.now ?? (() => performance.now());
  }

  get(key: string, load: () => Promise<V>): Promise<V> {
    const now = this.#now();
    const hit = this.#entries.get(key);
    if (hit && now - hit.at < this.#ttlMs) return hit.value;
    const value = load();
    this.#entries.delete(key);
    this.#entries.set(key, { at: now, value });
    value.catch(() => {
      if (this.#entries.get(key)?.value === value) this.#entries.delete(key);
    });
    while (this.#entries.size > this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value as string);
    return value;
  }

  /** Drop `key` (or everything). */
  invalidate(key?: string): void {
    if (key === undefined) this.#entries.clear();
    else this.#entries.delete(key);
  }
}
