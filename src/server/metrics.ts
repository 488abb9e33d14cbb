/** Prometheus metrics on a private Registry (never the global one). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RecoveryReport } from '../storage/report.ts';
import type { CommitInfo, EventStore } from '../storage/store.ts';
import type { FollowerHub } from './follow.ts';

export interface ServerMetrics {
  registry: Registry;
  onCommit(info: CommitInfo): void;
  onRecovery(report: RecoveryReport): void;
  httpRequest(route: string, method: string, status: number): void;
}

const STATES = ['recovering', 'ready', 'full', 'corrupt', 'failed'] as const;
const OUTCOMES = ['Clean', 'TornTailTruncated', 'CorruptionDetected'] as const;

export function createMetrics(getStore: () => EventStore, getState: () => string, getFollowers?: () => FollowerHub): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'eventlog_server_' });
  const appends = new Counter({ name: 'eventlog_appends_total', help: 'Events appended (durable under the configured mode).', registers: [registry] });
  const bytes = new Counter({ name: 'eventlog_appended_bytes_total', help: 'Bytes appended to segments, framing included.', registers: [registry] });
  const commits = new Counter({ name: 'eventlog_commits_total', help: 'Group commits (one write + at most one fdatasync each).', registers: [registry] });
  const fsync = new Histogram({
    name: 'eventlog_fsync_duration_seconds',
    help: 'fdatasync latency.',
    buckets: [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const batch = new Histogram({
    name: 'eventlog_commit_batch_events',
    help: 'Events per group commit.',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096],
    registers: [registry],
  });
  // Counted in a plain map on the request path and folded into the counter at scrape time
  // (prom-client hashes the label set on every inc()).
  const httpCounts = new Map<string, { labels: { route: string; method: string; status: string }; n: number; reported: number }>();
  new Counter({
    name: 'eventlog_http_requests_total',
    help: 'HTTP requests by route, method and status.',
    labelNames: ['route', 'method', 'status'],
    registers: [registry],
    collect() {
      for (const e of httpCounts.values()) {
        if (e.n > e.reported) {
          this.inc(e.labels, e.n - e.reported);
          e.reported = e.n;
        }
      }
    },
  });
  new Gauge({
    name: 'eventlog_events',
    help: 'Events in the log.',
    registers: [registry],
    collect() {
      this.set(getStore().stats().total);
    },
  });
  new Gauge({
    name: 'eventlog_log_bytes',
    help: 'Bytes of stored events (payloads, UTF-8).',
    registers: [registry],
    collect() {
      this.set(getStore().stats().bytes);
    },
  });
  new Gauge({
    name: 'eventlog_state',
    help: '1 for the current server state.',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const s = getState();
      for (const st of STATES) this.set({ state: st }, st === s ? 1 : 0);
    },
  });
  // Storage and retention: read from the store at scrape time (no work on the append path).
  const storageGauge = (name: string, help: string, pick: (s: NonNullable<ReturnType<EventStore['storage']>>) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        const s = getStore().storage();
        if (s !== undefined) this.set(pick(s));
      },
    });
  storageGauge('eventlog_filesystem_size_bytes', 'Size of the filesystem holding the log (statfs).', (s) => s.filesystemBytes);
  storageGauge('eventlog_filesystem_free_bytes', 'Free bytes of that filesystem for unprivileged writers (statfs bavail * bsize).', (s) => s.freeBytes);
  storageGauge('eventlog_storage_reserve_bytes', 'Free bytes an append must leave; appends are refused (507) below.', (s) => s.reserveBytes);
  storageGauge('eventlog_side_file_bytes', 'Bytes under torn/ and repair/.', (s) => s.sideFileBytes);
  new Gauge({
    name: 'eventlog_first_sequence',
    help: 'First retained sequence (1 until retention removed events).',
    registers: [registry],
    collect() {
      this.set(getStore().firstSequence);
    },
  });
  // Counters mirroring totals the store keeps: add the difference at scrape time.
  const mirror = (name: string, help: string, value: () => number, labels?: Record<string, string>) => {
    let reported = 0;
    new Counter({
      name,
      help,
      labelNames: labels === undefined ? [] : Object.keys(labels),
      registers: [registry],
      collect() {
        const v = value();
        if (labels !== undefined && reported === 0 && v === 0) this.inc(labels, 0);
        if (v > reported) {
          if (labels === undefined) this.inc(v - reported);
          else this.inc(labels, v - reported);
          reported = v;
        }
      },
    });
  };
  if (getFollowers !== undefined) {
    new Gauge({
      name: 'eventlog_followers',
      help: 'Followers connected: open event streams (kind="stream") and waiting long polls (kind="poll").',
      labelNames: ['kind'],
      registers: [registry],
      collect() {
        const f = getFollowers();
        this.set({ kind: 'stream' }, f.streamCount);
        this.set({ kind: 'poll' }, f.pollCount);
      },
    });
    new Gauge({
      name: 'eventlog_followers_blocked',
      help: 'Event streams paused by backpressure: the consumer reads slower than the log grows (it lags; the server does not buffer for it).',
      registers: [registry],
      collect() {
        this.set(getFollowers().blockedCount);
      },
    });
    mirror('eventlog_events_streamed_total', 'Events written to event streams (GET /events/stream), all followers together.', () => getFollowers().eventsStreamed);
  }
  mirror('eventlog_retention_removed_bytes_total', 'Segment bytes deleted by retention.', () => getStore().retentionStatus().removedBytes);
  mirror('eventlog_retention_removed_segments_total', 'Sealed segments deleted by retention.', () => getStore().retentionStatus().removedSegments);
  mirror('eventlog_appends_refused_total', 'Appends refused, by reason.', () => getStore().space.refused, { reason: 'storage_full' });
  const recDuration = new Gauge({ name: 'eventlog_recovery_duration_seconds', help: 'Duration of the last start-up recovery.', registers: [registry] });
  const recBytes = new Gauge({ name: 'eventlog_recovery_bytes_scanned', help: 'Bytes scanned by the last recovery.', registers: [registry] });
  const recSegments = new Gauge({ name: 'eventlog_recovery_segments_scanned', help: 'Segments scanned by the last recovery.', registers: [registry] });
  const recRecords = new Gauge({ name: 'eventlog_recovery_records_recovered', help: 'Records recovered by the last recovery.', registers: [registry] });
  const recTruncated = new Gauge({ name: 'eventlog_recovery_bytes_truncated', help: 'Torn-tail bytes cut off (kept aside) by the last recovery.', registers: [registry] });
  const recOutcome = new Gauge({ name: 'eventlog_recovery_outcome', help: '1 for the outcome of the last recovery.', labelNames: ['outcome'], registers: [registry] });
  for (const o of OUTCOMES) recOutcome.set({ outcome: o }, 0);
  return {
    registry,
    onCommit(info) {
      if (info.events > 0) {
        appends.inc(info.events);
        bytes.inc(info.bytes);
        commits.inc();
        batch.observe(info.events);
      }
      if (info.fsyncSeconds !== undefined) fsync.observe(info.fsyncSeconds);
    },
    onRecovery(r) {
      recDuration.set(r.durationMs / 1000);
      recBytes.set(r.bytesScanned);
      recSegments.set(r.segmentsScanned);
      recRecords.set(r.recordsRecovered);
      recTruncated.set(r.bytesTruncated);
      for (const o of OUTCOMES) recOutcome.set({ outcome: o }, o === r.outcome ? 1 : 0);
    },
    httpRequest(route, method, status) {
      const key = `${status} ${method} ${route}`;
      const e = httpCounts.get(key);
      if (e !== undefined) e.n++;
      else httpCounts.set(key, { labels: { route, method, status: String(status) }, n: 1, reported: 0 });
    },
  };
}
