/**
 * Watcher / reflector: keeps a local cache (`store.ts`) of one resource in step with the
 * API server by list + watch, like client-go's Reflector and kube-rs' `watcher` +
 * `reflector`, and never gives up until `stop()`.
 *
 * The loop:
 * 1. LIST (paginated, `limit`/`continue`, a consistent read) and replace the cache. The
 *    replace emits adds for new objects, updates for objects whose resourceVersion
 *    changed and deletes for objects that are gone, so a relist after a disconnection
 *    reports everything that happened meanwhile. The first completed list marks the
 *    watcher synced.
 * 2. WATCH from the list's resourceVersion with `allowWatchBookmarks=true` and a
 *    server-side `timeoutSeconds` jittered between min and 2 x min (client-go: 5-10 min).
 *    ADDED/MODIFIED/DELETED update the cache and fire the hooks; BOOKMARK only moves the
 *    resourceVersion.
 * 3. When the watch ends:
 *    - cleanly (server timeout): watch again at once from the last resourceVersion;
 *    - 410 Gone (HTTP 410, or an ERROR event with code 410: the resourceVersion is too
 *      old): relist (step 1) at once; a second 410 in a row waits the back-off first;
 *    - any other error, an ERROR event, a broken connection, or a stream that closed
 *      right after opening: wait the back-off (backoff.ts: 800 ms doubling to 30 s,
 *      jittered, reset by a watch open for 60 s), then watch again from the last
 *      resourceVersion. A failed list is retried the same way.
 *
 * Guarantees:
 * - Never stops on an error; only `stop()` ends it.
 * - The hooks see every change in the order the server reports it, and after a
 *   reconnect or relist nothing is lost: a resumed watch replays from the last
 *   resourceVersion, and a relist diffs against the cache.
 * - Hooks run synchronously right after the cache changed, so a hook (and anything
 *   it enqueues) reads a cache at least as new as the event.
 * - `hasSynced()` is true once the first list is in the cache (and stays true).
 * - `isHealthy()`: synced, not stopped, and the watch is open or has been
 *   disconnected for at most `unhealthyAfterMs` (default 2 x the back-off cap = 60 s).
 *   The operator's /readyz uses it.
 *
 * Hooks (`onAdd`/`onUpdate`/`onDelete`, event-hooks.ts) must only do cheap, synchronous
 * work such as enqueueing a key: they run on the watch's event path and are not awaited.
 * A hook registered with `onAdd` after objects are cached is first called for each
 * cached object (client-go's AddEventHandler does the same).
 *
 * Caveats:
 * - A delete noticed by a relist carries the last object the cache saw (client-go's
 *   DeletedFinalStateUnknown), not the object's final state.
 * - The cache is as fresh as the watch: while disconnected it is stale (bounded by the
 *   back-off and reported by `isHealthy()`).
 * - Objects in the cache are deep-frozen; copy before modifying.
 * - Bookmarks are only an optimisation (fewer 410s after a reconnect); servers may not
 *   send them.
 */
import type { Logger } from '../common/logger.ts';
import { silentLogger } from '../common/logger.ts';
import type { KubeAccess } from './kubeconfig.ts';
import { realClock, type Clock, type TimerHandle } from './clock.ts';
import { KubeApiError, KubeHttp, statusCodeOf } from './kube-http.ts';
import { httpListWatch, listAll, type ListWatchSource, type ResourceRef, type WatchEvent, type WatchRequest } from './list-watch.ts';
import { Backoff, type BackoffOptions } from './backoff.ts';
import { SyncGate } from './sync-gate.ts';
import { EventHooks, LISTED, WATCHED, type AddHook, type DeleteHook, type UpdateHook } from './event-hooks.ts';

export type { ChangeInfo } from './event-hooks.ts';
import { keyOf, Store, type KubeObject, type ReadonlyStore } from './store.ts';

export { keyOf, type KubeObject, type ReadonlyStore } from './store.ts';

// ---------------------------------------------------------------------------
// Watcher
// ---------------------------------------------------------------------------

export interface WatcherOptions<T> {
  source: ListWatchSource<T>;
  /** For logs. Default: the source's description. */
  name?: string;
  logger?: Logger;
  clock?: Clock;
  /** Random in [0, 1) for jitter; tests pass a constant. */
  random?: () => number;
  /** Page size of lists. Default 500. */
  pageSize?: number;
  /** Watch timeoutSeconds is jittered in [min, 2 x min]. Default 300. */
  minWatchTimeoutSeconds?: number;
  backoff?: BackoffOptions;
  /** isHealthy() turns false after being disconnected this long. Default 2 x backoff.maxMs. */
  unhealthyAfterMs?: number;
  /** Deep-freeze cached objects. Default true. */
  freeze?: boolean;
  /** Runs on every object before it is cached (store.ts: keep only what readers use). */
  transform?: (obj: T) => T;
}

export type WatcherPhase = 'idle' | 'listing' | 'watching' | 'backoff' | 'stopped';

export interface WatcherStatus {
  phase: WatcherPhase;
  synced: boolean;
  healthy: boolean;
  resourceVersion: string;
  /** Completed lists (initial + relists). */
  lists: number;
  /** Watch streams opened. */
  watches: number;
  consecutiveFailures: number;
  lastError?: string;
}


const DEFAULTS = {
  pageSize: 500,
  minWatchTimeoutSeconds: 300,
};

/** A watch stream that ends before this is treated as a failure (no hot loop). */
const MIN_HEALTHY_WATCH_MS = 1_000;

function isGone(err: unknown): boolean {
  return statusCodeOf(err) === 410;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

class StoppedError extends Error {
  constructor() {
    super('watcher stopped');
    this.name = 'StoppedError';
  }
}

export class Watcher<T extends KubeObject> implements ReadonlyStore<T> {
  readonly name: string;
  readonly #source: ListWatchSource<T>;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #pageSize: number;
  readonly #minWatchTimeout: number;
  readonly #backoff: Backoff;
  readonly #unhealthyAfterMs: number;
  readonly #store: Store<T>;

  readonly #hooks: EventHooks<T>;

  #phase: WatcherPhase = 'idle';
  readonly #sync: SyncGate;
  #rv = '';
  #lists = 0;
  #watches = 0;
  #goneStreak = 0;
  #lastError: string | undefined;
  /** clock time since which no watch is open (undefined while one is). */
  #disconnectedSince: number;
  #stopController = new AbortController();
  #current: AbortController | undefined;
  #sleepTimer: { handle: TimerHandle; wake: () => void } | undefined;
  #loop: Promise<void> | undefined;

  constructor(opts: WatcherOptions<T>) {
    this.#source = opts.source;
    this.name = opts.name ?? opts.source.description;
    this.#log = (opts.logger ?? silentLogger).child({ watcher: this.name });
    this.#clock = opts.clock ?? realClock;
    this.#random = opts.random ?? Math.random;
    this.#pageSize = opts.pageSize ?? DEFAULTS.pageSize;
    this.#minWatchTimeout = opts.minWatchTimeoutSeconds ?? DEFAULTS.minWatchTimeoutSeconds;
    this.#backoff = new Backoff(opts.backoff, this.#random);
    this.#sync = new SyncGate(this.name);
    this.#unhealthyAfterMs = opts.unhealthyAfterMs ?? 2 * this.#backoff.maxMs;
    this.#store = new Store<T>({ freeze: opts.freeze ?? true, ...(opts.transform ? { transform: opts.transform } : {}) });
    this.#hooks = new EventHooks<T>(this.#log);
    this.#disconnectedSince = this.#clock.now();
  }

  // ---- lifecycle ---------------------------------------------------------------------

  /** Start listing and watching (idempotent). */
  start(): this {
    if (this.#loop || this.#phase === 'stopped') return this;
    this.#loop = this.#run().catch((err: unknown) => {
      // #run handles every error itself; reaching this is a bug worth shouting about.
      this.#log.fatal({ err }, 'watcher: internal error, the loop ended');
    });
    return this;
  }

  /** Stop for good: abort the open request, end the loop, reject pending waitForSync. */
  async stop(): Promise<void> {
    if (this.#phase === 'stopped') return this.#loop;
    this.#phase = 'stopped';
    this.#stopController.abort();
    this.#current?.abort();
    if (this.#sleepTimer) {
      this.#clock.clearTimer(this.#sleepTimer.handle);
      this.#sleepTimer.wake();
    }
    this.#sync.shut();
    await this.#loop;
  }

  // ---- cache ---------------------------------------------------------------------------

  /** The read-only cache. */
  get store(): ReadonlyStore<T> {
    return this.#store;
  }
  get size(): number {
    return this.#store.size;
  }
  get(namespace: string | undefined, name: string): T | undefined {
    return this.#store.get(namespace, name);
  }
  getByKey(key: string): T | undefined {
    return this.#store.getByKey(key);
  }
  list(namespace?: string): T[] {
    return this.#store.list(namespace);
  }
  keys(): string[] {
    return this.#store.keys();
  }

  // ---- state ---------------------------------------------------------------------------

  hasSynced(): boolean {
    return this.#sync.isOpen;
  }

  /** Resolves at the first sync; rejects if `signal` aborts or the watcher stops first. */
  waitForSync(signal?: AbortSignal): Promise<void> {
    return this.#sync.wait(signal);
  }

  isHealthy(): boolean {
    if (!this.#sync.isOpen || this.#isStopped()) return false;
    // Connected (#disconnectedSince < 0), or reconnecting for no longer than the bound.
    return this.#disconnectedSince < 0 || this.#clock.now() - this.#disconnectedSince <= this.#unhealthyAfterMs;
  }

  #isStopped(): boolean {
    return this.#phase === 'stopped';
  }

  /** The last resourceVersion seen (list, event or bookmark). */
  get resourceVersion(): string {
    return this.#rv;
  }

  status(): WatcherStatus {
    return {
      phase: this.#phase,
      synced: this.#sync.isOpen,
      healthy: this.isHealthy(),
      resourceVersion: this.#rv,
      lists: this.#lists,
      watches: this.#watches,
      consecutiveFailures: this.#backoff.failures,
      ...(this.#lastError !== undefined ? { lastError: this.#lastError } : {}),
    };
  }

  // ---- hooks ---------------------------------------------------------------------------

  /** Cheap synchronous work only (enqueue a key). Called first for every cached object. Returns an unsubscribe function. */
  onAdd(fn: AddHook<T>): () => void {
    return this.#hooks.onAdd(fn, this.#store.list());
  }

  /** Cheap synchronous work only. Returns an unsubscribe function. */
  onUpdate(fn: UpdateHook<T>): () => void {
    return this.#hooks.onUpdate(fn);
  }

  /** Cheap synchronous work only. Returns an unsubscribe function. */
  onDelete(fn: DeleteHook<T>): () => void {
    return this.#hooks.onDelete(fn);
  }

  // ---- the loop ------------------------------------------------------------------------

  async #run(): Promise<void> {
    let needList = true;
    while (!this.#isStopped()) {
      try {
        if (needList) {
          await this.#listAndReplace();
          needList = false;
        }
        await this.#watchOnce();
        // #watchOnce returns only for a healthy clean close: watch again right away.
      } catch (err) {
        if (this.#isStopped()) break;
        this.#lastError = describe(err);
        if (isGone(err)) {
          needList = true;
          this.#goneStreak++;
          if (this.#goneStreak === 1) {
            this.#log.info({ rv: this.#rv, err: describe(err) }, 'watcher: resourceVersion too old (410 Gone), relisting');
            continue;
          }
        }
        const delay = this.#backoff.next();
        this.#log.warn(
          { err: describe(err), statusCode: statusCodeOf(err), attempt: this.#backoff.failures, delayMs: Math.round(delay), relist: needList },
          'watcher: list/watch failed, retrying after back-off',
        );
        await this.#sleep(delay);
      }
    }
  }

  #sleep(ms: number): Promise<void> {
    if (this.#isStopped()) return Promise.resolve();
    this.#phase = 'backoff';
    return new Promise<void>((resolve) => {
      const wake = () => {
        this.#sleepTimer = undefined;
        resolve();
      };
      this.#sleepTimer = { handle: this.#clock.setTimer(wake, ms), wake };
    });
  }

  #checkStopped(): void {
    if (this.#isStopped()) throw new StoppedError();
  }

  async #listAndReplace(): Promise<void> {
    this.#phase = 'listing';
    const ctl = new AbortController();
    this.#current = ctl;
    let listed: { items: T[]; resourceVersion: string };
    try {
      listed = await listAll(this.#source, this.#pageSize, ctl.signal, (err) =>
        this.#log.info({ err: describe(err) }, 'watcher: list continue token expired, listing without pagination'),
      );
    } finally {
      if (this.#current === ctl) this.#current = undefined;
    }
    const { items, resourceVersion: rv } = listed;
    this.#checkStopped();
    const changes = this.#store.replace(items);
    this.#rv = rv;
    this.#lists++;
    this.#log.debug({ rv, items: items.length, changes: changes.length }, 'watcher: listed');
    for (const c of changes) this.#hooks.emit(c, LISTED);
    if (this.#sync.open()) this.#log.info({ rv, items: items.length }, 'watcher: synced');
  }

  /** One watch stream. Returns on a healthy clean close; throws otherwise. */
  async #watchOnce(): Promise<void> {
    this.#phase = 'watching';
    const ctl = new AbortController();
    this.#current = ctl;
    const timeoutSeconds = Math.floor(this.#minWatchTimeout * (1 + this.#random()));
    let openedAt: number | undefined;
    let events = 0;
    let eventError: unknown;
    const req: WatchRequest = { resourceVersion: this.#rv, timeoutSeconds, allowWatchBookmarks: true };
    try {
      await this.#source.watch(req, ctl.signal, {
        onOpen: () => {
          if (ctl.signal.aborted) return;
          openedAt = this.#clock.now();
          this.#watches++;
          this.#disconnectedSince = -1;
          this.#log.debug({ rv: req.resourceVersion, timeoutSeconds }, 'watcher: watch open');
        },
        onEvent: (ev) => {
          if (ctl.signal.aborted) return;
          events++;
          try {
            this.#handleEvent(ev);
          } catch (err) {
            eventError = err;
            ctl.abort();
          }
        },
      });
    } catch (err) {
      this.#checkStopped();
      throw eventError ?? err;
    } finally {
      if (this.#current === ctl) this.#current = undefined;
      if (this.#disconnectedSince < 0) this.#disconnectedSince = this.#clock.now();
      if (openedAt !== undefined) this.#backoff.healthyFor(this.#clock.now() - openedAt);
    }
    this.#checkStopped();
    if (eventError !== undefined) throw eventError;
    if (openedAt === undefined) throw new Error(`watch of ${this.name} ended before it opened`);
    if (events === 0 && this.#clock.now() - openedAt < MIN_HEALTHY_WATCH_MS) {
      throw new Error(`watch of ${this.name} closed right after opening`);
    }
    this.#log.debug({ rv: this.#rv, events }, 'watcher: watch closed by the server, resuming');
  }

  #handleEvent(ev: WatchEvent<T>): void {
    switch (ev.type) {
      case 'ERROR': {
        const code = typeof ev.object?.code === 'number' ? ev.object.code : 500;
        throw new KubeApiError(`watch of ${this.name}`, code, ev.object);
      }
      case 'BOOKMARK': {
        const rv = ev.object?.metadata?.resourceVersion;
        if (rv) this.#rv = rv;
        this.#goneStreak = 0;
        return;
      }
      case 'ADDED':
      case 'MODIFIED': {
        const change = this.#store.upsert(ev.object);
        this.#advance(ev.object);
        if (change) this.#hooks.emit(change, WATCHED);
        return;
      }
      case 'DELETED': {
        const change = this.#store.remove(ev.object);
        this.#advance(ev.object);
        if (change) this.#hooks.emit(change, WATCHED);
        return;
      }
      default: {
        const t = (ev as { type?: unknown }).type;
        throw new Error(`watch of ${this.name}: unknown event type ${JSON.stringify(t)}`);
      }
    }
  }

  #advance(obj: T): void {
    const rv = obj.metadata?.resourceVersion;
    if (rv) this.#rv = rv;
    this.#goneStreak = 0;
  }
}

export interface WatchResourceOptions<T> extends Omit<WatcherOptions<T>, 'source'> {
  /** Share one HTTP client between watchers (and with tests, for its hooks). */
  http?: KubeHttp;
}

/** A started-later watcher for one resource of the cluster in `kc`. Call `start()`. */
export function watchResource<T extends KubeObject>(kc: KubeAccess, ref: ResourceRef, opts: WatchResourceOptions<T> = {}): Watcher<T> {
  const { http, ...rest } = opts;
  return new Watcher<T>({ ...rest, source: httpListWatch<T>(http ?? new KubeHttp(kc), ref) });
}

