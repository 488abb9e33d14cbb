/**
 * What every reconcile step shares: the parsed EventLog and its metadata, the live
 * owned objects read from the caches (updated as steps write), the dependencies, and
 * the step wrapper that makes every failure name the EventLog, the step and the object.
 */
import type { EventLog, EventLogStatus } from '../../api/eventlog.ts';
import type { Logger } from '../../common/logger.ts';
import type { DesiredOptions } from '../../decisions/desired.ts';
import type { ServerObservation } from '../../decisions/server-status.ts';
import type { UsageSample } from '../../decisions/storage.ts';
import type { LivePod, LivePvc, LiveService } from '../../decisions/status.ts';
import type { ManifestApplier } from '../../kube/apply.ts';
import type { EventObjectRef, EventRecorder } from '../../runtime/recorder.ts';
import { statusCodeOf, type KubeHttp } from '../../runtime/kube-http.ts';
import type { Resources } from '../../runtime/resources.ts';
import type { KubeObject } from '../../runtime/store.ts';
import type { EventLogMetricsSink } from '../eventlog-metrics.ts';
import type { PollOptions } from '../poller.ts';
import type { SecretObject } from '../token-secret.ts';

export interface EventLogControllerDeps {
  http: KubeHttp;
  applier: Pick<ManifestApplier, 'apply'>;
  recorder: Pick<EventRecorder, 'record'>;
  /** operatorNamespace: admitted by every log's NetworkPolicy (default eventlog-system). */
  /** maxConcurrentRollouts: EventLogs that may roll their pod to a new template at once (default 1; src/decisions/rollout.ts). */
  config: { defaultImage: string; pollInterval: number; statusCounterInterval: number; operatorNamespace?: string; storageWarningPercent?: number; maxConcurrentRollouts?: number };
  /** Defaults to `pollServerStatus`; tests may replace it. */
  poll?: (podIP: string, port: number, opts: PollOptions) => Promise<ServerObservation>;
  pollTimeoutMs?: number;
  /** Token source for new token Secrets (default: 32 random bytes); tests may replace it. */
  newToken?: () => string;
  /** Defaults to `requestRepair` (POST /admin/repair); tests may replace it. */
  repair?: (podIP: string, port: number, corruptionId: string, opts: PollOptions) => Promise<ServerObservation>;
  /** Server port (container and Service). Default 8080. */
  port?: number;
  now?: () => Date;
  /** The EventLog gauges (src/operator/eventlog-metrics.ts); none when absent. */
  metrics?: EventLogMetricsSink;
}

/** The live owned objects of one EventLog, as the caches (or the step that wrote them) hold them. */
export interface LiveObjects {
  pvc: (KubeObject & LivePvc) | undefined;
  pod: (KubeObject & LivePod) | undefined;
  service: (KubeObject & LiveService) | undefined;
  secret: SecretObject | undefined;
  networkPolicy: KubeObject | undefined;
  /** The token in the Secret, once known. */
  token: string | undefined;
}

export type RawEventLog = KubeObject & { spec?: unknown; status?: unknown };

/** One reconcile pass of one EventLog. */
export interface ReconcileContext {
  /** "namespace/name", for messages. */
  key: string;
  namespace: string;
  name: string;
  evl: EventLog;
  /** The EventLog as the cache holds it (its status is what a merge patch diffs against). */
  raw: RawEventLog;
  /** The status the operator last wrote. */
  old: EventLogStatus | undefined;
  /** The regarding-object of Events. */
  ref: EventObjectRef;
  log: Logger;
  deps: EventLogControllerDeps;
  resources: Resources;
  desiredOptions: DesiredOptions;
  /** What this process remembers of the EventLog between passes (in memory only). */
  memory: EventLogMemory;
  /**
   * The recorded status holds a rollout slot: the owned step may delete or patch the pod
   * for a template change (src/decisions/rollout.ts `mayRollPod`). Otherwise such a pod
   * is left as it is (queued); other pod changes are not gated.
   */
  mayRollPod: boolean;
  /** The live PVC's request (a PVC grown beyond spec.storage.size is kept at its size). */
  livePvcRequest?: string;
  port: number;
  now: () => Date;
}

/** Per-EventLog memory of one operator process; a restart starts afresh (safe: see each field). */
export interface EventLogMemory {
  /**
   * Uids of this EventLog's pods the operator itself deleted (rollout, drift that needs a
   * recreate, an offline resize): their absence is not drift. Forgotten: a recreate after
   * a restart of the operator is reported as corrected drift once.
   */
  podsDeletedByOperator: Set<string>;
  /** The PVC request the pod was last restarted for (restartPodForResize): once per resize. */
  resizeRestartFor?: string;
  /** Polls of the log server that timed out in a row (undefined: the last one did not). */
  pollTimeoutsInARow?: number;
  /** Recent file-system usage, oldest first, for the projected time to full. */
  usageSamples?: UsageSample[];
}

/** Wraps a step so a failure names the EventLog, the step and the object. */
export class StepError extends Error {
  override name = 'ReconcileStepError';
}

export async function step<T>(ctx: Pick<ReconcileContext, 'key'>, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw new StepError(`EventLog ${ctx.key}: ${what}: ${(error as Error).message}`, { cause: error });
  }
}

/** HTTP status of an API error, looking through StepError/Error causes. */
export function codeOf(error: unknown): number | undefined {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const c = statusCodeOf(e);
    if (c !== undefined) return c;
  }
  return undefined;
}
