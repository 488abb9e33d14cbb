/**
 * metav1.Condition bookkeeping and kstatus helpers. Pure.
 *
 * Guarantees:
 * - `setCondition` returns a new list (the input is not mutated); it keeps the
 *   position of an existing condition, appends a new one, keeps `lastTransitionTime`
 *   unless `status` changes (a reason or message change alone does not move it), and
 *   always stamps `observedGeneration`.
 * - Times are RFC 3339 with second precision (`formatTime`), as metav1.Time is
 *   serialised, so a value read back from the API server compares equal to the one
 *   written and a steady state causes no writes.
 * - `kstatus` implements the kstatus rules the GitOps tools apply (Flux's health
 *   checks, cli-utils): Failed if Stalled=True; InProgress if observedGeneration is
 *   stale, Reconciling=True, or Ready is not True; Current otherwise.
 */
import { ConditionStatus, ConditionType, type Condition, type EventLogStatus } from '../api/eventlog.ts';
import { formatTime } from '../kube/time.ts';


export interface ConditionInput {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  observedGeneration?: number;
}

/** Upsert one condition (see the module doc for the rules). */
export function setCondition(conditions: readonly Condition[] | undefined, next: ConditionInput, now: Date): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === next.type);
  const old = i >= 0 ? list[i] : undefined;
  const c: Condition = {
    type: next.type,
    status: next.status,
    reason: next.reason,
    message: next.message,
    lastTransitionTime: old && old.status === next.status ? old.lastTransitionTime : formatTime(now),
    ...(next.observedGeneration !== undefined ? { observedGeneration: next.observedGeneration } : {}),
  };
  if (i >= 0) list[i] = c;
  else list.push(c);
  return list;
}

export function getCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return getCondition(conditions, type)?.status === ConditionStatus.True;
}

export type KStatus = 'Current' | 'InProgress' | 'Failed';

/**
 * kstatus of an EventLog from its generation and status. A condition whose
 * observedGeneration is older than `generation` counts as not reported.
 */
export function kstatus(generation: number | undefined, status: EventLogStatus | undefined): { status: KStatus; message: string } {
  const conds = status?.conditions;
  const fresh = (t: string) => {
    const c = getCondition(conds, t);
    if (!c) return undefined;
    if (generation !== undefined && c.observedGeneration !== undefined && c.observedGeneration < generation) return undefined;
    return c;
  };
  if (generation !== undefined && (status?.observedGeneration ?? -1) < generation) {
    return { status: 'InProgress', message: `status is for generation ${status?.observedGeneration ?? 'none'}, the object is at ${generation}` };
  }
  const stalled = fresh(ConditionType.Stalled);
  if (stalled?.status === ConditionStatus.True) return { status: 'Failed', message: `${stalled.reason}: ${stalled.message}` };
  const reconciling = fresh(ConditionType.Reconciling);
  if (reconciling?.status === ConditionStatus.True) return { status: 'InProgress', message: `${reconciling.reason}: ${reconciling.message}` };
  const ready = fresh(ConditionType.Ready);
  if (ready?.status !== ConditionStatus.True) {
    return { status: 'InProgress', message: ready ? `${ready.reason}: ${ready.message}` : 'Ready not reported for this generation' };
  }
  return { status: 'Current', message: ready.message };
}
