/**
 * Which Kubernetes Events to record for a status transition (the pure part; the
 * recorder that writes events.k8s.io/v1 objects lives with the reconcile loop).
 *
 * Guarantees:
 * - Derived only from the old and new status, so an unchanged status gives no events,
 *   and re-running a reconcile that computed the same status emits nothing twice.
 * - One event per transition a human cares about:
 *   | transition | type | reason |
 *   |---|---|---|
 *   | Ready becomes True | Normal | `Ready` |
 *   | Ready True -> False/Unknown | Warning | `NotReady` (note: reason and message) |
 *   | a new recovery (bootId not seen before, or its outcome changed) | Normal / Warning / Warning | `RecoveredClean` / `TornTailTruncated` / `CorruptionDetected` |
 *   | new drift items (also those put back in the same pass) | Warning | `DriftDetected` |
 *   | `drift.corrections` grew | Normal | `DriftCorrected` |
 *   | Stalled becomes True, or its reason changes | Warning | `Stalled` |
 *   | Stalled True -> False | Normal | `Unstalled` |
 *   | repair result changes to Succeeded / Failed | Normal / Warning | `Repaired` / `RepairFailed` |
 *   | status.storage.nearlyFull turns on | Warning | `StorageNearlyFull` |
 *   | Ready's reason becomes StorageFull from another False reason (from True: `NotReady` says it) | Warning | `StorageFull` |
 *   | a new entry in status.storage.growth reaches its size (capacity >= to) | Normal | `StorageGrown` |
 *   | status.rollout.state becomes RollingOut (a rollout slot taken) | Normal | `RolloutStarted` |
 *   | status.rollout.state RollingOut -> UpToDate | Normal | `RolloutFinished` |
 * - Notes are at most 1024 characters (the events.k8s.io limit).
 */
import { ConditionStatus, ConditionType, RecoveryOutcome, type EventLogStatus } from '../api/eventlog.ts';
import type { EventSpec } from '../runtime/recorder.ts';
import { compareQuantities, isQuantity } from '../kube/quantity.ts';
import { getCondition } from './conditions.ts';

/** What `EventRecorder.record` takes (type, reason, note, action). */
export type EventToRecord = EventSpec;

const MAX_NOTE = 1024;

/** The `action` of each event reason (what the operator was doing when it noticed). */
export const EVENT_ACTIONS: Record<string, string> = {
  Ready: 'Reconcile',
  NotReady: 'Reconcile',
  Stalled: 'Reconcile',
  Unstalled: 'Reconcile',
  RecoveredClean: 'ObserveRecovery',
  TornTailTruncated: 'ObserveRecovery',
  CorruptionDetected: 'ObserveRecovery',
  DriftDetected: 'DetectDrift',
  DriftCorrected: 'CorrectDrift',
  Repaired: 'Repair',
  RepairFailed: 'Repair',
  StorageNearlyFull: 'ObserveStorage',
  StorageFull: 'ObserveStorage',
  StorageGrown: 'GrowStorage',
  RolloutStarted: 'RollOut',
  RolloutFinished: 'RollOut',
};

function ev(type: EventToRecord['type'], reason: string, note: string): EventToRecord {
  return { type, reason, note: note.length > MAX_NOTE ? `${note.slice(0, MAX_NOTE - 3)}...` : note, action: EVENT_ACTIONS[reason] ?? 'Reconcile' };
}

/** A drift finding as events describe it (a status drift item, or one found and put back in this pass). */
export interface FoundDrift {
  kind: string;
  name: string;
  path: string;
  expected?: string | undefined;
  actual?: string | undefined;
}

/**
 * `found`: the drift items the reconciler found in this pass, corrected or not. A pass
 * that finds drift and puts it back at once leaves no items in the new status, yet a
 * human still wants the Warning saying what was changed (expected vs found) before the
 * DriftCorrected. Default: the new status's items.
 */
export function transitionEvents(oldStatus: EventLogStatus | undefined, newStatus: EventLogStatus, found?: readonly FoundDrift[]): EventToRecord[] {
  const out: EventToRecord[] = [];
  const oc = oldStatus?.conditions;
  const nc = newStatus.conditions;

  // Recovery first: it usually explains the Ready transition that follows.
  const newest = newStatus.recovery?.history?.[0];
  if (newest) {
    const before = oldStatus?.recovery?.history?.find((h) => h.bootId === newest.bootId);
    if (!before || before.outcome !== newest.outcome) {
      if (newest.outcome === RecoveryOutcome.Clean) {
        out.push(ev('Normal', 'RecoveredClean', `log server boot ${newest.bootId} recovered a clean log: ${newest.recordsRecovered ?? 0} records in ${newest.durationMs ?? 0} ms`));
      } else if (newest.outcome === RecoveryOutcome.TornTailTruncated) {
        out.push(ev('Warning', 'TornTailTruncated', `log server boot ${newest.bootId} cut off a torn final record (${newest.bytesTruncated ?? 0} bytes kept aside); ${newest.recordsRecovered ?? 0} records intact`));
      } else {
        const c = newStatus.recovery?.corruption;
        out.push(
          ev(
            'Warning',
            'CorruptionDetected',
            c
              ? `interior corruption ${c.id} in ${c.segment} at offset ${c.offset}: ${c.reason}; writes refused until a repair is approved`
              : `log server boot ${newest.bootId} found interior corruption; writes refused until a repair is approved`,
          ),
        );
      }
    }
  }

  const oldRepair = oldStatus?.recovery?.repair;
  const newRepair = newStatus.recovery?.repair;
  if (newRepair && (oldRepair?.result !== newRepair.result || oldRepair.corruptionId !== newRepair.corruptionId)) {
    if (newRepair.result === 'Succeeded') {
      out.push(ev('Normal', 'Repaired', `repair of corruption ${newRepair.corruptionId} done: ${newRepair.recordsDiscarded ?? 0} records / ${newRepair.bytesDiscarded ?? 0} bytes moved aside`));
    } else if (newRepair.result === 'Failed') {
      out.push(ev('Warning', 'RepairFailed', `repair of corruption ${newRepair.corruptionId} failed: ${newRepair.message ?? 'no detail'}`));
    }
  }

  const oldReady = getCondition(oc, ConditionType.Ready);
  const newReady = getCondition(nc, ConditionType.Ready);
  if (newReady?.status === ConditionStatus.True && oldReady?.status !== ConditionStatus.True) {
    out.push(ev('Normal', 'Ready', newReady.message));
  } else if (oldReady?.status === ConditionStatus.True && newReady && newReady.status !== ConditionStatus.True) {
    out.push(ev('Warning', 'NotReady', `${newReady.reason}: ${newReady.message}`));
  }

  const oldStalled = getCondition(oc, ConditionType.Stalled);
  const newStalled = getCondition(nc, ConditionType.Stalled);
  if (newStalled?.status === ConditionStatus.True && (oldStalled?.status !== ConditionStatus.True || oldStalled.reason !== newStalled.reason)) {
    out.push(ev('Warning', 'Stalled', `${newStalled.reason}: ${newStalled.message}`));
  } else if (oldStalled?.status === ConditionStatus.True && newStalled && newStalled.status !== ConditionStatus.True) {
    out.push(ev('Normal', 'Unstalled', `no longer stalled (was ${oldStalled.reason})`));
  }

  if (newStatus.storage?.nearlyFull && !oldStatus?.storage?.nearlyFull) {
    const s = newStatus.storage;
    out.push(ev('Warning', 'StorageNearlyFull', `the log's volume is ${s.usedPercent ?? '?'}% used (${s.availableBytes ?? '?'} bytes available of ${s.filesystemBytes ?? '?'})${s.projectedFullAt ? `; at the current rate it is full at ${s.projectedFullAt}` : ''}`));
  }
  // From Ready=True the NotReady Warning above already says StorageFull: one Event, not two.
  if (newReady?.reason === 'StorageFull' && oldReady?.reason !== 'StorageFull' && oldReady?.status !== ConditionStatus.True) out.push(ev('Warning', 'StorageFull', newReady.message));
  const grown = newStatus.storage?.growth?.[0];
  const capacity = newStatus.storage?.capacity;
  const oldCapacity = oldStatus?.storage?.capacity;
  if (grown && capacity !== undefined && capacity !== oldCapacity && isQuantity(capacity) && isQuantity(grown.to) && compareQuantities(capacity, grown.to) >= 0) {
    out.push(ev('Normal', 'StorageGrown', `PersistentVolumeClaim ${newStatus.storage?.pvcName} now has ${capacity} (was ${grown.from}; ${grown.reason})`));
  }

  const oldRollout = oldStatus?.rollout;
  const newRollout = newStatus.rollout;
  if (newRollout?.state === 'RollingOut' && oldRollout?.state !== 'RollingOut') {
    out.push(ev('Normal', 'RolloutStarted', `replacing the log pod's template ${newRollout.replacing?.template ?? newRollout.current ?? '?'} with ${newRollout.desired} (a rollout slot taken: --max-concurrent-rollouts)`));
  } else if (oldRollout?.state === 'RollingOut' && newRollout?.state === 'UpToDate') {
    out.push(ev('Normal', 'RolloutFinished', `the log pod runs template ${newRollout.desired} and its server answers${oldRollout.since ? ` (rollout started ${oldRollout.since})` : ''}; the slot is free`));
  }

  const key = (i: { kind: string; name: string; path: string }) => `${i.kind}\u0000${i.name}\u0000${i.path}`;
  const oldItems = new Set((oldStatus?.drift?.items ?? []).map(key));
  const fresh = (found ?? newStatus.drift?.items ?? []).filter((i) => !oldItems.has(key(i)));
  const describe = (i: FoundDrift) =>
    i.path === '.' ? `${i.kind} ${i.name} deleted` : `${i.kind} ${i.name} ${i.path}: expected ${i.expected ?? '(absent)'}, found ${i.actual ?? '(absent)'}`;
  if (fresh.length > 0) out.push(ev('Warning', 'DriftDetected', fresh.map(describe).join('; ')));
  const corrected = (newStatus.drift?.corrections ?? 0) - (oldStatus?.drift?.corrections ?? 0);
  if (corrected > 0) {
    const drifted = getCondition(nc, ConditionType.Drifted);
    out.push(ev('Normal', 'DriftCorrected', `put back ${corrected} drifted field(s)${drifted?.message ? `: ${drifted.message}` : ''}`));
  }
  return out;
}
