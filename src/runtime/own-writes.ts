/**
 * The operator's own writes, as the watch will report them back: every successful write
 * the Manager's API client makes produces an object with a new `resourceVersion`, and
 * the watch later delivers an event carrying exactly that object (uid + resourceVersion
 * name one write of one object). Remembering them lets the Manager
 *
 * - tell the echo of its own write from a change made by someone else (an event whose
 *   uid@resourceVersion it wrote is its own; anything else is not), and
 * - read its own writes: a key whose writes have not come back through the watch yet is
 *   reconciled only once they have (or after `ttlMs`), so a pass never starts from a
 *   cache older than what the previous pass wrote (client-go's "expectations").
 *
 * Guarantees
 * - Bounded: an entry is removed when its event arrives, and at the latest `ttlMs` after
 *   the write (a write whose event never comes, e.g. squashed by a relist, only delays
 *   its key by `ttlMs` once).
 * - `consume` is true for exactly the writes recorded (and only once per write), also
 *   when the watch delivered the event before the write's answer was read (the Manager
 *   then asks after the pass that wrote it has finished).
 *
 * Caveat: a write that changed nothing produces no event; callers must not record one
 * (the Manager compares with its cache first).
 */
import type { Clock } from './clock.ts';

interface Entry {
  key: string;
  expiresAt: number;
  /** Its event has not been seen yet: the key waits for it (read your writes). */
  awaited: boolean;
}

export class OwnWrites {
  readonly #clock: Clock;
  readonly #ttlMs: number;
  /** uid@resourceVersion -> the key (primary namespace/name) the write was made for. */
  readonly #writes = new Map<string, Entry>();
  /** key -> its outstanding writes. */
  readonly #byKey = new Map<string, Set<string>>();

  constructor(clock: Clock, ttlMs: number) {
    this.#clock = clock;
    this.#ttlMs = ttlMs;
  }

  get size(): number {
    return this.#writes.size;
  }

  /**
   * A write of object `uid` that produced `resourceVersion`, made for primary `key`.
   * `awaited`: the cache does not hold it yet, so `key` waits for its event; false when
   * the watch was faster than the answer (the event is already in the cache, but a
   * decision about it may still ask `consume`).
   */
  record(key: string, uid: string, resourceVersion: string, awaited = true): void {
    const token = `${uid}@${resourceVersion}`;
    this.#drop(token);
    this.#writes.set(token, { key, expiresAt: this.#clock.now() + this.#ttlMs, awaited });
    if (awaited) {
      let set = this.#byKey.get(key);
      if (!set) this.#byKey.set(key, (set = new Set()));
      set.add(token);
    }
    if (this.#writes.size > 1024) this.#expire();
  }

  /** The key of our write if this is its event (the entry is removed), else undefined. */
  consume(uid: string | undefined, resourceVersion: string | undefined): string | undefined {
    if (!uid || !resourceVersion) return undefined;
    const token = `${uid}@${resourceVersion}`;
    const e = this.#writes.get(token);
    if (!e) return undefined;
    this.#drop(token);
    return e.expiresAt > this.#clock.now() ? e.key : undefined;
  }

  /** Milliseconds until the last awaited write of `key` expires; 0 when none is outstanding. */
  outstandingMs(key: string): number {
    const set = this.#byKey.get(key);
    if (!set) return 0;
    const now = this.#clock.now();
    let latest = 0;
    for (const token of [...set]) {
      const e = this.#writes.get(token);
      if (!e || e.expiresAt <= now) this.#drop(token);
      else latest = Math.max(latest, e.expiresAt - now);
    }
    return latest;
  }

  /** Forget everything about `key` (the primary is gone). */
  forget(key: string): void {
    for (const token of [...(this.#byKey.get(key) ?? [])]) this.#drop(token);
  }

  #drop(token: string): void {
    const e = this.#writes.get(token);
    if (!e) return;
    this.#writes.delete(token);
    if (!e.awaited) return;
    const set = this.#byKey.get(e.key);
    if (set) {
      set.delete(token);
      if (set.size === 0) this.#byKey.delete(e.key);
    }
  }

  #expire(): void {
    const now = this.#clock.now();
    for (const [token, e] of [...this.#writes]) if (e.expiresAt <= now) this.#drop(token);
  }
}
