/**
 * metav1.Condition bookkeeping. Pure. (kstatus itself is checked with the real
 * sigs.k8s.io/cli-utils library in the tests: test/support/kstatus.ts.)
 *
 * Guarantees:
 * - `setCondition` returns a new list (the input is not mutated); it keeps the
 *   position of an existing condition, appends a new one, keeps `lastTransitionTime`
 *   unless `status` changes (a reason or message change alone does not move it), and
 *   always stamps `observedGeneration`.
 * - Times are RFC 3339 with second precision (`formatTime`), as metav1.Time is
 *   serialised, so a value read back from the API server compares equal to the one
 *   written and a steady state causes no writes.
 */
import { ConditionStatus, type Condition } from '../api/eventlog.ts';
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
