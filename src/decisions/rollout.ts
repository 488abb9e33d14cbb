/**
 * Rolling template changes out one EventLog at a time: pure decisions, no I/O. The edge
 * is src/operator/reconcile/rollout.ts.
 *
 * A *template rollout* is a pod whose `eventlog.dev/spec-hash` differs from the desired
 * pod's: the operator's `--default-image` changed, a new operator version builds another
 * pod, or the EventLog's own spec changed. Each one restarts a log server, so the
 * operator lets at most `--max-concurrent-rollouts` EventLogs (cluster-wide, default 1)
 * hold a *rollout slot* at once, like a Deployment's maxUnavailable:
 *
 *   UpToDate --(template differs, slot free)--> RollingOut --(new server answers)--> UpToDate
 *   UpToDate --(template differs, no slot)----> Queued --(slot frees)--> RollingOut
 *
 * Guarantees
 * - A slot is taken in status before the pod is touched: the pass that takes it writes
 *   `status.rollout.state: RollingOut` (with what it replaces), and only a later pass that
 *   reads that status back from the cache may delete or patch the pod (`mayRollPod`). So
 *   the set of slots in use is recomputable from the EventLogs' statuses alone
 *   (`holdsSlot`) after an operator restart or a leader change; the controller adds only
 *   the slots it took in the last seconds, before the cache shows them.
 * - A slot is held from then until the pod runs the desired template, is Ready, and a
 *   log server boot other than the replaced one answers `/status` (or the desired template
 *   became the replaced one again: nothing left to do). A pod patched in place without a
 *   new image (labels, annotations) keeps its server: its answer on the desired template
 *   ends the rollout. A rollout that never gets there
 *   (image cannot be pulled, crash loop) keeps its slot: the others wait, and say for whom.
 * - Not gated, and never holding a slot: creating a missing pod (deleted, or first
 *   create), a pod already terminating, a pod that is not Ready (`needsRolloutSlot`), a new token (the deleted token Secret is drift
 *   whose correction must not wait), drift correction, the restart for an offline volume
 *   resize, and suspended EventLogs (nothing is rolled while suspended).
 * - Deterministic: the same inputs give the same status (the `since` time moves only
 *   when the state changes), so a steady system writes nothing.
 *
 * Caveats
 * - Slots are not handed out in a fixed order: whichever queued EventLog reconciles first
 *   after a slot frees takes it (the one that frees it wakes the next queued ones by name
 *   order; every queued one also retries at its poll interval).
 * - A queued EventLog's status does not name the EventLogs holding the slots (the log line
 *   does): its status is written when it enters the queue and when it leaves, not at each
 *   rollout that starts in between.
 */
import { RolloutState, type RolloutStatus } from '../api/eventlog.ts';

export { RolloutState };

/** Default of `--max-concurrent-rollouts`. */
export const DEFAULT_MAX_CONCURRENT_ROLLOUTS = 1;
/** At most this many names of slot holders in a queued EventLog's message. */
export const MAX_NAMED_HOLDERS = 5;

/** What the reconcile saw of the live pod. */
export interface RolloutPod {
  uid?: string;
  /** Its `eventlog.dev/spec-hash` annotation. */
  template?: string;
  /** Its `eventlog.dev/token-hash` annotation. */
  tokenHash?: string;
  terminating: boolean;
  ready: boolean;
  restarts?: number;
  /** The log server container's image (spec). */
  image?: string;
}

/** How the live pod differs from the desired one, as far as rolling goes. */
export type TemplateChange = 'none' | 'template' | 'token';

/**
 * `template`: a gated rollout; `token`: the token changed (a new Secret after drift: the
 * pod is recreated at once, ungated); `none`: the same template, or nothing to compare
 * (no pod, or a pod without a template annotation: plain drift rules apply).
 */
export function templateChange(desired: { template: string; tokenHash?: string }, pod: Pick<RolloutPod, 'template' | 'tokenHash'> | undefined): TemplateChange {
  if (pod?.template === undefined || pod.template === desired.template) return 'none';
  if (pod.tokenHash !== undefined && desired.tokenHash !== undefined && pod.tokenHash !== desired.tokenHash) return 'token';
  return 'template';
}

/**
 * Does replacing this pod for the desired template need a rollout slot? Only a template
 * change of a pod that serves (Ready, not terminating). A pod that is not Ready serves
 * nothing a rollout could disrupt: it is replaced at once, as a Deployment replaces its
 * unavailable pods first, so an EventLog that was broken before the upgrade neither
 * waits in the queue nor holds it up.
 */
export function needsRolloutSlot(desired: { template: string; tokenHash?: string }, pod: RolloutPod | undefined): boolean {
  return pod !== undefined && !pod.terminating && pod.ready && templateChange(desired, pod) === 'template';
}

/** Does this recorded status hold a rollout slot? (What other EventLogs are counted by.) */
export function holdsSlot(status: { rollout?: Pick<RolloutStatus, 'state'> } | undefined): boolean {
  return status?.rollout?.state === RolloutState.RollingOut;
}

/**
 * May the owned step delete or patch the pod for a template change? Only once the slot
 * is recorded in the status the cache holds (never on a claim only in memory).
 */
export function mayRollPod(recorded: { rollout?: Pick<RolloutStatus, 'state'> } | undefined, suspended: boolean): boolean {
  return !suspended && holdsSlot(recorded);
}

export interface RolloutInput {
  /** `eventlog.dev/spec-hash` and token fingerprint of the desired pod. */
  desired: { template: string; tokenHash?: string };
  /** The live pod (after the owned step acted), undefined when there is none. */
  pod: RolloutPod | undefined;
  /** The log server's answer in this pass: its boot, or none. */
  server: { bootId: string } | undefined;
  /** The boot the last status recorded (when the server did not answer now). */
  lastBootId?: string;
  /** `status.rollout` as recorded (the cache's copy of the EventLog). */
  recorded: RolloutStatus | undefined;
  suspended: boolean;
  /** Other EventLogs holding a slot now (recorded, or just taken by this process), sorted. */
  holders: readonly string[];
  /** `--max-concurrent-rollouts` (>= 1). */
  max: number;
  /** Formatted now, for `since`. */
  now: string;
}

export type RolloutTransition = 'started' | 'finished' | 'queued' | 'released' | undefined;

export interface RolloutDecision {
  status: RolloutStatus;
  /** What changed in this pass (logged; `finished`/`released` free a slot: wake the queue). */
  transition: RolloutTransition;
  /** Queued: the holders it waits for (at most MAX_NAMED_HOLDERS) and how many there are. */
  waitingFor?: { names: string[]; count: number; max: number };
}

/** The rollout state of one EventLog in this pass (see the module doc). */
export function decideRollout(input: RolloutInput): RolloutDecision {
  const { desired, pod, recorded, now } = input;
  const current = pod?.template;
  const base = { desired: desired.template, ...(current !== undefined ? { current } : {}), upToDate: pod === undefined || current === desired.template };
  const since = (state: RolloutState) => (recorded?.state === state ? recorded.since : now);
  const settle = (): RolloutStatus => {
    const state = base.upToDate || pod === undefined ? RolloutState.UpToDate : RolloutState.Outdated;
    return { state, ...base, since: since(state) };
  };
  const holding = holdsSlot({ rollout: recorded });

  if (holding) {
    if (input.suspended) return { status: settle(), transition: 'released' };
    if (rolloutDone(input)) return { status: { state: RolloutState.UpToDate, ...base, upToDate: true, since: now }, transition: 'finished' };
    return { status: { state: RolloutState.RollingOut, ...base, upToDate: false, since: recorded!.since, ...(recorded!.replacing ? { replacing: recorded!.replacing } : {}) }, transition: undefined };
  }
  const gated = !input.suspended && needsRolloutSlot(desired, pod);
  if (!gated || pod === undefined) return { status: settle(), transition: undefined };
  if (input.holders.length < input.max) {
    const bootId = input.server?.bootId ?? input.lastBootId;
    const replacing = { ...(current !== undefined ? { template: current } : {}), ...(pod.uid !== undefined ? { podUid: pod.uid } : {}), ...(bootId !== undefined ? { bootId } : {}), ...(pod.restarts !== undefined ? { restarts: pod.restarts } : {}), ...(pod.image !== undefined ? { image: pod.image } : {}) };
    return { status: { state: RolloutState.RollingOut, ...base, upToDate: false, since: now, replacing }, transition: 'started' };
  }
  return {
    status: { state: RolloutState.Queued, ...base, since: since(RolloutState.Queued) },
    transition: recorded?.state === RolloutState.Queued ? undefined : 'queued',
    waitingFor: { names: input.holders.slice(0, MAX_NAMED_HOLDERS), count: input.holders.length, max: input.max },
  };
}

/**
 * The slot can be given back: the pod runs the desired template, is Ready, and a server
 * boot other than the replaced one answers (a recreated pod, or a restarted container
 * after an in-place image change); or the desired template is the replaced one again.
 */
function rolloutDone({ desired, pod, server, recorded }: RolloutInput): boolean {
  if (pod === undefined || pod.terminating || pod.template !== desired.template || !pod.ready || server === undefined) return false;
  const r = recorded?.replacing;
  if (r === undefined || r.template === desired.template) return true;
  // Patched in place (labels, annotations, tolerations) with the same image: nothing
  // restarts the server, so no new boot is coming; the patch was the whole rollout.
  if (r.podUid !== undefined && pod.uid === r.podUid && r.image !== undefined && pod.image === r.image) return true;
  if (r.bootId !== undefined) return server.bootId !== r.bootId;
  return pod.uid !== r.podUid || (pod.restarts ?? 0) > (r.restarts ?? 0);
}

/**
 * The message of a queued EventLog's Reconciling condition. It names no slot holder on
 * purpose: holders change with every rollout, and a message that followed them would
 * rewrite every queued EventLog's status each time (n²/2 writes for n outdated EventLogs
 * at max 1). It stays the same while queued: one write to enter the queue, one to leave.
 * The holders are in the operator's log line and in `kubectl get eventlogs` (Rollout).
 */
export function queuedMessage(status: Pick<RolloutStatus, 'current' | 'desired'>, waitingFor: Pick<NonNullable<RolloutDecision['waitingFor']>, 'max'>): string {
  return `the pod runs template ${status.current ?? '?'}, the desired template is ${status.desired}; waiting for a rollout slot (at most ${waitingFor.max} at once, --max-concurrent-rollouts); the EventLogs rolling now show RollingOut in kubectl get eventlogs`;
}

/** Keys to wake when slots free up: the first `free` queued EventLogs by name (the rest retry at their poll interval). */
export function nextInQueue(queued: readonly string[], free: number): string[] {
  return [...queued].sort().slice(0, Math.max(0, free));
}
