/**
 * The operator's own EventLog gauges on `/metrics`, set from the status the reconciler
 * computed (and wrote), so alerts and dashboards read the same facts as `kubectl get evl`:
 *
 *   eventlog_info{namespace,name,phase}              gauge 1 (one series per EventLog; phase = status.phase)
 *   eventlog_ready{namespace,name}                   gauge 1 if Ready=True else 0
 *   eventlog_stalled{namespace,name}                 gauge 1 if Stalled=True else 0
 *   eventlog_records{namespace,name}                 gauge status.log.records
 *   eventlog_bytes{namespace,name}                   gauge status.log.bytes
 *   eventlog_drift_items{namespace,name}             gauge drift items present now
 *   eventlog_drift_corrections{namespace,name}       gauge status.drift.corrections (lifetime, from status)
 *   eventlog_storage_capacity_bytes{namespace,name}  gauge status.storage.capacity in bytes
 *   eventlog_storage_resizing{namespace,name}        gauge 1 while a PVC expansion is in progress
 *   eventlog_pod_template_outdated{namespace,name}   gauge 1 while the pod runs an older template (status.rollout.upToDate false)
 *   eventlog_rollout_in_progress{namespace,name}     gauge 1 while it holds a rollout slot (status.rollout.state RollingOut)
 *   eventlog_rollout_queued{namespace,name}          gauge 1 while it waits for a slot and its older pod serves
 *                                                    (Ready=False/Progressing only for the queue)
 *   eventlog_recoveries_total{outcome}               counter: recoveries (one per server boot) this
 *                                                    process saw appear in a status it wrote
 *   eventlog_status_polls_total{result}              counter: GET /status polls of log servers by
 *                                                    result (ok, or the PollError kind): the load
 *                                                    the operator puts on the log servers
 *
 * Guarantees
 * - `eventLogSamples` (pure) decides every value; the `EventLogMetrics` class only
 *   copies them into prom-client, so the unit tests cover the decisions.
 * - One series set per EventLog: a phase change replaces the `eventlog_info` series
 *   (the old phase label is removed, never left at 1); `forget()` (the EventLog is
 *   gone or finalized) removes every series of that EventLog.
 * - `eventlog_recoveries_total` counts each recovery once per process: a history entry
 *   (bootId) that is new compared with the previous status. A restarted operator reads
 *   the entries already in status as old, so it does not count them again (it starts
 *   from 0, like every Prometheus counter of a new process).
 * - Memoised per Registry, like RuntimeMetrics: any number of controllers can share one.
 *
 * Caveats
 * - Only the leader reconciles, so only the leader exports these gauges; followers show
 *   none. Aggregate with max/sum by (namespace, name) across replicas.
 * - Values move when status does: records/bytes at status.log's bounded rate
 *   (`--status-counter-interval`), not per append.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { ConditionStatus, ConditionType, ReadyReason, RecoveryOutcome, type EventLogStatus } from '../api/eventlog.ts';
import { PollError, type ServerObservation } from '../decisions/server-status.ts';
import { isQuantity, quantityToUnits } from '../kube/quantity.ts';
import { perRegistry } from '../runtime/metrics.ts';

/** Per-EventLog gauge values (undefined: no value known, the series is absent). */
export interface EventLogSamples {
  phase: string;
  ready: 0 | 1;
  stalled: 0 | 1;
  records?: number;
  bytes?: number;
  driftItems: number;
  driftCorrections: number;
  storageCapacityBytes?: number;
  storageResizing: 0 | 1;
  storageUsedBytes?: number;
  storageAvailableBytes?: number;
  storageUsedPercent?: number;
  storageNearlyFull: 0 | 1;
  /** Ready=False/StorageFull: appends are refused for space. */
  storageFull: 0 | 1;
  /** status.storage.projectedFullAt as Unix seconds. */
  storageProjectedFullSeconds?: number;
  /** The pod runs an older template (status.rollout.upToDate false). */
  podTemplateOutdated: 0 | 1;
  /** It holds a rollout slot (status.rollout.state RollingOut). */
  rolloutInProgress: 0 | 1;
  /** It waits for a rollout slot while its (older) pod serves events: Ready=False only for that. */
  rolloutQueued: 0 | 1;
}

const readyReason = (status: EventLogStatus | undefined): string | undefined => status?.conditions?.find((c) => c.type === ConditionType.Ready)?.reason;

const isTrue = (status: EventLogStatus | undefined, type: string): 0 | 1 =>
  status?.conditions?.some((c) => c.type === type && c.status === ConditionStatus.True) ? 1 : 0;

function bytesOf(q: string | undefined): number | undefined {
  if (q === undefined || !isQuantity(q)) return undefined;
  return Number(quantityToUnits(q));
}

/** The gauge values for one EventLog's status (pure). */
export function eventLogSamples(status: EventLogStatus | undefined): EventLogSamples {
  const s: EventLogSamples = {
    phase: status?.phase ?? 'Unknown',
    ready: isTrue(status, ConditionType.Ready),
    stalled: isTrue(status, ConditionType.Stalled),
    driftItems: status?.drift?.items?.length ?? 0,
    driftCorrections: status?.drift?.corrections ?? 0,
    storageResizing: status?.storage?.resizing ? 1 : 0,
    storageNearlyFull: status?.storage?.nearlyFull ? 1 : 0,
    storageFull: status?.conditions?.some((c) => c.type === ConditionType.Ready && c.reason === 'StorageFull') ? 1 : 0,
    podTemplateOutdated: status?.rollout?.upToDate === false ? 1 : 0,
    rolloutInProgress: status?.rollout?.state === 'RollingOut' ? 1 : 0,
    rolloutQueued: status?.rollout?.state === 'Queued' && readyReason(status) === ReadyReason.Progressing ? 1 : 0,
  };
  const st = status?.storage;
  if (st?.usedBytes !== undefined) s.storageUsedBytes = st.usedBytes;
  if (st?.availableBytes !== undefined) s.storageAvailableBytes = st.availableBytes;
  if (st?.usedPercent !== undefined) s.storageUsedPercent = st.usedPercent;
  if (st?.projectedFullAt !== undefined) s.storageProjectedFullSeconds = Math.floor(Date.parse(st.projectedFullAt) / 1000);
  if (status?.log?.records !== undefined) s.records = status.log.records;
  if (status?.log?.bytes !== undefined) s.bytes = status.log.bytes;
  const capacity = bytesOf(status?.storage?.capacity);
  if (capacity !== undefined) s.storageCapacityBytes = capacity;
  return s;
}

/**
 * Recovery outcomes that are new in `next` compared with `old` (by bootId), oldest
 * first (pure). An entry whose outcome changed within the same boot (a repair re-ran
 * recovery) is not counted again.
 */
export function newRecoveries(old: EventLogStatus | undefined, next: EventLogStatus): string[] {
  const seen = new Set((old?.recovery?.history ?? []).map((h) => h.bootId));
  return (next.recovery?.history ?? [])
    .filter((h) => !seen.has(h.bootId))
    .map((h) => h.outcome)
    .reverse();
}

/** What the reconciler calls; tests may pass a recorder instead of prom-client. */
export interface EventLogMetricsSink {
  /** The status now stored for namespace/name (`old`: the one it replaced). */
  observe(namespace: string, name: string, status: EventLogStatus, old: EventLogStatus | undefined): void;
  /** The EventLog is gone (or finalized): drop its series. */
  forget(namespace: string, name: string): void;
}

export class EventLogMetrics implements EventLogMetricsSink {
  readonly info: Gauge<'namespace' | 'name' | 'phase'>;
  readonly ready: Gauge<'namespace' | 'name'>;
  readonly stalled: Gauge<'namespace' | 'name'>;
  readonly records: Gauge<'namespace' | 'name'>;
  readonly bytes: Gauge<'namespace' | 'name'>;
  readonly driftItems: Gauge<'namespace' | 'name'>;
  readonly driftCorrections: Gauge<'namespace' | 'name'>;
  readonly storageCapacity: Gauge<'namespace' | 'name'>;
  readonly storageResizing: Gauge<'namespace' | 'name'>;
  readonly storageUsed: Gauge<'namespace' | 'name'>;
  readonly storageAvailable: Gauge<'namespace' | 'name'>;
  readonly storageUsedPercent: Gauge<'namespace' | 'name'>;
  readonly storageNearlyFull: Gauge<'namespace' | 'name'>;
  readonly storageFull: Gauge<'namespace' | 'name'>;
  readonly storageProjectedFull: Gauge<'namespace' | 'name'>;
  readonly storageGrowths: Counter<'namespace' | 'name'>;
  readonly podTemplateOutdated: Gauge<'namespace' | 'name'>;
  readonly rolloutInProgress: Gauge<'namespace' | 'name'>;
  readonly rolloutQueued: Gauge<'namespace' | 'name'>;
  readonly recoveries: Counter<'outcome'>;
  readonly polls: Counter<'result'>;
  /** The phase label currently exported per `namespace/name`, to remove it on change. */
  readonly #phases = new Map<string, string>();

  /** The metrics registered on `registry` (created on first use). */
  static readonly for: (registry: Registry) => EventLogMetrics = perRegistry((registry) => new EventLogMetrics(registry));

  private constructor(registry: Registry) {
    const registers = [registry];
    const labelNames = ['namespace', 'name'] as const;
    const gauge = (name: string, help: string) => new Gauge({ name, help, labelNames, registers });
    this.info = new Gauge({ name: 'eventlog_info', help: 'One series per EventLog the operator manages; phase is status.phase', labelNames: ['namespace', 'name', 'phase'], registers });
    this.ready = gauge('eventlog_ready', 'Whether the EventLog is Ready (condition Ready=True)');
    this.stalled = gauge('eventlog_stalled', 'Whether the EventLog is Stalled and needs a human (condition Stalled=True)');
    this.records = gauge('eventlog_records', 'Records in the log (status.log.records, refreshed at a bounded rate)');
    this.bytes = gauge('eventlog_bytes', 'Bytes the log occupies on disk (status.log.bytes, refreshed at a bounded rate)');
    this.driftItems = gauge('eventlog_drift_items', 'Fields of owned objects that differ from what the operator set, now');
    this.driftCorrections = gauge('eventlog_drift_corrections', 'Drift corrections made for the EventLog over its life (status.drift.corrections)');
    this.storageCapacity = gauge('eventlog_storage_capacity_bytes', 'Capacity of the bound volume (status.storage.capacity)');
    this.storageResizing = gauge('eventlog_storage_resizing', 'Whether an expansion of the PVC is in progress (a larger spec.storage.size or autoGrow)');
    this.storageUsed = gauge('eventlog_storage_used_bytes', "Bytes used on the log's file system (status.storage.usedBytes, refreshed at a bounded rate)");
    this.storageAvailable = gauge('eventlog_storage_available_bytes', "Bytes available on the log's file system (status.storage.availableBytes)");
    this.storageUsedPercent = gauge('eventlog_storage_used_percent', "Percent of the log's file system in use (status.storage.usedPercent)");
    this.storageNearlyFull = gauge('eventlog_storage_nearly_full', 'Whether usedPercent reached --storage-warning-percent (status.storage.nearlyFull)');
    this.storageFull = gauge('eventlog_storage_full', 'Whether the log refuses appends for space (Ready=False/StorageFull)');
    this.storageProjectedFull = gauge('eventlog_storage_projected_full_timestamp_seconds', 'When the volume will be full at the recent growth rate (status.storage.projectedFullAt); absent when not growing');
    this.podTemplateOutdated = gauge('eventlog_pod_template_outdated', 'Whether the log pod runs an older template than the operator wants now (status.rollout.upToDate false: queued or rolling)');
    this.rolloutQueued = gauge('eventlog_rollout_queued', 'Whether the EventLog waits for a rollout slot while its older pod serves events (status.rollout.state Queued, Ready=False/Progressing)');
    this.rolloutInProgress = gauge('eventlog_rollout_in_progress', 'Whether the EventLog holds a rollout slot: its pod is being replaced with the current template (status.rollout.state RollingOut)');
    this.storageGrowths = new Counter({ name: 'eventlog_storage_growths_total', help: 'PVC expansions asked for by autoGrow, seen by this operator process', labelNames, registers });
    this.recoveries = new Counter({ name: 'eventlog_recoveries_total', help: 'Start-up recoveries of log servers seen by this operator process, by outcome', labelNames: ['outcome'], registers });
    for (const outcome of Object.values(RecoveryOutcome)) this.recoveries.inc({ outcome }, 0);
    this.polls = new Counter({ name: 'eventlog_status_polls_total', help: 'GET /status polls of log servers by this operator process, by result (ok or the failure kind)', labelNames: ['result'], registers });
    for (const result of ['ok', ...Object.values(PollError)]) this.polls.inc({ result }, 0);
  }

  /** One poll of a log server and how it went. */
  countPoll(observation: ServerObservation): void {
    this.polls.inc({ result: observation.ok ? 'ok' : observation.error });
  }

  observe(namespace: string, name: string, status: EventLogStatus, old: EventLogStatus | undefined): void {
    const labels = { namespace, name };
    const s = eventLogSamples(status);
    const key = `${namespace}/${name}`;
    const prevPhase = this.#phases.get(key);
    if (prevPhase !== undefined && prevPhase !== s.phase) this.info.remove({ ...labels, phase: prevPhase });
    this.#phases.set(key, s.phase);
    this.info.set({ ...labels, phase: s.phase }, 1);
    this.ready.set(labels, s.ready);
    this.stalled.set(labels, s.stalled);
    const optional = (g: Gauge<'namespace' | 'name'>, v: number | undefined) => (v === undefined ? g.remove(labels) : g.set(labels, v));
    optional(this.records, s.records);
    optional(this.bytes, s.bytes);
    this.driftItems.set(labels, s.driftItems);
    this.driftCorrections.set(labels, s.driftCorrections);
    optional(this.storageCapacity, s.storageCapacityBytes);
    this.storageResizing.set(labels, s.storageResizing);
    optional(this.storageUsed, s.storageUsedBytes);
    optional(this.storageAvailable, s.storageAvailableBytes);
    optional(this.storageUsedPercent, s.storageUsedPercent);
    this.storageNearlyFull.set(labels, s.storageNearlyFull);
    this.storageFull.set(labels, s.storageFull);
    optional(this.storageProjectedFull, s.storageProjectedFullSeconds);
    this.podTemplateOutdated.set(labels, s.podTemplateOutdated);
    this.rolloutInProgress.set(labels, s.rolloutInProgress);
    this.rolloutQueued.set(labels, s.rolloutQueued);
    const grew = (status.storage?.growth?.length ?? 0) > 0 && status.storage?.growth?.[0]?.at !== old?.storage?.growth?.[0]?.at;
    if (grew) this.storageGrowths.inc(labels);
    for (const outcome of newRecoveries(old, status)) this.recoveries.inc({ outcome });
  }

  forget(namespace: string, name: string): void {
    const labels = { namespace, name };
    const key = `${namespace}/${name}`;
    const phase = this.#phases.get(key);
    if (phase !== undefined) this.info.remove({ ...labels, phase });
    this.#phases.delete(key);
    for (const g of [this.ready, this.stalled, this.records, this.bytes, this.driftItems, this.driftCorrections, this.storageCapacity, this.storageResizing, this.storageUsed, this.storageAvailable, this.storageUsedPercent, this.storageNearlyFull, this.storageFull, this.storageProjectedFull, this.podTemplateOutdated, this.rolloutInProgress, this.rolloutQueued]) g.remove(labels);
    this.storageGrowths.remove(labels);
  }
}
