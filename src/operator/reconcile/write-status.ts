/**
 * Writing status: compute it (a pure function of everything observed), write it only
 * when it changed, record Events for transitions, feed the gauges.
 *
 * Guarantees
 * - A merge patch of the status subresource, diffed against what the server holds (so
 *   keys that disappeared are nulled), with a resourceVersion precondition: a status
 *   computed from a stale cache is refused (409) and the pass ends; the update event
 *   that brings the newer object reconciles again.
 * - A steady EventLog causes zero writes (`statusChanged`).
 */
import type { EventLogStatus } from '../../api/eventlog.ts';
import type { Logger } from '../../common/logger.ts';
import { transitionEvents } from '../../decisions/events.ts';
import { computeStatus, statusChanged, type StatusInput } from '../../decisions/status.ts';
import { mergePatch } from '../../runtime/merge-patch.ts';

import { codeOf, step, type ReconcileContext } from './context.ts';
import { EVENTLOG_RESOURCE } from './resource.ts';

export type StatusWrite = { written: boolean; next: EventLogStatus } | { conflict: true } | { gone: true };

export async function writeStatus(ctx: ReconcileContext, input: StatusInput): Promise<StatusWrite> {
  const { old, log } = ctx;
  const next = computeStatus(input);
  if (statusChanged(old, next)) {
    const patch = mergePatch(ctx.raw.status ?? {}, next);
    try {
      await step(ctx, 'patching the status subresource', () =>
        ctx.resources.patch(EVENTLOG_RESOURCE, ctx.namespace, ctx.name, 'merge', { metadata: { resourceVersion: ctx.raw.metadata?.resourceVersion }, status: patch }, { subresource: 'status' }),
      );
    } catch (error) {
      const code = codeOf(error);
      if (code === 409) {
        log.debug('status patch conflict: the cache is behind; reconciling again when it catches up');
        return { conflict: true };
      }
      if (code === 404) return { gone: true };
      throw error;
    }
    // The gauges follow the stored status at once (Events below take API calls).
    ctx.deps.metrics?.observe(ctx.namespace, ctx.name, next, old);
    logTransition(log, old, next);
    // Drift found and put back in this pass is gone from status; its DriftDetected still names it.
    for (const e of transitionEvents(old, next, input.drift?.outcome === 'corrected' ? input.drift.items : undefined)) await ctx.deps.recorder.record(ctx.ref, e);
    return { written: true, next };
  }
  // The status now stored (unchanged): the gauges follow it.
  ctx.deps.metrics?.observe(ctx.namespace, ctx.name, next, old);
  return { written: false, next };
}

function logTransition(log: Logger, old: EventLogStatus | undefined, next: EventLogStatus): void {
  const ready = (s: EventLogStatus | undefined) => s?.conditions?.find((c) => c.type === 'Ready');
  const a = ready(old);
  const b = ready(next);
  if (a?.status !== b?.status || a?.reason !== b?.reason || old?.phase !== next.phase) {
    log.info({ phase: next.phase, ready: b?.status, reason: b?.reason }, 'status changed');
  } else {
    log.debug('status written');
  }
}

