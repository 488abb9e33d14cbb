/**
 * prom-client implementations of the work queue and controller metrics hooks, with the
 * names and help texts controller-runtime uses, so existing dashboards and alerts work:
 *
 *   workqueue_depth{name}                          gauge
 *   workqueue_adds_total{name}                     counter
 *   workqueue_retries_total{name}                  counter
 *   workqueue_queue_duration_seconds{name}         histogram
 *   workqueue_work_duration_seconds{name}          histogram
 *   workqueue_unfinished_work_seconds{name}        gauge (computed at scrape time)
 *   workqueue_longest_running_processor_seconds{name} gauge (computed at scrape time)
 *   controller_runtime_reconcile_total{controller,result}   counter (result: success|error|requeue|requeue_after)
 *   controller_runtime_reconcile_errors_total{controller}   counter
 *   controller_runtime_terminal_reconcile_errors_total{controller} counter
 *   controller_runtime_reconcile_time_seconds{controller}   histogram
 *   controller_runtime_max_concurrent_reconciles{controller} gauge
 *   controller_runtime_active_workers{controller}  gauge
 *
 * and two of this runtime's own (no controller-runtime equivalent):
 *
 *   eventlog_controller_watch_events_total{controller,resource,decision} counter
 *       watch events by what they did: enqueue, skip_own_write (the event of our own
 *       write), skip_unchanged (nothing the cache keeps changed)
 *   eventlog_controller_reconcile_deferred_total{controller} counter
 *       keys held back until the watch brought back their own writes
 *   eventlog_workqueue_handed_out_total{name,trigger} counter
 *       keys handed to workers, by what queued them: event (a watch event) or requeue
 *       (a requeue-after or a retry that came due)
 *
 * Guarantees:
 * - One set of metric objects per Registry: `RuntimeMetrics.for(registry)` is memoised,
 *   so any number of queues/controllers can share a registry without "already
 *   registered" errors; each gets its own label value.
 * - `controller_runtime_reconcile_total` is initialised to 0 for every result when a
 *   controller is registered (as controller-runtime does), so `rate()` works from the
 *   first scrape.
 * - Unfinished-work gauges are computed from the queue when scraped (no ticker timer).
 *
 * Caveat: metric names are fixed; two *different* queues given the same name share series.
 */
import { Counter, Gauge, Histogram, exponentialBuckets, type Registry } from 'prom-client';
import type { ReconcileResult } from './reconcile.ts';
import type { ControllerMetrics } from './worker.ts';
import type { UnfinishedWork, WorkQueueMetrics } from './workqueue.ts';

const RECONCILE_RESULTS: readonly ReconcileResult[] = ['success', 'error', 'requeue', 'requeue_after'];

/** controller-runtime's reconcile_time_seconds buckets. */
const RECONCILE_TIME_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0,
  4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];

/**
 * `make` memoised per Registry: prom-client refuses a metric name registered twice, so
 * every user of one registry must share one set of metrics.
 */
export function perRegistry<T>(make: (registry: Registry) => T): (registry: Registry) => T {
  const instances = new WeakMap<Registry, T>();
  return (registry) => {
    let m = instances.get(registry);
    if (m === undefined) {
      m = make(registry);
      instances.set(registry, m);
    }
    return m;
  };
}

export class RuntimeMetrics {
  readonly registry: Registry;
  readonly depth: Gauge<'name'>;
  readonly adds: Counter<'name'>;
  readonly retries: Counter<'name'>;
  readonly queueDuration: Histogram<'name'>;
  readonly workDuration: Histogram<'name'>;
  readonly unfinishedWork: Gauge<'name'>;
  readonly longestRunning: Gauge<'name'>;
  readonly reconcileTotal: Counter<'controller' | 'result'>;
  readonly reconcileErrors: Counter<'controller'>;
  readonly terminalErrors: Counter<'controller'>;
  readonly reconcileTime: Histogram<'controller'>;
  readonly maxConcurrent: Gauge<'controller'>;
  readonly activeWorkers: Gauge<'controller'>;
  readonly watchEvents: Counter<'controller' | 'resource' | 'decision'>;
  readonly reconcileDeferred: Counter<'controller'>;
  readonly handedOut: Counter<'name' | 'trigger'>;
  readonly leaderStatus: Gauge<'name'>;
  readonly #unfinishedSources = new Map<string, () => UnfinishedWork>();

  /** The metrics registered on `registry` (created on first use). */
  static readonly for: (registry: Registry) => RuntimeMetrics = perRegistry((registry) => new RuntimeMetrics(registry));

  private constructor(registry: Registry) {
    this.registry = registry;
    const registers = [registry];
    const sources = this.#unfinishedSources;
    const latencyBuckets = exponentialBuckets(1e-8, 10, 12);
    this.depth = new Gauge({ name: 'workqueue_depth', help: 'Current depth of workqueue', labelNames: ['name'], registers });
    this.adds = new Counter({ name: 'workqueue_adds_total', help: 'Total number of adds handled by workqueue', labelNames: ['name'], registers });
    this.retries = new Counter({ name: 'workqueue_retries_total', help: 'Total number of retries handled by workqueue', labelNames: ['name'], registers });
    this.queueDuration = new Histogram({
      name: 'workqueue_queue_duration_seconds',
      help: 'How long in seconds an item stays in workqueue before being requested',
      labelNames: ['name'],
      buckets: latencyBuckets,
      registers,
    });
    this.workDuration = new Histogram({
      name: 'workqueue_work_duration_seconds',
      help: 'How long in seconds processing an item from workqueue takes.',
      labelNames: ['name'],
      buckets: latencyBuckets,
      registers,
    });
    this.unfinishedWork = new Gauge({
      name: 'workqueue_unfinished_work_seconds',
      help:
        'How many seconds of work has been done that is in progress and hasn\'t been observed by work_duration. Large values indicate stuck threads. One can deduce the number of stuck threads by observing the rate at which this increases.',
      labelNames: ['name'],
      registers,
      collect() {
        for (const [name, source] of sources) this.set({ name }, source().unfinishedSeconds);
      },
    });
    this.longestRunning = new Gauge({
      name: 'workqueue_longest_running_processor_seconds',
      help: 'How many seconds has the longest running processor for workqueue been running.',
      labelNames: ['name'],
      registers,
      collect() {
        for (const [name, source] of sources) this.set({ name }, source().longestRunningSeconds);
      },
    });
    this.reconcileTotal = new Counter({
      name: 'controller_runtime_reconcile_total',
      help: 'Total number of reconciliations per controller',
      labelNames: ['controller', 'result'],
      registers,
    });
    this.reconcileErrors = new Counter({
      name: 'controller_runtime_reconcile_errors_total',
      help: 'Total number of reconciliation errors per controller',
      labelNames: ['controller'],
      registers,
    });
    this.terminalErrors = new Counter({
      name: 'controller_runtime_terminal_reconcile_errors_total',
      help: 'Total number of terminal reconciliation errors per controller',
      labelNames: ['controller'],
      registers,
    });
    this.reconcileTime = new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Length of time per reconciliation per controller',
      labelNames: ['controller'],
      buckets: RECONCILE_TIME_BUCKETS,
      registers,
    });
    this.maxConcurrent = new Gauge({
      name: 'controller_runtime_max_concurrent_reconciles',
      help: 'Maximum number of concurrent reconciles per controller',
      labelNames: ['controller'],
      registers,
    });
    this.activeWorkers = new Gauge({
      name: 'controller_runtime_active_workers',
      help: 'Number of currently used workers per controller',
      labelNames: ['controller'],
      registers,
    });
    this.watchEvents = new Counter({
      name: 'eventlog_controller_watch_events_total',
      help: 'Watch events per controller and resource, by decision: enqueue, skip_own_write (the event of our own write), skip_unchanged (nothing the cache keeps changed)',
      labelNames: ['controller', 'resource', 'decision'],
      registers,
    });
    // client-go's name and meaning: 1 while this process holds the Lease, else 0.
    this.leaderStatus = new Gauge({
      name: 'leader_election_master_status',
      help: 'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. \'name\' is the string used to identify the lease.',
      labelNames: ['name'],
      registers,
    });
    this.handedOut = new Counter({
      name: 'eventlog_workqueue_handed_out_total',
      help: 'Keys handed to workers, by what queued them: event (a watch event) or requeue (a requeue-after or retry that came due)',
      labelNames: ['name', 'trigger'],
      registers,
    });
    this.reconcileDeferred = new Counter({
      name: 'eventlog_controller_reconcile_deferred_total',
      help: 'Reconciles held back until the watch brought back the controller\'s own writes (read your writes)',
      labelNames: ['controller'],
      registers,
    });
  }

  /** Counts watch events of controller `controller` by resource and decision. */
  forWatchEvents(controller: string): (resource: string, decision: 'enqueue' | 'skip_own_write' | 'skip_unchanged') => void {
    this.reconcileDeferred.inc({ controller }, 0);
    return (resource, decision) => this.watchEvents.inc({ controller, resource, decision });
  }

  /** Hooks for a `WorkQueue` named `name`. */
  forQueue(name: string): WorkQueueMetrics {
    const labels = { name };
    this.depth.set(labels, 0);
    this.adds.inc(labels, 0);
    this.retries.inc(labels, 0);
    for (const trigger of ['event', 'requeue']) this.handedOut.inc({ name, trigger }, 0);
    return {
      handedOut: (trigger) => this.handedOut.inc({ name, trigger }),
      add: () => this.adds.inc(labels),
      depth: (n) => this.depth.set(labels, n),
      queueDuration: (s) => this.queueDuration.observe(labels, s),
      workDuration: (s) => this.workDuration.observe(labels, s),
      retry: () => this.retries.inc(labels),
      bindUnfinishedWork: (source) => {
        this.#unfinishedSources.set(name, source);
      },
    };
  }

  /** Hooks for `runWorkers` (worker.ts) of the controller named `controller`. */
  forController(controller: string): ControllerMetrics {
    const labels = { controller };
    for (const result of RECONCILE_RESULTS) this.reconcileTotal.inc({ controller, result }, 0);
    this.reconcileErrors.inc(labels, 0);
    this.terminalErrors.inc(labels, 0);
    this.activeWorkers.set(labels, 0);
    return {
      reconcileResult: (result) => this.reconcileTotal.inc({ controller, result }),
      reconcileError: () => this.reconcileErrors.inc(labels),
      terminalError: () => this.terminalErrors.inc(labels),
      reconcileTime: (s) => this.reconcileTime.observe(labels, s),
      activeWorkers: (delta) => (delta >= 0 ? this.activeWorkers.inc(labels, delta) : this.activeWorkers.dec(labels, -delta)),
      maxConcurrentReconciles: (n) => this.maxConcurrent.set(labels, n),
    };
  }
}
