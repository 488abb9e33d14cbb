/**
 * `computeStatus`: the EventLog's new status from what the reconciler observed. Pure:
 * every input (live objects, the server's /status, drift findings, the clock) is passed
 * in; nothing is read or written here.
 *
 * Guarantees:
 * - Follows the status contract (docs/api.md, docs/controller.md): every condition
 *   carries the EventLog's generation; `lastTransitionTime` moves only when a
 *   condition's status changes; kstatus invariants hold (Ready=True implies
 *   Reconciling=False and Stalled=False; Stalled=True implies Reconciling=False).
 * - Deterministic: the same inputs (and the same old status) give a deep-equal status,
 *   and messages contain no clock values, so a steady cluster yields
 *   `statusChanged(old, new) === false` and no write.
 * - Log counters (`status.log`) alone cause a write at most once per
 *   `countersMinIntervalMs` (default 30 s); any other change writes at once and brings
 *   the current counters along.
 * - Recovery history: one entry per server boot (`bootId`), newest first, at most
 *   `MAX_RECOVERY_HISTORY`; a boot already recorded is updated in place (a repair re-runs
 *   recovery within the same boot), never added twice.
 * - Drift: `firstSeen` of an item (kind/name/path) is kept while it persists;
 *   `lastDetectedAt` moves only when a new item appears; `corrections` counts corrected
 *   items.
 * - A crash loop, once reported (Ready `ContainerCrashLooping`), stays reported while the
 *   restarted container runs but the server has not answered `/status`, so Ready's
 *   reason and Stalled do not flap with every restart.
 * - The result has no `undefined`-valued keys (it round-trips through JSON unchanged).
 *
 * Caveats: the reconciler decides which differences are drift (see
 * `classifyDifferences`: a spec change is a rollout, not drift; a missing object is
 * drift only if it existed before) and what it did about them (`drift.outcome`).
 */
import { ConditionType, MAX_DRIFT_ITEMS, MAX_GROWTH_HISTORY, MAX_RECOVERY_HISTORY, Phase, ReadyReason, RecoveredReason, type Condition, type DriftItem, type DriftStatus, type EventLogStatus, type LogStats, type PodStatus, type RecoveryHistoryEntry, type RecoveryStatus, type StorageStatus } from '../api/eventlog.ts';
import { jsonEqual } from '../common/json.ts';
import { formatTime } from '../kube/time.ts';
import { DEFAULT_WARN_PERCENT, nearlyFull, projectFullAt } from './storage.ts';
import { getCondition, setCondition } from './conditions.ts';
import { endpointUrl, podName, pvcName } from './desired.ts';
import { type StatusInput, DEFAULT_COUNTERS_MIN_INTERVAL_MS } from './status-input.ts';
import { timeString, prune, statusChanged, truncate, type Facts, facts } from './status-facts.ts';
import { type Decided, T, F, U, health, stalled, reconciling, recovered, driftCondition } from './status-conditions.ts';

export { DEFAULT_COUNTERS_MIN_INTERVAL_MS, DEFAULT_CRASH_LOOP_STALL_RESTARTS, DEFAULT_POLL_TIMEOUTS_TOLERATED, pollTimeoutTolerated } from './status-input.ts';
export type { LiveMeta, LivePvc, ContainerStateTerminated, ContainerState, LiveContainerStatus, LivePod, LiveService, DriftInput, StatusOptions, StatusInput } from './status-input.ts';
export { prune, statusChanged } from './status-facts.ts';

// ---------------------------------------------------------------------------
// Structured status
// ---------------------------------------------------------------------------

function recoveryStatus(input: StatusInput, f: Facts): RecoveryStatus | undefined {
  const old = f.old?.recovery;
  const rec = f.recovery;
  let next: RecoveryStatus | undefined = old ? { ...old } : undefined;
  if (rec) {
    const r = rec.report;
    const startMs = Date.parse(r.startedAt);
    const at = Number.isFinite(startMs) ? formatTime(new Date(startMs + r.durationMs)) : formatTime(input.now);
    const durationMs = Math.round(r.durationMs);
    const entry: RecoveryHistoryEntry = {
      bootId: rec.bootId,
      outcome: r.outcome,
      at,
      durationMs,
      recordsRecovered: r.recordsRecovered,
      bytesTruncated: r.bytesTruncated,
      ...(r.corruption ? { corruptionId: r.corruption.id } : {}),
    };
    const history = [...(old?.history ?? [])];
    const i = history.findIndex((h) => h.bootId === rec.bootId);
    if (i >= 0) history[i] = entry;
    else history.unshift(entry);
    next = {
      lastOutcome: r.outcome,
      at,
      durationMs,
      recordsRecovered: r.recordsRecovered,
      bytesTruncated: r.bytesTruncated,
      ...(r.corruption ? { corruption: { ...r.corruption } } : {}),
      history: history.slice(0, MAX_RECOVERY_HISTORY),
      ...(old?.repair ? { repair: old.repair } : {}),
    };
  }
  if (input.repair) next = { ...(next ?? {}), repair: input.repair };
  return next;
}

function driftStatus(input: StatusInput, f: Facts, nowStr: string): DriftStatus {
  const old = f.old?.drift;
  const items = input.drift?.items ?? [];
  const key = (i: { kind: string; name: string; path: string }) => `${i.kind}\u0000${i.name}\u0000${i.path}`;
  const oldByKey = new Map((old?.items ?? []).map((i) => [key(i), i]));
  const anyNew = items.some((i) => !oldByKey.has(key(i)));
  const out: DriftStatus = { detected: false };
  const lastDetectedAt = items.length > 0 && anyNew ? nowStr : old?.lastDetectedAt;
  if (input.drift?.outcome === 'corrected' && items.length > 0) {
    out.lastDetectedAt = lastDetectedAt;
    out.lastCorrectedAt = nowStr;
    out.corrections = (old?.corrections ?? 0) + items.length;
    return out;
  }
  if (items.length > 0) {
    out.detected = true;
    out.items = items.slice(0, MAX_DRIFT_ITEMS).map(
      (i): DriftItem => ({ kind: i.kind, name: i.name, path: i.path, expected: i.expected, actual: i.actual, firstSeen: oldByKey.get(key(i))?.firstSeen ?? nowStr }),
    );
  }
  out.lastDetectedAt = lastDetectedAt;
  out.lastCorrectedAt = old?.lastCorrectedAt;
  out.corrections = old?.corrections;
  return out;
}

function podStatus(input: StatusInput, f: Facts): PodStatus {
  const pod = input.pod;
  if (!pod) return { name: podName(input.evl) };
  const c = f.container;
  const server = input.server?.ok ? input.server.status : undefined;
  const sameOld = f.old?.pod?.uid !== undefined && f.old.pod.uid === pod.metadata.uid ? f.old.pod : undefined;
  const t = f.lastTerminated;
  return {
    name: pod.metadata.name,
    uid: pod.metadata.uid,
    phase: pod.status?.phase,
    ready: f.podReady,
    restarts: c?.restartCount ?? 0,
    bootId: server?.bootId ?? sameOld?.bootId,
    // Without an answer from the server, the same container run keeps the time the server
    // reported (the kubelet's differs in format): a failed poll alone changes nothing here.
    startedAt: server?.startedAt ?? (sameOld?.restarts === (c?.restartCount ?? 0) ? sameOld?.startedAt : undefined) ?? timeString(c?.state?.running?.startedAt) ?? sameOld?.startedAt,
    ip: pod.status?.podIP,
    lastTermination: t
      ? {
          exitCode: t.exitCode,
          signal: t.signal,
          reason: t.reason,
          message: t.message !== undefined ? truncate(t.message, 4096) : undefined,
          finishedAt: timeString(t.finishedAt),
        }
      : undefined,
  };
}

/** status.storage without the usage figures (those are counters: see `counters`). */
function storageStatus(input: StatusInput, f: Facts): StorageStatus {
  const pvc = input.pvc;
  const old = input.evl.status?.storage;
  const growth = input.growth ? [input.growth, ...(old?.growth ?? [])].slice(0, MAX_GROWTH_HISTORY) : old?.growth;
  const base: StorageStatus = pvc
    ? {
        pvcName: pvc.metadata.name,
        storageClassName: pvc.spec?.storageClassName,
        phase: pvc.status?.phase,
        requested: pvc.spec?.resources?.requests?.storage,
        capacity: pvc.status?.capacity?.storage,
        resizing: f.resizeWanted || f.resize !== undefined,
        resizeStatus: f.resize,
      }
    : { pvcName: pvcName(input.evl) };
  const warn = nearlyFull(old, f.usage, input.options?.storageWarningPercent ?? DEFAULT_WARN_PERCENT);
  return { ...base, ...(warn || old?.nearlyFull !== undefined ? { nearlyFull: warn } : {}), ...(growth ? { growth } : {}) };
}

/** The usage figures of status.storage (counters: written at a bounded rate). */
type StorageUsageFields = Pick<StorageStatus, 'filesystemBytes' | 'usedBytes' | 'availableBytes' | 'usedPercent' | 'reserveBytes' | 'projectedFullAt'>;
const USAGE_KEYS = ['filesystemBytes', 'usedBytes', 'availableBytes', 'usedPercent', 'reserveBytes', 'projectedFullAt'] as const;

function usageFields(input: StatusInput, f: Facts): StorageUsageFields | undefined {
  if (!f.usage) return undefined;
  const full = projectFullAt(input.usageSamples ?? [], f.usage);
  return prune({ ...f.usage, projectedFullAt: full ? formatTime(full) : undefined });
}

function oldUsage(old: StorageStatus | undefined): StorageUsageFields | undefined {
  if (!old || old.usedBytes === undefined) return undefined;
  const out: Record<string, unknown> = {};
  for (const k of USAGE_KEYS) if (old[k] !== undefined) out[k] = old[k];
  return out as StorageUsageFields;
}

function phaseOf(f: Facts, ready: Decided, stall: Decided, input: StatusInput): Phase {
  if (f.deleting) return Phase.Terminating;
  if (f.suspended) return Phase.Suspended;
  if (stall.status === T) return Phase.Stalled;
  if (ready.status === T) return Phase.Ready;
  if (ready.reason === ReadyReason.Recovering) return Phase.Recovering;
  const wasReady = f.old?.phase === Phase.Ready || f.old?.phase === Phase.Degraded || getCondition(f.old?.conditions, ConditionType.Ready)?.status === T;
  if (wasReady) return Phase.Degraded;
  if (!input.pvc && !input.pod && !input.service) return Phase.Pending;
  return Phase.Provisioning;
}

function logFigures(input: StatusInput): LogStats | undefined {
  const server = input.server?.ok ? input.server.status : undefined;
  if (!server) return undefined;
  return prune({
    records: server.stats.total,
    bytes: server.stats.bytes,
    lastSequence: server.stats.lastSequence,
    firstSequence: server.retention?.firstSequence,
    removedBytes: server.retention?.removedBytes,
  });
}

const withoutTime = <T extends { updatedAt?: string }>(v: T | undefined): Omit<T, 'updatedAt'> | undefined => {
  if (!v) return undefined;
  const { updatedAt: _, ...rest } = v;
  return rest;
};

/**
 * The counters (status.log and the usage figures of status.storage) to write: the new
 * figures when they changed and either something else changes in this write anyway or
 * `countersMinIntervalMs` passed since they were last written; otherwise the old ones.
 */
function counters(input: StatusInput, f: Facts, rest: EventLogStatus, nowStr: string): { log?: LogStats; usage?: StorageUsageFields & { updatedAt?: string } } {
  const old = input.evl.status;
  const oldLog = old?.log;
  const oldUse = oldUsage(old?.storage);
  const keep = { ...(oldLog ? { log: oldLog } : {}), ...(oldUse ? { usage: { ...oldUse, ...(old?.storage?.updatedAt ? { updatedAt: old.storage.updatedAt } : {}) } } : {}) };
  const log = logFigures(input) ?? withoutTime(oldLog);
  const usage = usageFields(input, f) ?? oldUse;
  const same = jsonEqual(log, withoutTime(oldLog)) && jsonEqual(usage, oldUse);
  if (same) return keep;
  const fresh = { ...(log ? { log: { ...log, updatedAt: nowStr } } : {}), ...(usage ? { usage: { ...usage, updatedAt: nowStr } } : {}) };
  // Something else changed: this write happens anyway, bring the counters along.
  if (statusChanged(old, withCounters(rest, keep))) return fresh;
  return countersDueIn(input, old) === 0 ? fresh : keep;
}

function withCounters(rest: EventLogStatus, c: { log?: LogStats; usage?: StorageUsageFields & { updatedAt?: string } }): EventLogStatus {
  return prune({ ...rest, ...(c.log ? { log: c.log } : {}), storage: { ...rest.storage, ...(c.usage ?? {}) } });
}

/** Milliseconds until counters last written in `status` may be written again (0: now). */
function countersDueIn(input: StatusInput, status: EventLogStatus | undefined): number {
  const interval = input.options?.countersMinIntervalMs ?? DEFAULT_COUNTERS_MIN_INTERVAL_MS;
  const times = [status?.log?.updatedAt, status?.storage?.updatedAt].filter((t): t is string => t !== undefined).map((t) => Date.parse(t));
  if (times.length === 0 || times.some((t) => !Number.isFinite(t))) return 0;
  return Math.max(0, Math.min(...times) + interval - input.now.getTime());
}

/**
 * Milliseconds until changed counters alone will be written (for `requeueAfter`), or
 * undefined when the counters are current (or unknown).
 */
export function countersRefreshDueIn(input: StatusInput, status: EventLogStatus): number | undefined {
  const log = logFigures(input);
  if (!log || !status.log) return undefined;
  const usage = usageFields(input, facts(input));
  if (jsonEqual(log, withoutTime(status.log)) && (usage === undefined || jsonEqual(usage, oldUsage(status.storage)))) return undefined;
  return countersDueIn(input, status);
}

/** The new status (see the module doc). */
export function computeStatus(input: StatusInput): EventLogStatus {
  const f = facts(input);
  const nowStr = formatTime(input.now);
  const gen = f.generation;

  const h = health(input, f);
  const stall = stalled(input, f);
  const rec = reconciling(input, f, stall, h);
  // kstatus: Ready=True only when converged (not Reconciling, not Stalled).
  let ready: Decided = h;
  if (h.status === T && stall.status === T) ready = { status: F, reason: ReadyReason.Stalled, message: `the log serves events, but: ${stall.message}` };
  else if (h.status === T && rec.status === T) ready = { status: F, reason: ReadyReason.Progressing, message: `the log serves events; ${rec.message}` };

  let conditions: Condition[] = [...(f.old?.conditions ?? [])];
  const put = (type: string, d: Decided) => {
    conditions = setCondition(conditions, { type, ...d, ...(gen !== undefined ? { observedGeneration: gen } : {}) }, input.now);
  };
  put(ConditionType.Ready, ready);
  put(ConditionType.Reconciling, rec);
  put(ConditionType.Stalled, stall);
  const recov = recovered(f, input.server);
  const prevRecovered = getCondition(f.old?.conditions, ConditionType.Recovered);
  if (recov) put(ConditionType.Recovered, recov);
  else if (prevRecovered) put(ConditionType.Recovered, { status: prevRecovered.status, reason: prevRecovered.reason, message: prevRecovered.message });
  else put(ConditionType.Recovered, { status: U, reason: RecoveredReason.RecoveryPending, message: 'the log server has not reported a recovery yet' });
  put(ConditionType.Drifted, driftCondition(input, f));

  const rest: EventLogStatus = prune({
    observedGeneration: gen,
    conditions,
    phase: phaseOf(f, ready, stall, input),
    endpoint: input.service ? endpointUrl(input.evl, { port: input.options?.port }) : undefined,
    tokenSecret: input.tokenSecret ? { ...input.tokenSecret } : undefined,
    pod: podStatus(input, f),
    storage: storageStatus(input, f),
    recovery: recoveryStatus(input, f),
    drift: driftStatus(input, f, nowStr),
    rollout: input.rollout?.status ?? f.old?.rollout,
  });
  return withCounters(rest, counters(input, f, rest, nowStr));
}

