/**
 * A rate-limited, deduplicating work queue of keys, after client-go's `workqueue`
 * (the queue under every controller-runtime controller). One key names one object
 * (for EventLogs: "namespace/name"); the queue carries keys, never objects, so a worker
 * always reads the latest state from the cache.
 *
 * Guarantees:
 * - Dedupe: a key added while it is already waiting is not added twice (FIFO position
 *   of its first add is kept).
 * - Exclusive: a key is never handed out while it is being processed (between `get()`
 *   returning it and `done(key)`), whatever the number of workers.
 * - No lost update: a key added while it is being processed is queued again when
 *   `done(key)` is called, so a change seen during a reconcile gets its own reconcile.
 * - `addAfter(key, ms)`: the key is added after `ms`; if it is already waiting, the
 *   earliest time wins. `ms <= 0` adds now.
 * - `addRateLimited(key)`: `addAfter(key, rateLimiter.when(key))` - per-key exponential
 *   back-off (default: controller-runtime's, 5 ms doubling to 1000 s, plus an overall
 *   10 qps / burst 100 bucket). `forget(key)` resets the back-off.
 * - `get()` resolves with the next key in FIFO order as soon as one is available, or
 *   with `undefined` once the queue is shut down (see below). Waiting getters are served
 *   in the order they called `get()`.
 * - The queue knows nothing of reconcile outcomes: the worker loop (`worker.ts`) takes
 *   keys, runs the handler and turns its outcome into forget / addAfter /
 *   addRateLimited / done calls, as controller-runtime keeps its reconcile loop apart
 *   from client-go's queue.
 * - Shutdown:
 *   - `shutdown()`: stop intake (adds ignored, pending `addAfter`s cancelled), drop keys
 *     not yet handed out, and make every `get()` return `undefined`. In-flight handlers
 *     finish on their own; their `done()` is accepted. Use when leadership is lost or
 *     a drain timed out: dropped keys are level-triggered state that the next
 *     leader/start relists anyway.
 *   - `shutdownWithDrain()`: stop intake, keep handing out keys already queued (including
 *     keys re-added before the shutdown while they were processing) until none is queued
 *     or in flight, then resolve. Like client-go's ShutDownWithDrain, it waits for every
 *     handed-out key's `done()`; bound it with a timeout and call `shutdown()` if it
 *     expires.
 * - Metrics: the queue reports adds, depth, queue duration, work duration, retries and
 *   unfinished work through `WorkQueueMetrics` (prom-client implementation in
 *   `metrics.ts`), with client-go's meanings: `adds` counts non-deduplicated adds;
 *   `depth` is the number of keys waiting to be handed out (including keys re-added
 *   while processing); `retries` counts every `addAfter`/`addRateLimited` call.
 *
 * Caveats:
 * - Keys are compared with SameValueZero (Map/Set): use strings or numbers, not objects.
 * - A handler that never settles holds its key forever (and blocks drain); reconcilers
 *   must bound their own I/O with timeouts.
 * - Back-off state is in memory only; it resets on restart.
 * - Calling `done(key)` for a key that is not being processed is a no-op.
 * - `add(key)` does not cancel a pending `addAfter(key)`: the key runs again at that time
 *   (harmless for idempotent reconciles, and what a requeue-after asked for anyway).
 */
import { realClock, type Clock, type TimerHandle } from './clock.ts';
import { DelayHeap, Fifo } from './queue-order.ts';
import { defaultControllerRateLimiter, type RateLimiter } from './ratelimiter.ts';

// ---------------------------------------------------------------------------
// Metrics hooks
// ---------------------------------------------------------------------------

export interface UnfinishedWork {
  /** Sum of how long every in-flight key has been processing, in seconds. */
  unfinishedSeconds: number;
  /** How long the longest-running in-flight key has been processing, in seconds. */
  longestRunningSeconds: number;
}

/** What the queue reports (client-go's workqueue metrics). All durations in seconds. */
export interface WorkQueueMetrics {
  /** A key entered the queue (deduplicated adds are not counted). */
  add(): void;
  /** Keys waiting to be handed out, after every change. */
  depth(n: number): void;
  /** Time a key waited between its first add and being handed out. */
  queueDuration(seconds: number): void;
  /** Time between a key being handed out and `done`. */
  workDuration(seconds: number): void;
  /** An `addAfter`/`addRateLimited` call. */
  retry(): void;
  /** The queue registers how to compute unfinished work; backends read it at scrape time. */
  bindUnfinishedWork?(source: () => UnfinishedWork): void;
  /**
   * A key was handed out, by what first queued it: `event` (`add`) or `requeue` (an
   * `addAfter`/`addRateLimited` that came due). Not a client-go metric.
   */
  handedOut?(trigger: 'event' | 'requeue'): void;
}


const noopMetrics: WorkQueueMetrics = {
  add() {},
  depth() {},
  queueDuration() {},
  workDuration() {},
  retry() {},
};

export interface WorkQueueOptions<K> {
  /** Queue name, used as the `name` label of the workqueue metrics (e.g. "eventlog"). */
  name?: string;
  clock?: Clock;
  rateLimiter?: RateLimiter<K>;
  metrics?: WorkQueueMetrics;
}


export interface QueueStats {
  /** Keys ready to be handed out. */
  queued: number;
  /** Keys handed out and not yet done. */
  processing: number;
  /** Keys waiting for an `addAfter` time. */
  delayed: number;
  /** Keys waiting to be handed out, including ones re-added while processing. */
  dirty: number;
}

// ---------------------------------------------------------------------------
// The queue
// ---------------------------------------------------------------------------

export class WorkQueue<K = string> {
  readonly name: string;
  readonly #clock: Clock;
  /** The clock the queue runs on (the worker loop times reconciles with it). */
  get clock(): Clock {
    return this.#clock;
  }
  readonly #limiter: RateLimiter<K>;
  readonly #metrics: WorkQueueMetrics;

  readonly #queue = new Fifo<K>();
  readonly #dirty = new Set<K>();
  readonly #processing = new Set<K>();
  #getters: Array<(key: K | undefined) => void> = [];

  #shuttingDown = false;
  #draining = false;
  #drainWaiters: Array<() => void> = [];

  readonly #delayed = new Map<K, number>();
  readonly #heap = new DelayHeap<K>();
  #seq = 0;
  #timer: TimerHandle | undefined;
  #timerAt = Infinity;

  readonly #addedAt = new Map<K, number>();
  readonly #startedAt = new Map<K, number>();
  /** Keys waiting because a delayed add came due (the rest were added by `add`). */
  readonly #byRequeue = new Set<K>();

  constructor(options: WorkQueueOptions<K> = {}) {
    this.name = options.name ?? 'default';
    this.#clock = options.clock ?? realClock;
    this.#limiter = options.rateLimiter ?? defaultControllerRateLimiter<K>(this.#clock);
    this.#metrics = options.metrics ?? noopMetrics;
    this.#metrics.bindUnfinishedWork?.(() => this.unfinishedWork());
  }

  /** Queue `key` now (deduplicated; deferred until `done` if it is being processed). */
  add(key: K): void {
    this.#add(key, false);
  }

  #add(key: K, requeue: boolean): void {
    if (this.#shuttingDown) return;
    if (this.#dirty.has(key)) return;
    this.#dirty.add(key);
    if (requeue) this.#byRequeue.add(key);
    if (!this.#addedAt.has(key)) this.#addedAt.set(key, this.#clock.now());
    this.#metrics.add();
    this.#metrics.depth(this.#dirty.size);
    if (this.#processing.has(key)) return;
    this.#queue.push(key);
    this.#dispatch();
  }

  /** Queue `key` after `ms` milliseconds; if it is already waiting, the earliest time wins. */
  addAfter(key: K, ms: number): void {
    if (this.#shuttingDown) return;
    this.#metrics.retry();
    if (!(ms > 0)) {
      this.#add(key, true);
      return;
    }
    const at = this.#clock.now() + ms;
    const current = this.#delayed.get(key);
    if (current !== undefined && current <= at) return;
    this.#delayed.set(key, at);
    this.#heap.push({ key, at, seq: this.#seq++ });
    this.#armTimer();
  }

  /** Queue `key` after its rate limiter's back-off (records one more failure). */
  addRateLimited(key: K): void {
    if (this.#shuttingDown) return;
    this.addAfter(key, this.#limiter.when(key));
  }

  /** Reset the back-off of `key` (does not remove it from the queue). */
  forget(key: K): void {
    this.#limiter.forget(key);
  }

  /** Consecutive failures recorded for `key`. */
  numRequeues(key: K): number {
    return this.#limiter.numRequeues(key);
  }

  /**
   * The next key, as soon as one is available; `undefined` once the queue is shut down
   * (after a drain: once nothing is queued or in flight). The caller must call
   * `done(key)` when finished with it.
   */
  get(): Promise<K | undefined> {
    const key = this.#take();
    if (key !== undefined) return Promise.resolve(key);
    if (this.#shuttingDown && (!this.#draining || this.#drained())) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#getters.push(resolve));
  }

  /** Like `get()` but synchronous: a key if one is ready now, else `undefined`. */
  tryGet(): K | undefined {
    return this.#take();
  }

  /** Mark `key` finished; if it was added meanwhile, it is queued again. */
  done(key: K): void {
    if (!this.#processing.delete(key)) return;
    const started = this.#startedAt.get(key);
    this.#startedAt.delete(key);
    if (started !== undefined) this.#metrics.workDuration((this.#clock.now() - started) / 1000);
    if (this.#dirty.has(key)) {
      this.#queue.push(key);
      this.#dispatch();
    }
    this.#checkDrained();
  }

  /** Keys ready to be handed out (client-go `Len`). */
  len(): number {
    return this.#queue.length;
  }

  stats(): QueueStats {
    return { queued: this.#queue.length, processing: this.#processing.size, delayed: this.#delayed.size, dirty: this.#dirty.size };
  }

  isProcessing(key: K): boolean {
    return this.#processing.has(key);
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /** In-flight work, for the unfinished-work gauges. */
  unfinishedWork(): UnfinishedWork {
    const now = this.#clock.now();
    let total = 0;
    let longest = 0;
    for (const started of this.#startedAt.values()) {
      const d = (now - started) / 1000;
      total += d;
      longest = Math.max(longest, d);
    }
    return { unfinishedSeconds: total, longestRunningSeconds: longest };
  }

  /** Stop now: ignore adds, drop queued and delayed keys, every `get()` returns undefined. */
  shutdown(): void {
    this.#shuttingDown = true;
    this.#draining = false;
    this.#cancelDelayed();
    this.#queue.clear();
    for (const key of this.#dirty) this.#addedAt.delete(key);
    this.#dirty.clear();
    this.#byRequeue.clear();
    this.#metrics.depth(0);
    const getters = this.#getters;
    this.#getters = [];
    for (const g of getters) g(undefined);
    this.#checkDrained();
  }

  /**
   * Stop intake and resolve once every queued key has been handed out and every
   * handed-out key is done. Calling `shutdown()` meanwhile drops what is still queued.
   */
  shutdownWithDrain(): Promise<void> {
    if (!this.#shuttingDown) {
      this.#shuttingDown = true;
      this.#draining = true;
      this.#cancelDelayed();
    }
    const p = new Promise<void>((resolve) => this.#drainWaiters.push(resolve));
    this.#checkDrained();
    return p;
  }

  #take(): K | undefined {
    if (this.#shuttingDown && !this.#draining) return undefined;
    const key = this.#queue.shift();
    if (key === undefined) return undefined;
    const now = this.#clock.now();
    this.#processing.add(key);
    this.#dirty.delete(key);
    this.#metrics.handedOut?.(this.#byRequeue.delete(key) ? 'requeue' : 'event');
    this.#startedAt.set(key, now);
    const added = this.#addedAt.get(key);
    this.#addedAt.delete(key);
    if (added !== undefined) this.#metrics.queueDuration((now - added) / 1000);
    this.#metrics.depth(this.#dirty.size);
    return key;
  }

  #dispatch(): void {
    while (this.#getters.length > 0 && this.#queue.length > 0) {
      const key = this.#take();
      if (key === undefined) return;
      const getter = this.#getters.shift() as (key: K | undefined) => void;
      getter(key);
    }
  }

  #drained(): boolean {
    return this.#queue.length === 0 && this.#processing.size === 0;
  }

  #checkDrained(): void {
    if (!this.#shuttingDown || !this.#drained()) return;
    const getters = this.#getters;
    this.#getters = [];
    for (const g of getters) g(undefined);
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w();
  }

  #armTimer(): void {
    // Drop entries superseded by an earlier addAfter of the same key.
    for (let top = this.#heap.peek(); top && this.#delayed.get(top.key) !== top.at; top = this.#heap.peek()) this.#heap.pop();
    const top = this.#heap.peek();
    if (!top) {
      this.#clearTimer();
      return;
    }
    if (this.#timer && this.#timerAt <= top.at) return;
    this.#clearTimer();
    this.#timerAt = top.at;
    this.#timer = this.#clock.setTimer(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.#fireDue();
    }, top.at - this.#clock.now());
  }

  #fireDue(): void {
    const now = this.#clock.now();
    for (let top = this.#heap.peek(); top && top.at <= now; top = this.#heap.peek()) {
      this.#heap.pop();
      if (this.#delayed.get(top.key) !== top.at) continue; // superseded
      this.#delayed.delete(top.key);
      this.#add(top.key, true);
    }
    this.#armTimer();
  }

  #clearTimer(): void {
    if (this.#timer) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  #cancelDelayed(): void {
    this.#clearTimer();
    this.#heap.clear();
    this.#delayed.clear();
  }
}
