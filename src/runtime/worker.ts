/**
 * The worker loop: n workers take keys from a WorkQueue, run the reconcile handler and
 * apply its outcome to the queue (controller-runtime's `processNextWorkItem`).
 *
 * Guarantees
 * - done: forget; requeueAfter: forget + addAfter; error: addRateLimited; terminal:
 *   forget, no retry until the key is added again (e.g. by a watch event for a changed
 *   object). A throwing handler, or one returning something that is not an outcome,
 *   counts as `error`. `done(key)` is always called.
 * - A failed reconcile is logged exactly once, here, with the key and the retry count.
 * - `runWorkers` resolves when every worker has exited (after the queue shuts down) and
 *   never rejects on handler errors.
 * - `defer(key)` (optional) is asked first: true means "not now" - the handler does not
 *   run, nothing is counted as a reconcile, the back-off is left as it is, and the caller
 *   that deferred the key adds it again when it is ready (the Manager: once its own
 *   writes are back in the cache).
 */
import type { Logger } from '../common/logger.ts';
import { Outcome, isOutcome, type ReconcileHandler, type ReconcileOutcome, type ReconcileResult } from './reconcile.ts';
import type { WorkQueue } from './workqueue.ts';

/** What the worker loop reports (controller-runtime's reconcile metrics). */
export interface ControllerMetrics {
  reconcileResult(result: ReconcileResult): void;
  /** Every error outcome (retried or terminal). */
  reconcileError(): void;
  /** Terminal error outcomes only. */
  terminalError(): void;
  reconcileTime(seconds: number): void;
  /** +1 when a worker starts a reconcile, -1 when it finishes. */
  activeWorkers(delta: number): void;
  /** Number of workers started by `runWorkers`. */
  maxConcurrentReconciles(n: number): void;
}

export interface RunWorkersOptions<K = unknown> {
  /** Reconcile metrics (controller-runtime names); see `metrics.ts`. */
  controllerMetrics?: ControllerMetrics;
  /** Where retried and terminal errors are logged (with the key). */
  logger?: Logger;
  /** True: skip this key now (see the module doc); the caller re-adds it. */
  defer?: (key: K) => boolean;
}

/** Runs `n` workers on `queue` until it shuts down. */
export async function runWorkers<K>(queue: WorkQueue<K>, n: number, handler: ReconcileHandler<K>, options: RunWorkersOptions<K> = {}): Promise<void> {
  if (!Number.isInteger(n) || n < 1) throw new Error(`WorkQueue(${queue.name}).runWorkers: need a positive integer, got ${n}`);
  options.controllerMetrics?.maxConcurrentReconciles(n);
  const workers: Promise<void>[] = [];
  for (let i = 0; i < n; i++) workers.push(worker(queue, handler, options));
  await Promise.all(workers);
}

async function worker<K>(queue: WorkQueue<K>, handler: ReconcileHandler<K>, options: RunWorkersOptions<K>): Promise<void> {
  for (;;) {
    const key = await queue.get();
    if (key === undefined) return;
    let deferred = false;
    try {
      deferred = options.defer?.(key) ?? false;
    } catch (error) {
      options.logger?.error({ queue: queue.name, key: String(key), err: error }, 'defer check threw; reconciling now');
    }
    if (deferred) {
      queue.done(key);
      continue;
    }
    await processKey(queue, key, handler, options);
  }
}

/** Processes a key obtained from `queue.get()`: run the handler, apply the outcome, `done` (one worker step). */
export async function processKey<K>(queue: WorkQueue<K>, key: K, handler: ReconcileHandler<K>, options: RunWorkersOptions<K> = {}): Promise<ReconcileOutcome> {
  const cm = options.controllerMetrics;
  const start = queue.clock.now();
  cm?.activeWorkers(1);
  let outcome: ReconcileOutcome;
  try {
    outcome = await handler(key);
    if (!isOutcome(outcome)) outcome = Outcome.error(new Error(`handler returned an invalid outcome: ${JSON.stringify(outcome)}`));
  } catch (error) {
    outcome = Outcome.error(error);
  }
  cm?.activeWorkers(-1);
  cm?.reconcileTime((queue.clock.now() - start) / 1000);
  try {
    applyOutcome(queue, key, outcome, options);
  } finally {
    queue.done(key);
  }
  return outcome;
}

function applyOutcome<K>(queue: WorkQueue<K>, key: K, outcome: ReconcileOutcome, options: RunWorkersOptions<K>): void {
  const cm = options.controllerMetrics;
  switch (outcome.type) {
    case 'done':
      queue.forget(key);
      cm?.reconcileResult('success');
      return;
    case 'requeueAfter':
      queue.forget(key);
      queue.addAfter(key, outcome.ms);
      cm?.reconcileResult('requeue_after');
      return;
    case 'error':
      queue.addRateLimited(key);
      cm?.reconcileResult('error');
      cm?.reconcileError();
      options.logger?.warn({ queue: queue.name, key: String(key), retries: queue.numRequeues(key), err: outcome.error }, 'reconcile failed; retrying with back-off');
      return;
    case 'terminal':
      queue.forget(key);
      cm?.reconcileResult('error');
      cm?.reconcileError();
      cm?.terminalError();
      options.logger?.error({ queue: queue.name, key: String(key), err: outcome.error }, 'reconcile failed terminally; not retrying until the object changes');
      return;
  }
}
