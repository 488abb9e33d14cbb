/**
 * The approved repair: when `eventlog.dev/approve-repair` equals the corruption id the
 * live server reports (src/decisions/repair.ts decides), ask the server once for
 * `POST /admin/repair` (synchronously, bounded at 60 s) and return the record for
 * `status.recovery.repair` plus the server's status after it.
 */
import { APPROVE_REPAIR_ANNOTATION, type Repair } from '../../api/eventlog.ts';
import { formatTime } from '../../kube/time.ts';
import { repairRecord, repairToRun } from '../../decisions/repair.ts';
import type { ServerObservation } from '../../decisions/server-status.ts';
import type { PollOptions } from '../poller.ts';
import type { LiveObjects, ReconcileContext } from './context.ts';

export type RepairFn = (podIP: string, port: number, corruptionId: string, opts: PollOptions) => Promise<ServerObservation>;

export async function maybeRepair(
  ctx: ReconcileContext,
  live: LiveObjects,
  server: ServerObservation | undefined,
  runRepair: RepairFn,
): Promise<{ repair?: Repair; server: ServerObservation | undefined }> {
  const ip = live.pod?.status?.podIP;
  const corruptionId = repairToRun({ approval: ctx.evl.metadata.annotations?.[APPROVE_REPAIR_ANNOTATION], server, previous: ctx.old?.recovery, suspended: ctx.evl.spec.suspend });
  if (corruptionId === undefined || !ip) return { server };
  const approvedAt = formatTime(ctx.now());
  ctx.log.warn({ corruptionId }, `repair approved with ${APPROVE_REPAIR_ANNOTATION}: asking the log server to truncate at the corrupt record`);
  const r = await runRepair(ip, ctx.port, corruptionId, live.token !== undefined ? { token: live.token } : {});
  const repair = repairRecord(corruptionId, approvedAt, formatTime(ctx.now()), r);
  if (r.ok) ctx.log.warn({ corruptionId, bytesMoved: r.status.repair?.bytesMoved, movedTo: r.status.repair?.movedTo }, 'approved repair done');
  else ctx.log.error({ corruptionId, error: r.error, message: r.message }, 'approved repair failed');
  return { repair, server: r.ok ? r : server };
}
