/**
 * What a reconcile returns, like controller-runtime's `reconcile.Result`: the worker
 * loop (worker.ts) turns it into queue calls. Reconcilers return an outcome instead of
 * sleeping or retrying themselves.
 */

/** What a reconcile asks the worker loop to do with its key. */
export type ReconcileOutcome =
  | { type: 'done' }
  | { type: 'requeueAfter'; ms: number }
  | { type: 'error'; error: unknown }
  | { type: 'terminal'; error: unknown };

/** Constructors for outcomes: `return Outcome.requeueAfter(30_000)`. */
export const Outcome = {
  done: (): ReconcileOutcome => ({ type: 'done' }),
  requeueAfter: (ms: number): ReconcileOutcome => ({ type: 'requeueAfter', ms }),
  error: (error: unknown): ReconcileOutcome => ({ type: 'error', error }),
  terminal: (error: unknown): ReconcileOutcome => ({ type: 'terminal', error }),
} as const;

export type ReconcileHandler<K> = (key: K) => Promise<ReconcileOutcome> | ReconcileOutcome;

/** controller-runtime's `result` label values. */
export type ReconcileResult = 'success' | 'error' | 'requeue' | 'requeue_after';

/** A well-formed outcome (a handler written in plain JS may return anything). */
export function isOutcome(o: unknown): o is ReconcileOutcome {
  if (typeof o !== 'object' || o === null) return false;
  const t = (o as { type?: unknown }).type;
  if (t === 'requeueAfter') return typeof (o as { ms?: unknown }).ms === 'number';
  return t === 'done' || t === 'error' || t === 'terminal';
}
