/**
 * Rate limiters for the work queue, after client-go's `workqueue` rate limiters.
 *
 * A rate limiter answers "how long should this key wait before it is retried?" and
 * remembers failures per key until `forget(key)`.
 *
 * Guarantees:
 * - `ItemExponentialFailureRateLimiter`: the n-th consecutive failure of a key waits
 *   `base * 2^(n-1)` ms, capped at `max` (defaults 5 ms and 1000 s, like client-go:
 *   5, 10, 20, 40 ms ... reaching the ~16.7 min cap at the 19th failure). Keys are
 *   independent; `forget` resets a key to the first step. No jitter: deterministic.
 * - `BucketRateLimiter`: an overall token bucket (default 10 qps, burst 100, like
 *   client-go's default controller limiter), so a storm of failing keys cannot
 *   hammer the API server; it has no per-key memory.
 * - `MaxOfRateLimiter`: the longest delay of its members; `forget` forgets in all.
 * - `defaultControllerRateLimiter()` = max(exponential 5 ms..1000 s, bucket 10 qps/100),
 *   which is what controller-runtime uses.
 *
 * Caveats: failure counts live in memory and are lost on restart (a new leader starts
 * every key at the first step), like client-go. Forgetting is the caller's job: the
 * worker loop (worker.ts) forgets on success, requeue-after and terminal errors.
 */
import { realClock, type Clock } from './clock.ts';

export interface RateLimiter<K> {
  /** Record a failure of `key` and return how many ms to wait before retrying it. */
  when(key: K): number;
  /** Clear the failure history of `key` (after success or when it is dropped). */
  forget(key: K): void;
  /** Consecutive failures recorded for `key` since the last `forget`. */
  numRequeues(key: K): number;
}

export const DEFAULT_BASE_DELAY_MS = 5;
export const DEFAULT_MAX_DELAY_MS = 1_000_000;

export class ItemExponentialFailureRateLimiter<K> implements RateLimiter<K> {
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  #failures = new Map<K, number>();

  constructor(baseDelayMs = DEFAULT_BASE_DELAY_MS, maxDelayMs = DEFAULT_MAX_DELAY_MS) {
    if (!(baseDelayMs > 0) || !(maxDelayMs >= baseDelayMs)) {
      throw new Error(`ItemExponentialFailureRateLimiter: need 0 < base (${baseDelayMs}) <= max (${maxDelayMs})`);
    }
    this.baseDelayMs = baseDelayMs;
    this.maxDelayMs = maxDelayMs;
  }

  when(key: K): number {
    const exp = this.#failures.get(key) ?? 0;
    this.#failures.set(key, exp + 1);
    // 2 ** exp overflows to Infinity for huge exp; Math.min keeps the cap.
    return Math.min(this.baseDelayMs * 2 ** exp, this.maxDelayMs);
  }

  forget(key: K): void {
    this.#failures.delete(key);
  }

  numRequeues(key: K): number {
    return this.#failures.get(key) ?? 0;
  }
}

/** A token bucket over all keys (golang.org/x/time/rate "Reserve" semantics). */
export class BucketRateLimiter<K> implements RateLimiter<K> {
  readonly qps: number;
  readonly burst: number;
  #clock: Clock;
  #tokens: number;
  #last: number;

  constructor(qps = 10, burst = 100, clock: Clock = realClock) {
    if (!(qps > 0) || !(burst >= 1)) throw new Error(`BucketRateLimiter: need qps > 0 (${qps}) and burst >= 1 (${burst})`);
    this.qps = qps;
    this.burst = burst;
    this.#clock = clock;
    this.#tokens = burst;
    this.#last = clock.now();
  }

  when(_key: K): number {
    const now = this.#clock.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) / 1000) * this.qps);
    this.#last = now;
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : (-this.#tokens / this.qps) * 1000;
  }

  forget(_key: K): void {}

  numRequeues(_key: K): number {
    return 0;
  }
}

export class MaxOfRateLimiter<K> implements RateLimiter<K> {
  readonly limiters: readonly RateLimiter<K>[];

  constructor(...limiters: RateLimiter<K>[]) {
    if (limiters.length === 0) throw new Error('MaxOfRateLimiter: need at least one limiter');
    this.limiters = limiters;
  }

  when(key: K): number {
    let max = 0;
    for (const l of this.limiters) max = Math.max(max, l.when(key));
    return max;
  }

  forget(key: K): void {
    for (const l of this.limiters) l.forget(key);
  }

  numRequeues(key: K): number {
    let max = 0;
    for (const l of this.limiters) max = Math.max(max, l.numRequeues(key));
    return max;
  }
}

/** controller-runtime's default: per-key exponential back-off and an overall bucket. */
export function defaultControllerRateLimiter<K>(clock: Clock = realClock): RateLimiter<K> {
  return new MaxOfRateLimiter<K>(new ItemExponentialFailureRateLimiter<K>(), new BucketRateLimiter<K>(10, 100, clock));
}
