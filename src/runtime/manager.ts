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
import type { KubeConfig } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import type { Logger } from '../common/logger.ts';
import { KubeHttp } from './kube-http.ts';
import { LeaderElector } from './leader-election.ts';
import { KubeLeaseLock } from './lease-lock.ts';
import { RuntimeMetrics } from './metrics.ts';
import type { ResourceRef } from './list-watch.ts';
import { keyOf, watchResource, type KubeObject, type ReadonlyStore, type Watcher } from './watcher.ts';
import { Outcome, type ReconcileOutcome } from './reconcile.ts';
import { runWorkers } from './worker.ts';
import { WorkQueue } from './workqueue.ts';
import { splitKey } from './store.ts';
import { startEndpoints, type Endpoints, type ReadinessCheck } from './probe-endpoints.ts';

/** A resource the manager watches, by group/version/plural (no namespace: see `namespaces`). */
export type WatchedResource = Omit<ResourceRef, 'namespace'>;

/** The read side a reconcile gets: one store per watched resource, keyed `ns/name`. */
export interface Caches {
  primary: ReadonlyStore<KubeObject>;
  owned: Record<string, ReadonlyStore<KubeObject>>;
}

export interface ReconcileRequest {
  namespace: string;
  name: string;
  /** Short random id on every log line of this reconcile. */
  reconcileId: string;
  log: Logger;
  caches: Caches;
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
  kubeConfig: KubeConfig;
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
  /** The API client of the watches and the Lease (default: a new KubeHttp of kubeConfig); one shared client lets its `onRequest` see every call. */
  http?: KubeHttp;
}

/** Combines one store per namespace into one read view. */
class MultiStore implements ReadonlyStore<KubeObject> {
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

export class Manager {
  readonly queue: WorkQueue<string>;
  readonly #opts: ManagerOptions;
  readonly #log: Logger;
  readonly #watchers: { resource: string; watcher: Watcher<KubeObject> }[] = [];
  readonly #caches: Caches;
  #elector: LeaderElector | undefined;
  #endpoints: Endpoints | undefined;
  #workers: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #leading = false;

  constructor(opts: ManagerOptions) {
    this.#opts = opts;
    this.#log = opts.log.child({ controller: opts.controller.name });
    const metrics = RuntimeMetrics.for(opts.registry);
    this.queue = new WorkQueue<string>({ name: opts.controller.name, metrics: metrics.forQueue(opts.controller.name) });
    const http = opts.http ?? new KubeHttp(opts.kubeConfig);
    const namespaces = opts.namespaces.length > 0 ? opts.namespaces : [undefined];
    const def = opts.controller;
    const make = (resource: string, ref: WatchedResource) =>
      namespaces.map((namespace) => {
        const watcher = watchResource<KubeObject>(opts.kubeConfig, { ...ref, ...(namespace ? { namespace } : {}) }, { http, logger: this.#log });
        this.#watchers.push({ resource, watcher });
        return watcher;
      });
    const primaries = make(def.primary.plural, def.primary);
    for (const w of primaries) {
      const enqueue = (o: KubeObject) => this.queue.add(keyOf(o));
      w.onAdd(enqueue);
      w.onUpdate((_old, now) => enqueue(now));
      w.onDelete(enqueue);
    }
    const owned: Record<string, ReadonlyStore<KubeObject>> = {};
    for (const [plural, ref] of Object.entries(def.owned)) {
      const ws = make(plural, ref);
      for (const w of ws) {
        const enqueueOwner = (o: KubeObject) => {
          const key = controllerOwnerKey(o, def.primary);
          if (key) this.queue.add(key);
        };
        w.onAdd(enqueueOwner);
        // An owner reference can be added or removed by an update: enqueue both owners.
        w.onUpdate((old, now) => {
          enqueueOwner(old);
          enqueueOwner(now);
        });
        w.onDelete(enqueueOwner);
      }
      owned[plural] = ws.length === 1 ? ws[0]! : new MultiStore(ws);
    }
    this.#caches = { primary: primaries.length === 1 ? primaries[0]! : new MultiStore(primaries), owned };
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
          this.#log.info({ identity: this.#elector?.identity }, 'became leader: starting workers');
          void this.#runWorkers();
        },
        onStoppedLeading: () => {
          this.#leading = false;
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
    this.#workers = runWorkers(this.queue, this.#opts.workers, (key) => this.#reconcileKey(key), { controllerMetrics: metrics, logger: this.#log });
    return this.#workers;
  }

  async #reconcileKey(key: string): Promise<ReconcileOutcome> {
    const { namespace, name } = splitKey(key);
    const reconcileId = randomBytes(4).toString('hex');
    const log = this.#log.child({ namespace, name, reconcileId });
    try {
      return await this.#opts.controller.reconcile({ namespace, name, reconcileId, log, caches: this.#caches });
    } catch (error) {
      // Logged once, by the worker loop, with the key and the retry count.
      return Outcome.error(error);
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
