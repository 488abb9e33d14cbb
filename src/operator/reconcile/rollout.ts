/**
 * The rollout step: which EventLogs hold a rollout slot (from the EventLogs' statuses in
 * the cache, plus the slots this process took in the last seconds), the decision for
 * this one (src/decisions/rollout.ts), progress log lines, and waking the queue when a
 * slot frees.
 *
 * Guarantees
 * - The slots in use are recomputed from the caches on every pass (`status.rollout.state:
 *   RollingOut` of the other EventLogs, not being deleted): a restarted operator or a new
 *   leader sees the same rollouts in flight. `RolloutSlots` only bridges the moment
 *   between taking a slot and the cache holding that status write (two workers never
 *   both take the last slot: the check and the claim run without an await between them).
 * - The owned step touches a pod for a template change only when the recorded status
 *   holds the slot (`mayRollPod`, decided before the owned step from the cached status).
 * - A freed slot wakes the next queued EventLogs by name (at most as many as slots are
 *   free); every queued EventLog also retries at its poll interval.
 */
import { type RolloutStatus } from '../../api/eventlog.ts';
import { CONTAINER_NAME } from '../../decisions/desired.ts';
import { SPEC_HASH_ANNOTATION, TOKEN_HASH_ANNOTATION } from '../../decisions/labels.ts';
import { decideRollout, holdsSlot, needsRolloutSlot, nextInQueue, type RolloutDecision, type RolloutPod } from '../../decisions/rollout.ts';
import type { ServerObservation } from '../../decisions/server-status.ts';
import { isPodReady } from '../../decisions/status-input.ts';
import { formatTime } from '../../kube/time.ts';
import type { LiveObjects, RawEventLog, ReconcileContext } from './context.ts';

/** How long a slot this process just took counts before the cache must show it. */
export const SLOT_CLAIM_TTL_MS = 15_000;

/** Slots this process took whose status write the cache may not hold yet (key -> when). */
export class RolloutSlots {
  readonly #claims = new Map<string, number>();
  claim(key: string, nowMs: number): void {
    this.#claims.set(key, nowMs);
  }
  release(key: string): void {
    this.#claims.delete(key);
  }
  /** Keys claimed within the TTL. */
  recent(nowMs: number): string[] {
    const out: string[] = [];
    for (const [key, at] of this.#claims) {
      if (nowMs - at < SLOT_CLAIM_TTL_MS) out.push(key);
      else this.#claims.delete(key);
    }
    return out;
  }
}

/** What the step needs beyond the pass's context. */
export interface RolloutFleet {
  /** Every EventLog in the cache (raw: only `metadata` and `status.rollout` are read). */
  eventLogs: () => readonly RawEventLog[];
  slots: RolloutSlots;
  /** `--max-concurrent-rollouts`. */
  max: number;
  /** Queue another EventLog's reconcile (`namespace/name`). */
  enqueue: (key: string) => void;
}

type RawRollout = { rollout?: RolloutStatus } | undefined;
const keyOf = (e: RawEventLog) => `${e.metadata?.namespace ?? ''}/${e.metadata?.name ?? ''}`;
const rolloutOf = (e: RawEventLog) => (e.status as RawRollout)?.rollout;

/** The live pod as the rollout decision reads it. */
export function rolloutPod(live: LiveObjects['pod']): RolloutPod | undefined {
  if (!live) return undefined;
  const a = live.metadata.annotations ?? {};
  const c = live.status?.containerStatuses?.find((x) => x.name === CONTAINER_NAME);
  const image = live.spec?.containers?.find((x) => x.name === CONTAINER_NAME)?.image;
  return {
    ...(live.metadata.uid !== undefined ? { uid: live.metadata.uid } : {}),
    ...(a[SPEC_HASH_ANNOTATION] !== undefined ? { template: a[SPEC_HASH_ANNOTATION] } : {}),
    ...(a[TOKEN_HASH_ANNOTATION] !== undefined ? { tokenHash: a[TOKEN_HASH_ANNOTATION] } : {}),
    terminating: live.metadata.deletionTimestamp !== undefined,
    ready: isPodReady(live),
    ...(c?.restartCount !== undefined ? { restarts: c.restartCount } : {}),
    ...(image !== undefined ? { image } : {}),
  };
}

/** The rollout decision of this pass, with its side effects (slot claims, log lines, waking the queue). */
export function rolloutStep(ctx: ReconcileContext, fleet: RolloutFleet, live: LiveObjects, desired: { template: string; tokenHash?: string }, server: ServerObservation | undefined): RolloutDecision {
  const log = ctx.log.child({ step: 'rollout' });
  const nowMs = ctx.now().getTime();
  // The other EventLogs are scanned only when a slot is in question (a pod to roll, or a
  // slot to give back), not on every steady poll of an up-to-date EventLog.
  let othersMemo: RawEventLog[] | undefined;
  const others = () => (othersMemo ??= fleet.eventLogs().filter((e) => keyOf(e) !== ctx.key && e.metadata?.deletionTimestamp === undefined));
  const holdersNow = () => [...new Set([...others().filter((e) => holdsSlot({ rollout: rolloutOf(e) })).map(keyOf), ...fleet.slots.recent(nowMs).filter((k) => k !== ctx.key)])].sort();
  const pod = rolloutPod(live.pod);
  const mayTakeSlot = !ctx.evl.spec.suspend && !holdsSlot({ rollout: ctx.old?.rollout }) && needsRolloutSlot(desired, pod);
  const holders = mayTakeSlot ? holdersNow() : [];
  const decision = decideRollout({
    desired,
    pod,
    server: server?.ok ? { bootId: server.status.bootId } : undefined,
    ...(ctx.old?.pod?.bootId !== undefined ? { lastBootId: ctx.old.pod.bootId } : {}),
    recorded: ctx.old?.rollout,
    suspended: ctx.evl.spec.suspend,
    holders,
    max: fleet.max,
    now: formatTime(ctx.now()),
  });
  const outdated = () => others().filter((e) => rolloutOf(e)?.upToDate === false).length + 1;
  const s = decision.status;
  switch (decision.transition) {
    case 'started':
      fleet.slots.claim(ctx.key, nowMs);
      log.info({ template: s.desired, from: s.current, outdated: outdated(), rolling: holders.length + 1, max: fleet.max }, `rolling EventLog ${ctx.key} to template ${s.desired} (${holders.length + 1} of at most ${fleet.max} at once; ${outdated()} outdated)`);
      break;
    case 'queued':
      fleet.slots.release(ctx.key);
      log.info({ template: s.desired, from: s.current, waitingFor: decision.waitingFor?.names, max: fleet.max }, `rollout of EventLog ${ctx.key} to template ${s.desired} queued: ${decision.waitingFor?.names.join(', ')} rolling (at most ${fleet.max} at once)`);
      break;
    case 'finished':
    case 'released': {
      fleet.slots.release(ctx.key);
      const since = ctx.old?.rollout?.since;
      const took = since !== undefined ? Math.round((nowMs - Date.parse(since)) / 100) / 10 : undefined;
      const left = outdated() - 1;
      if (decision.transition === 'finished') log.info({ template: s.desired, seconds: took, outdated: left }, `rolled EventLog ${ctx.key} to template ${s.desired}${took !== undefined ? ` in ${took}s` : ''} (${left} outdated left)`);
      else log.info({ template: s.desired }, `rollout of EventLog ${ctx.key} released: suspended`);
      const queued = others().filter((e) => rolloutOf(e)?.state === 'Queued').map(keyOf);
      for (const key of nextInQueue(queued, fleet.max - holdersNow().length)) fleet.enqueue(key);
      break;
    }
    case undefined:
      if (s.state !== 'RollingOut') fleet.slots.release(ctx.key);
      break;
  }
  return decision;
}
