/**
 * What `computeStatus` takes: the parts of live objects it reads (raw JSON from the
 * informer caches), the drift the reconciler found, the server's observation, options.
 */
import type { DriftFinding } from './drift.ts';
import { ConditionType, type EventLog, type Repair, type StorageGrowth } from '../api/eventlog.ts';
import type { UsageSample } from './storage.ts';
import type { RolloutDecision } from './rollout.ts';
import { getCondition } from './conditions.ts';
import { PollError, type ServerObservation } from './server-status.ts';

// ---------------------------------------------------------------------------
// Inputs: the parts of live objects we read (raw JSON from the informer cache)
// ---------------------------------------------------------------------------

export type Time = string | Date;

export interface LiveMeta {
  name: string;
  uid?: string;
  deletionTimestamp?: Time;
  annotations?: Record<string, string>;
}

export interface LivePvc {
  metadata: LiveMeta;
  spec?: { storageClassName?: string; resources?: { requests?: { storage?: string } } };
  status?: { phase?: string; capacity?: { storage?: string }; conditions?: { type: string; status: string; message?: string }[] };
}

export interface ContainerStateTerminated {
  exitCode?: number;
  signal?: number;
  reason?: string;
  message?: string;
  finishedAt?: Time;
}

export interface ContainerState {
  waiting?: { reason?: string; message?: string };
  running?: { startedAt?: Time };
  terminated?: ContainerStateTerminated;
}

export interface LiveContainerStatus {
  name: string;
  ready?: boolean;
  restartCount?: number;
  started?: boolean;
  state?: ContainerState;
  lastState?: ContainerState;
}

export interface LivePod {
  metadata: LiveMeta;
  spec?: { containers?: { name: string; image?: string }[] };
  status?: {
    phase?: string;
    podIP?: string;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
    containerStatuses?: LiveContainerStatus[];
  };
}

export interface LiveService {
  metadata: LiveMeta;
}

/** What the reconciler found and did about drift in this pass. */
export interface DriftInput {
  /** Differences classified as drift (not rollout), including "." for a deleted object that existed. */
  items: DriftFinding[];
  /**
   * none: nothing attempted (no drift, driftPolicy Report, or suspended);
   * corrected: every item was put back in this pass;
   * correcting: correction started but takes time (pod recreated);
   * failed: correction attempted and failed (`error`).
   */
  outcome: 'none' | 'corrected' | 'correcting' | 'failed';
  error?: string;
}

export interface StatusOptions {
  /** Minimum interval between writes caused by log counters alone. Default 30 000. */
  countersMinIntervalMs?: number;
  /** Restarts in CrashLoopBackOff after which the crash loop is Stalled. Default 3. */
  crashLoopStallRestarts?: number;
  /** Server port, for the endpoint URL. Default 8080. */
  port?: number;
  /**
   * Timed-out polls in a row that leave a Ready log Ready (its pod still Ready). Default 1:
   * one slow answer on a busy node is not an outage; a refused connection always counts.
   */
  pollTimeoutsTolerated?: number;
  /** Used percent at which status.storage.nearlyFull turns on (a Warning Event). Default 85. */
  storageWarningPercent?: number;
}

export interface StatusInput {
  /** The EventLog (parsed: spec defaults applied). Its `status` is the old status. */
  evl: Pick<EventLog, 'metadata' | 'spec' | 'status'>;
  pvc?: LivePvc;
  pod?: LivePod;
  service?: LiveService;
  /** The StorageClass the PVC asks for; undefined when not checked or none named. */
  storageClass?: { name: string; found: boolean; allowVolumeExpansion?: boolean };
  /** Result of polling the server's /status; undefined when not polled. */
  server?: ServerObservation;
  /** Polls that timed out in a row, this one included (0 or absent: this one did not). */
  pollTimeoutsInARow?: number;
  drift?: DriftInput;
  /** `eventlog.dev/spec-hash` of the desired pod, to tell a pending rollout. */
  desiredPodHash?: string;
  /** The rollout decision of this pass (rollout.ts): `status.rollout` and the RolloutQueued/RollingOut reasons. Absent: the recorded one is kept. */
  rollout?: RolloutDecision;
  /** The spec passed the API server but cannot work (message says what to fix). */
  specError?: string;
  /** The repair record when the reconciler approved/ran one in this pass. */
  repair?: Repair;
  /** Recent usage samples of this EventLog (oldest first), for the projected time to full. */
  usageSamples?: readonly UsageSample[];
  /** The PVC growth the reconciler asked for in this pass (spec.storage.autoGrow). */
  growth?: StorageGrowth;
  /** Token Secret clients need, when the server is configured with one. */
  tokenSecret?: { name: string; key: string };
  now: Date;
  options?: StatusOptions;
}

export const DEFAULT_COUNTERS_MIN_INTERVAL_MS = 30_000;
export const DEFAULT_CRASH_LOOP_STALL_RESTARTS = 3;
export const DEFAULT_POLL_TIMEOUTS_TOLERATED = 1;

/** The pod's Ready condition (the kubelet's readiness probe) is True. */
export function isPodReady(pod: LivePod | undefined): boolean {
  return pod?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** True when this failed poll is a tolerated timeout of a log that was Ready (see StatusOptions). */
export function pollTimeoutTolerated(input: StatusInput): boolean {
  const { server } = input;
  if (!server || server.ok || server.error !== PollError.Timeout) return false;
  const inARow = input.pollTimeoutsInARow ?? 1;
  const wasReady = getCondition(input.evl.status?.conditions, ConditionType.Ready)?.status === 'True';
  return wasReady && isPodReady(input.pod) && inARow <= (input.options?.pollTimeoutsTolerated ?? DEFAULT_POLL_TIMEOUTS_TOLERATED);
}

export const IMAGE_PULL_STALL = new Set(['ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull']);
export const IMAGE_PULL = new Set([...IMAGE_PULL_STALL, 'ErrImagePull']);
