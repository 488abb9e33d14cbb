/**
 * The human-approved repair of a corrupt log: when to ask the server for it, and what
 * to record of the answer. Pure; the edge is src/operator/reconcile/repair.ts.
 *
 * Guarantees
 * - A repair runs only when the approval annotation equals the corruption id the live
 *   server reports right now (never a stale or guessed id), the EventLog is not
 *   suspended, and the same id has not already failed (a Failed repair is not retried
 *   automatically: a human looks first).
 */
import type { EventLogStatus, Repair } from '../api/eventlog.ts';
import type { ServerObservation } from './server-status.ts';

export interface RepairQuestion {
  approval: string | undefined;
  server: ServerObservation | undefined;
  previous: EventLogStatus['recovery'] | undefined;
  suspended: boolean;
}

/** The corruption id to repair now, or undefined. */
export function repairToRun(q: RepairQuestion): string | undefined {
  if (q.suspended || q.approval === undefined) return undefined;
  const corruptionId = q.server?.ok && q.server.status.state === 'corrupt' ? q.server.status.recovery?.corruption?.id : undefined;
  if (corruptionId === undefined || q.approval !== corruptionId) return undefined;
  const prev = q.previous?.repair;
  if (prev?.corruptionId === corruptionId && prev.result === 'Failed') return undefined;
  return corruptionId;
}

/** The status record of a finished repair request. */
export function repairRecord(corruptionId: string, approvedAt: string, completedAt: string, result: ServerObservation): Repair {
  if (result.ok) {
    const moved = result.status.repair;
    return {
      corruptionId,
      approvedAt,
      completedAt,
      result: 'Succeeded',
      ...(moved?.bytesMoved !== undefined ? { bytesDiscarded: moved.bytesMoved } : {}),
      message: `the log was truncated at the corrupt record${moved?.movedTo ? `; the cut bytes are kept in ${moved.movedTo}` : ''}`,
    };
  }
  return { corruptionId, approvedAt, completedAt, result: 'Failed', message: `${result.error}: ${result.message}`.slice(0, 4000) };
}
