/**
 * What the reconcile does with each owned object, and when it runs again: the
 * per-object plan (create / roll out / correct drift / recreate the pod), the combined
 * drift outcome of one pass, and the requeue delay. Pure; the edge is
 * src/operator/reconcile/owned.ts.
 */
import type { EventLogStatus } from '../api/eventlog.ts';
import type { DesiredObject, OwnedKind } from './desired.ts';
import { classifyDifferences, podNeedsRecreate, podRolloutNeedsRecreate, type DriftFinding } from './drift.ts';
import { FIELD_MANAGER } from './labels.ts';
import type { DriftInput } from './status.ts';

/** Requeue while waiting for something to go away (pod/PVC terminating). */
export const WAIT_REQUEUE_MS = 1_000;

/** The minimal drift/rollout plan for one owned object. */
export interface ObjectPlan {
  kind: OwnedKind;
  /** Object missing: create it. */
  create: boolean;
  /** It existed before (status knew it): its absence is drift. */
  existedBefore: boolean;
  rollout: DriftFinding[];
  drift: DriftFinding[];
}

export function planObject(kind: OwnedKind, desired: DesiredObject, live: unknown, existedBefore: boolean): ObjectPlan {
  if (live === undefined) return { kind, create: true, existedBefore, rollout: [], drift: [] };
  const { drift, rollout } = classifyDifferences(kind, desired, live, FIELD_MANAGER);
  return { kind, create: false, existedBefore, rollout, drift };
}

/**
 * Whether an owned object of `kind` existed before, judged from the status the
 * operator last wrote: a missing object that existed is drift (deleted behind our
 * back); one that never existed is simply created.
 * - the token Secret is always expected once the token step ran (it made or found it);
 * - the NetworkPolicy arrived with the token Secret, so an EventLog an older operator
 *   made has neither, and a missing one is not drift.
 */
export function existedBefore(kind: OwnedKind, old: EventLogStatus | undefined): boolean {
  switch (kind) {
    case 'PersistentVolumeClaim':
      return old?.storage?.phase !== undefined;
    case 'Secret':
      return true;
    case 'NetworkPolicy':
      return old?.tokenSecret !== undefined;
    case 'Service':
      return old?.endpoint !== undefined;
    case 'Pod':
      return old?.pod?.uid !== undefined;
  }
}

/** What to do with a live object after planning it. */
export type ObjectAction = 'create' | 'recreate-pod' | 'correct' | 'rollout' | 'report' | 'nothing';

/**
 * The action for one plan. The pod is recreated (deleted, then created when gone) when
 * fields that cannot change in place differ: a rollout of ours, or drift under Correct.
 */
export function objectAction(plan: ObjectPlan, correct: boolean): ObjectAction {
  if (plan.create) return 'create';
  if (plan.kind === 'Pod' && (podRolloutNeedsRecreate(plan.rollout) || (correct && podNeedsRecreate(plan.drift)))) return 'recreate-pod';
  if (plan.drift.length > 0) return correct ? 'correct' : 'report';
  if (plan.rollout.length > 0) return 'rollout';
  return 'nothing';
}

/** Combines per-object drift outcomes into the one `DriftInput` status takes. */
export function combineDrift(items: DriftFinding[], outcomes: DriftInput['outcome'][], errors: string[]): DriftInput {
  if (items.length === 0) return { items: [], outcome: 'none' };
  if (errors.length > 0 || outcomes.includes('failed')) return { items, outcome: 'failed', error: errors.join('; ') || 'correction failed' };
  if (outcomes.includes('correcting')) return { items, outcome: 'correcting' };
  if (outcomes.includes('corrected')) return { items, outcome: 'corrected' };
  return { items, outcome: 'none' };
}

/** requeueAfter of a finished pass: the poll interval, sooner for counters or waits. */
export function nextRequeueMs(pollInterval: number, countersDueIn: number | undefined, waiting: boolean): number {
  let ms = pollInterval;
  if (countersDueIn !== undefined) ms = Math.min(ms, Math.max(countersDueIn, 100));
  if (waiting) ms = Math.min(ms, WAIT_REQUEUE_MS);
  return ms;
}
