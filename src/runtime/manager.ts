/**
 * The controller manager: what controller-runtime's Manager + Controller do, for one
 * primary resource and the objects it owns.
 *
 * Guarantees
 * - Watch events only enqueue keys (`namespace/name` of the primary). An owned object
 *   maps to its controller owner reference (`controller: true`) of the primary's kind,
 *   so a change to a pod, PVC or Service reconciles its EventLog.
 * - Reconciles read the caches (the watchers' stores), never the API server directly,
 *   for objects that are watched.
 * - The work queue never runs one key twice at once; failures back off per key.
 * - Event filtering (controller-runtime's predicates), so a key is queued only for a
 *   change its reconcile can act on:
 *   - primary: an update that changes only what the cache does not keep (resourceVersion,
 *     managedFields) is dropped; one that changes only `status` is dropped when it is the
 *     event of this manager's own status write (see below); a status change by anyone
 *     else, and every metadata (labels, annotations, finalizers, deletion) or spec change,
 *     queues the key;
 *   - owned objects: the ADDED event of an object this manager created is dropped (the
 *     pass that created it used the API server's answer); an update that changes only
 *     resourceVersion/managedFields the cache does not keep is dropped; everything else
 *     queues the owner(s).
 *   Changes found by a relist are never treated as own writes (they may span several).
 * - Read your writes: when the controller's API client is the manager's (`http`), every
 *   successful write for a primary (its status, finalizers) or an object it controls is
 *   remembered by uid@resourceVersion (own-writes.ts). A key is not reconciled while the
 *   watch has not brought back all of its writes (at most `readYourWritesMs`, default
 *   3 s): the pass then starts from a cache that has them, instead of writing status on
 *   a stale resourceVersion (409) or re-creating what it just created.
 * - Cache transforms (`transform` of a watched resource) run before objects are cached.
 * - With leader election on, only the Lease holder runs workers; every replica keeps
 *   its caches warm and answers /readyz, so a takeover starts from synced caches.
 * - `/readyz` is true only once every cache has synced and while every watch is alive.
 * - `stop()` (SIGTERM): stop intake, let in-flight reconciles finish (bounded by
 *   `shutdownTimeoutMs`), release the Lease, close the endpoints.
 *
 * Caveats
 * - Losing leadership ends `run()` with an error: the process should exit and be
 *   restarted (as controller-runtime does) rather than keep half-stopped workers.
 */
import { randomBytes } from 'node:crypto';
import type { KubeAccess } from './kubeconfig.ts';
import type { Registry } from 'prom-client';
import type { Logger } from '../common/logger.ts';
import { KubeHttp } from './kube-http.ts';
import { LeaderElector } from './leader-election.ts';
import { KubeLeaseLock } from './lease-lock.ts';
import { RuntimeMetrics } from './metrics.ts';
import type { ChangeInfo } from './event-hooks.ts';
import type { ResourceRef } from './list-watch.ts';
import { MultiStore, controllerOwnerKey, type Caches } from './caches.ts';
import { keyOf, watchResource, type KubeObject, type ReadonlyStore, type Watcher } from './watcher.ts';

export type { Caches } from './caches.ts';
import { realClock, type Clock, type TimerHandle } from './clock.ts';
import { OwnWrites } from './own-writes.ts';
import { changedParts } from './predicates.ts';
import { Outcome, type ReconcileOutcome } from './reconcile.ts';
import { runWorkers } from './worker.ts';
import { WorkQueue } from './workqueue.ts';
import { splitKey } from './store.ts';
import { startEndpoints, type Endpoints, type ReadinessCheck } from './probe-endpoints.ts';

/**
 * A resource the manager watches, by group/version/plural (no namespace: see
 * `namespaces`), with an optional cache transform (store.ts: keep only what the reconcile
 * reads; it must keep name, namespace, uid, resourceVersion and owner references).
 */
export type WatchedResource = Omit<ResourceRef, 'namespace'> & { transform?: (obj: KubeObject) => KubeObject };

export interface ReconcileRequest {
  namespace: string;
  name: string;
  /** Short random id on every log line of this reconcile. */
  reconcileId: string;
  log: Logger;
  caches: Caches;
  /** Queue another key of the primary (e.g. a waiter whose turn came); deduplicated like any add. */
  enqueue: (key: string) => void;
}

export interface ControllerDefinition {
  /** Controller name: metrics label, queue name, logs. */
  name: string;
  primary: WatchedResource & { apiVersion: string; kind: string };
  /** Owned resources by plural, e.g. { pods: {version:'v1', plural:'pods', labelSelector} }. */
  owned: Record<string, WatchedResource>;
  reconcile(request: ReconcileRequest): Promise<ReconcileOutcome>;
}

export interface ManagerOptions {
  kubeConfig: KubeAccess;
  controller: ControllerDefinition;
  registry: Registry;
  log: Logger;
  /** Empty: all namespaces. */
  namespaces: readonly string[];
  workers: number;
  leaderElection?: { namespace: string; name: string; identity?: string; leaseDurationMs?: number; renewDeadlineMs?: number; retryPeriodMs?: number };
  probe: { host: string; port: number };
  metrics: { host: string; port: number };
  shutdownTimeoutMs: number;
  /**
   * The API client of the watches and the Lease (default: a new KubeHttp of kubeConfig);
   * one client shared with the controller lets its `onRequest` see every call and lets
   * the manager recognise its own writes (read your writes, own-event filtering).
   */
  http?: KubeHttp;
  /** How long a key waits for the watch to bring back its own writes. Default 3 s. */
  readYourWritesMs?: number;
  /** Timers of read-your-writes (tests). Default the real clock. */
  clock?: Clock;
}

/** Why a watch event did or did not queue a key (label of eventlog_controller_watch_events_total). */
export type EventDecision = 'enqueue' | 'skip_own_write' | 'skip_unchanged';

export class Manager {
  readonly queue: WorkQueue<string>;
  readonly #opts: ManagerOptions;
  readonly #log: Logger;
  readonly #watchers: { resource: string; watcher: Watcher<KubeObject> }[] = [];
  readonly #caches: Caches;
  readonly #clock: Clock;
  readonly #writes: OwnWrites;
  /** Keys waiting for their own writes to come back, with the timer that runs them anyway. */
  readonly #deferred = new Map<string, TimerHandle>();
  readonly #metrics: RuntimeMetrics;
  #unobserve: (() => void) | undefined;
  #decide: (resource: string, decision: EventDecision, key: string | undefined, why: string) => void = () => undefined;
  /**
   * Events that are ours if we wrote them, seen while their key's pass was still running
   * (the watch can be faster than the answer to the write): decided when the pass ends.
   */
  readonly #postponed = new Map<string, Array<{ resource: string; uid: string | undefined; rv: string | undefined; own: string; other: string }>>();
  #elector: LeaderElector | undefined;
  #endpoints: Endpoints | undefined;
  #workers: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #leading = false;

  constructor(opts: ManagerOptions) {
    this.#opts = opts;
    this.#log = opts.log.child({ controller: opts.controller.name });
    this.#clock = opts.clock ?? realClock;
    this.#writes = new OwnWrites(this.#clock, opts.readYourWritesMs ?? 3_000);
    const metrics = RuntimeMetrics.for(opts.registry);
    this.#metrics = metrics;
    this.queue = new WorkQueue<string>({ name: opts.controller.name, metrics: metrics.forQueue(opts.controller.name) });
    const http = opts.http ?? new KubeHttp(opts.kubeConfig);
    const namespaces = opts.namespaces.length > 0 ? opts.namespaces : [undefined];
    const def = opts.controller;
    const make = (resource: string, { transform, ...ref }: WatchedResource) =>
      namespaces.map((namespace) => {
        const watcher = watchResource<KubeObject>(opts.kubeConfig, { ...ref, ...(namespace ? { namespace } : {}) }, { http, logger: this.#log, ...(transform ? { transform } : {}) });
        this.#watchers.push({ resource, watcher });
        return watcher;
      });
    const events = metrics.forWatchEvents(def.name);
    const decide = (resource: string, decision: EventDecision, key: string | undefined, why: string) => {
      events(resource, decision);
      if (decision === 'enqueue' && key) this.queue.add(key);
      this.#log.trace({ resource, key, decision, why }, 'watch event');
    };
    const primaries = make(def.primary.plural, def.primary);
    const primaryResource = def.primary.plural;
    for (const w of primaries) {
      w.onAdd((o, info) => {
        this.#sawObject(o);
        decide(primaryResource, 'enqueue', keyOf(o), info.listed ? 'listed' : 'added');
      });
      w.onUpdate((old, now, info) => {
        const parts = changedParts(old, now);
        const key = keyOf(now);
        if (parts.size === 0) {
          this.#sawObject(now);
          return decide(primaryResource, 'skip_unchanged', key, 'only resourceVersion/managedFields changed');
        }
        // Only status changed: our own status write, or someone else's (which must be handled).
        if (!info.listed && parts.size === 1 && parts.has('status')) return this.#ownOrEnqueue(primaryResource, key, now, 'the event of our own status write', 'status');
        this.#sawObject(now);
        decide(primaryResource, 'enqueue', key, [...parts].join('+'));
      });
      w.onDelete((o) => {
        this.#writes.forget(keyOf(o));
        decide(primaryResource, 'enqueue', keyOf(o), 'deleted');
      });
    }
    const owned: Record<string, ReadonlyStore<KubeObject>> = {};
    for (const [plural, ref] of Object.entries(def.owned)) {
      const ws = make(plural, ref);
      for (const w of ws) {
        const ownerOf = (o: KubeObject) => controllerOwnerKey(o, def.primary);
        w.onAdd((o, info: ChangeInfo) => {
          // The pass that created it continued with the API server's answer.
          if (!info.listed) return this.#ownOrEnqueue(plural, ownerOf(o), o, 'the event of our own create', 'added');
          this.#sawObject(o);
          decide(plural, 'enqueue', ownerOf(o), 'listed');
        });
        // An owner reference can be added or removed by an update: enqueue both owners.
        w.onUpdate((old, now) => {
          this.#sawObject(now);
          const parts = changedParts(old, now);
          if (parts.size === 0) return decide(plural, 'skip_unchanged', ownerOf(now), 'nothing the cache keeps changed');
          const a = ownerOf(old);
          const b = ownerOf(now);
          if (a && a !== b) decide(plural, 'enqueue', a, `${[...parts].join('+')} (former owner)`);
          decide(plural, 'enqueue', b, [...parts].join('+'));
        });
        w.onDelete((o) => decide(plural, 'enqueue', ownerOf(o), 'deleted'));
      }
      owned[plural] = ws.length === 1 ? ws[0]! : new MultiStore(ws);
    }
    this.#decide = decide;
    this.#caches = { primary: primaries.length === 1 ? primaries[0]! : new MultiStore(primaries), owned };
    // Our own writes (only those made through this client are seen).
    this.#unobserve = http.observeWrites(({ object }) => this.#recordWrite(object as KubeObject));
  }

  /** The primary key a written object belongs to (itself, or its controller owner). */
  #keyFor(o: KubeObject): string | undefined {
    const p = this.#opts.controller.primary;
    const group = (v: string | undefined) => (v?.includes('/') ? v.split('/')[0] : '');
    if (o.kind === p.kind && group(o.apiVersion) === group(p.apiVersion)) return o.metadata?.name ? keyOf(o) : undefined;
    return controllerOwnerKey(o, p);
  }

  #recordWrite(o: KubeObject): void {
    const uid = o?.metadata?.uid;
    const rv = o?.metadata?.resourceVersion;
    const name = o?.metadata?.name;
    if (!uid || !rv || !name) return;
    const key = this.#keyFor(o);
    if (!key) return;
    // A write that changed nothing (same resourceVersion as cached), or whose event the
    // watch already delivered: no event is to be waited for (it is still ours).
    const ns = o.metadata?.namespace;
    let cached = false;
    for (const store of [this.#caches.primary, ...Object.values(this.#caches.owned)]) {
      const c = store.get(ns, name);
      if (c?.metadata?.uid === uid && c.metadata?.resourceVersion === rv) cached = true;
    }
    this.#writes.record(key, uid, rv, !cached);
  }

  /**
   * An event that is our own write's (skip it) or someone else's (queue the key). While
   * the key's pass runs, its answer may not have been read yet: decide when it ends.
   */
  #ownOrEnqueue(resource: string, key: string | undefined, o: KubeObject, own: string, other: string): void {
    if (key === undefined) return this.#decide(resource, 'enqueue', key, other);
    if (this.queue.isProcessing(key)) {
      let list = this.#postponed.get(key);
      if (!list) this.#postponed.set(key, (list = []));
      list.push({ resource, uid: o.metadata?.uid, rv: o.metadata?.resourceVersion, own, other });
      return;
    }
    const ours = this.#sawObject(o) !== undefined;
    this.#decide(resource, ours ? 'skip_own_write' : 'enqueue', key, ours ? own : other);
  }

  /** The pass of `key` ended: decide its postponed events (a queued key runs again after it). */
  #settlePostponed(key: string): void {
    const list = this.#postponed.get(key);
    if (!list) return;
    this.#postponed.delete(key);
    for (const e of list) {
      const ours = this.#writes.consume(e.uid, e.rv) !== undefined;
      this.#decide(e.resource, ours ? 'skip_own_write' : 'enqueue', key, ours ? e.own : e.other);
    }
  }

  /** A watch brought `o` in: if it is one of our writes, return its key (and release a key waiting for it). */
  #sawObject(o: KubeObject): string | undefined {
    const key = this.#writes.consume(o.metadata?.uid, o.metadata?.resourceVersion);
    if (key !== undefined && this.#deferred.has(key) && this.#writes.outstandingMs(key) === 0) this.#release(key);
    return key;
  }

  #release(key: string): void {
    const t = this.#deferred.get(key);
    if (t === undefined) return;
    this.#clock.clearTimer(t);
    this.#deferred.delete(key);
    this.queue.add(key);
  }

  /** True (and arranges a later run) when `key` must wait for its own writes to come back. */
  #mustWait(key: string): boolean {
    const ms = this.#writes.outstandingMs(key);
    if (ms <= 0) return false;
    if (!this.#deferred.has(key)) {
      this.#metrics.reconcileDeferred.inc({ controller: this.#opts.controller.name });
      this.#deferred.set(
        key,
        this.#clock.setTimer(() => {
          this.#deferred.delete(key);
          this.queue.add(key);
        }, ms + 1),
      );
    }
    return true;
  }

  get caches(): Caches {
    return this.#caches;
  }

  isLeader(): boolean {
    return this.#leading;
  }

  get probeUrl(): string | undefined {
    return this.#endpoints?.probeUrl;
  }

  get metricsUrl(): string | undefined {
    return this.#endpoints?.metricsUrl;
  }

  readiness(): ReadinessCheck[] {
    return this.#watchers.map(({ resource, watcher }) => ({
      name: `cache ${resource}`,
      check: () => {
        const s = watcher.status();
        if (!s.synced) return `not synced yet (${s.phase}${s.lastError ? `: ${s.lastError}` : ''})`;
        if (!s.healthy) return `watch down (${s.consecutiveFailures} failures${s.lastError ? `, last: ${s.lastError}` : ''})`;
        return undefined;
      },
    }));
  }

  /**
   * Start endpoints and caches, wait for the caches to sync, then (as leader, if
   * leader election is on) run the workers. Resolves when the manager has stopped;
   * rejects if leadership was lost.
   */
  async run(): Promise<void> {
    const o = this.#opts;
    this.#endpoints = await startEndpoints({ probe: o.probe, metrics: o.metrics, registry: o.registry, readiness: () => this.readiness() });
    this.#log.info({ probe: this.#endpoints.probeUrl, metrics: this.#endpoints.metricsUrl }, 'endpoints listening');
    for (const { watcher } of this.#watchers) watcher.start();
    const abort = new AbortController();
    try {
      await Promise.all(this.#watchers.map(({ watcher }) => watcher.waitForSync(abort.signal)));
    } catch (error) {
      // stop() (SIGTERM) before the caches synced is a clean stop, not a failure.
      if (this.#stopping) return this.#stopping;
      throw error;
    }
    this.#log.info({ caches: this.#watchers.length }, 'caches synced');
    if (this.#stopping) return this.#stopping;

    if (!o.leaderElection) {
      this.#leading = true;
      await this.#runWorkers();
      return;
    }
    const le = o.leaderElection;
    let lost = false;
    const leaderStatus = RuntimeMetrics.for(o.registry).leaderStatus.labels({ name: le.name });
    leaderStatus.set(0);
    this.#elector = new LeaderElector({
      lock: new KubeLeaseLock(o.http ?? o.kubeConfig, le.namespace, le.name),
      ...(le.identity ? { identity: le.identity } : {}),
      ...(le.leaseDurationMs ? { leaseDurationMs: le.leaseDurationMs } : {}),
      ...(le.renewDeadlineMs ? { renewDeadlineMs: le.renewDeadlineMs } : {}),
      ...(le.retryPeriodMs ? { retryPeriodMs: le.retryPeriodMs } : {}),
      logger: this.#log,
      callbacks: {
        onStartedLeading: () => {
          this.#leading = true;
          leaderStatus.set(1);
          this.#log.info({ identity: this.#elector?.identity }, 'became leader: starting workers');
          void this.#runWorkers();
        },
        onStoppedLeading: () => {
          this.#leading = false;
          leaderStatus.set(0);
          if (!this.#stopping) {
            lost = true;
            this.#log.error('leadership lost: stopping');
            this.queue.shutdown();
          }
        },
        onNewLeader: (identity) => this.#log.info({ leader: identity }, 'leader observed'),
      },
    });
    await this.#elector.run();
    await this.#workers;
    if (lost) throw new Error(`leader election lost for Lease ${le.namespace}/${le.name}`);
    await this.#stopping;
  }

  #runWorkers(): Promise<void> {
    const metrics = RuntimeMetrics.for(this.#opts.registry).forController(this.#opts.controller.name);
    this.#workers = runWorkers(this.queue, this.#opts.workers, (key) => this.#reconcileKey(key), { controllerMetrics: metrics, logger: this.#log, defer: (key) => this.#mustWait(key) });
    return this.#workers;
  }

  async #reconcileKey(key: string): Promise<ReconcileOutcome> {
    const { namespace, name } = splitKey(key);
    const reconcileId = randomBytes(4).toString('hex');
    const log = this.#log.child({ namespace, name, reconcileId });
    try {
      return await this.#opts.controller.reconcile({ namespace, name, reconcileId, log, caches: this.#caches, enqueue: (k) => this.queue.add(k) });
    } catch (error) {
      // Logged once, by the worker loop, with the key and the retry count.
      return Outcome.error(error);
    } finally {
      // Before the worker's done(key): a key queued here runs again right after.
      this.#settlePostponed(key);
    }
  }

  /** Graceful stop; safe to call more than once. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    const t0 = performance.now();
    // Stop intake first: no new keys from watches.
    await Promise.all(this.#watchers.map(({ watcher }) => watcher.stop()));
    // Queued keys are dropped (a new leader relists anyway); in-flight ones finish,
    // within the bound.
    this.queue.shutdown();
    this.#unobserve?.();
    for (const t of this.#deferred.values()) this.#clock.clearTimer(t);
    this.#deferred.clear();
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      (this.#workers ?? Promise.resolve()).then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), this.#opts.shutdownTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (!finished) this.#log.warn({ timeoutMs: this.#opts.shutdownTimeoutMs }, 'in-flight reconciles did not finish in time; stopping anyway');
    // Release the Lease only after our workers stopped, so two leaders never overlap.
    await this.#elector?.stop({ release: finished });
    this.#leading = false;
    await this.#endpoints?.close();
    this.#log.info({ ms: Math.round(performance.now() - t0), finished }, 'manager stopped');
  }
}
