/**
 * The EventLog gauges: the pure sample/recovery decisions, and that the prom-client
 * series follow a status (phase label replaced, series dropped on forget).
 */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { EventLogStatus } from '../../../src/api/eventlog.ts';
import { EventLogMetrics, eventLogSamples, newRecoveries } from '../../../src/operator/eventlog-metrics.ts';

const t = '2026-01-01T00:00:00Z';
const cond = (type: string, status: 'True' | 'False') => ({ type, status, reason: 'R', message: 'm', lastTransitionTime: t, observedGeneration: 1 });
const entry = (bootId: string, outcome: string) => ({ bootId, outcome, at: t, durationMs: 1, recordsRecovered: 0, bytesTruncated: 0 });

function readyStatus(): EventLogStatus {
  return {
    observedGeneration: 1,
    phase: 'Ready',
    conditions: [cond('Ready', 'True'), cond('Stalled', 'False')],
    storage: { pvcName: 'orders-data', requested: '64Mi', capacity: '64Mi', resizing: false },
    log: { records: 12, bytes: 3456, lastSequence: 12, updatedAt: t },
    drift: { detected: true, items: [{ kind: 'Service', name: 'orders', path: 'metadata.labels.app', firstSeen: t }], corrections: 3 },
    recovery: { lastOutcome: 'Clean', history: [entry('b1', 'Clean')] },
  } as EventLogStatus;
}

describe('eventLogSamples', () => {
  it('reads ready, stalled, counters, drift and storage from the status', () => {
    expect(eventLogSamples(readyStatus())).toEqual({
      phase: 'Ready',
      ready: 1,
      stalled: 0,
      records: 12,
      bytes: 3456,
      driftItems: 1,
      driftCorrections: 3,
      storageCapacityBytes: 64 * 1024 * 1024,
      storageResizing: 0,
      storageNearlyFull: 0,
      storageFull: 0,
      podTemplateOutdated: 0,
      rolloutInProgress: 0,
      rolloutQueued: 0,
    });
  });

  it('has no counters or capacity before they are known, and Unknown phase without a status', () => {
    expect(eventLogSamples(undefined)).toEqual({ phase: 'Unknown', ready: 0, stalled: 0, driftItems: 0, driftCorrections: 0, storageResizing: 0, storageNearlyFull: 0, storageFull: 0, podTemplateOutdated: 0, rolloutInProgress: 0, rolloutQueued: 0 });
    const s = eventLogSamples({ phase: 'Stalled', conditions: [cond('Ready', 'False'), cond('Stalled', 'True')], storage: { resizing: true, capacity: 'not-a-quantity' } } as EventLogStatus);
    expect(s).toMatchObject({ phase: 'Stalled', ready: 0, stalled: 1, storageResizing: 1 });
    expect(s.storageCapacityBytes).toBeUndefined();
  });
});

describe('eventLogSamples: rollout gauges', () => {
  const withReady = (status: 'True' | 'False', reason: string) => ({ ...readyStatus(), conditions: [{ ...cond('Ready', status), reason }] }) as EventLogStatus;
  const rollout = (state: string, upToDate: boolean, base: EventLogStatus = readyStatus()) => eventLogSamples({ ...base, rollout: { state, desired: 'b', current: 'a', upToDate, since: t } } as EventLogStatus);

  it('reads outdated and in progress from status.rollout', () => {
    expect(rollout('Queued', false)).toMatchObject({ podTemplateOutdated: 1, rolloutInProgress: 0 });
    expect(rollout('RollingOut', false)).toMatchObject({ podTemplateOutdated: 1, rolloutInProgress: 1, rolloutQueued: 0 });
    expect(rollout('UpToDate', true)).toMatchObject({ podTemplateOutdated: 0, rolloutInProgress: 0, rolloutQueued: 0 });
  });

  it('counts a queued EventLog as queued only while its older pod serves (Ready=False/Progressing), so a queued log that is down still alerts', () => {
    expect(rollout('Queued', false, withReady('False', 'Progressing'))).toMatchObject({ rolloutQueued: 1, ready: 0 });
    expect(rollout('Queued', false, withReady('False', 'ServerNotReady'))).toMatchObject({ rolloutQueued: 0, ready: 0 });
    expect(rollout('RollingOut', false, withReady('False', 'Progressing'))).toMatchObject({ rolloutQueued: 0 });
  });
});

describe('newRecoveries', () => {

  it('counts history entries with a bootId the old status did not have, oldest first', () => {
    const old = readyStatus();
    const next = { ...old, recovery: { history: [entry('b3', 'CorruptionDetected'), entry('b2', 'TornTailTruncated'), entry('b1', 'Clean')] } } as EventLogStatus;
    expect(newRecoveries(old, next)).toEqual(['TornTailTruncated', 'CorruptionDetected']);
    expect(newRecoveries(undefined, old)).toEqual(['Clean']);
  });
  it('does not count a boot again when its outcome changes (repair) or nothing changed', () => {
    const old = readyStatus();
    expect(newRecoveries(old, old)).toEqual([]);
    expect(newRecoveries(old, { ...old, recovery: { history: [entry('b1', 'Repaired')] } } as EventLogStatus)).toEqual([]);
  });
});

describe('EventLogMetrics', () => {
  it('exports the series of a status, replaces the phase series, and drops everything on forget', async () => {
    const registry = new Registry();
    const m = EventLogMetrics.for(registry);
    expect(EventLogMetrics.for(registry)).toBe(m);
    const provisioning = { phase: 'Provisioning', conditions: [cond('Ready', 'False')] } as EventLogStatus;
    m.observe('shop', 'orders', provisioning, undefined);
    m.observe('shop', 'orders', readyStatus(), provisioning);
    m.observe('shop', 'other', provisioning, undefined);
    const text = await registry.metrics();
    expect(text).toContain('eventlog_info{namespace="shop",name="orders",phase="Ready"} 1');
    expect(text).not.toContain('name="orders",phase="Provisioning"');
    expect(text).toContain('eventlog_info{namespace="shop",name="other",phase="Provisioning"} 1');
    expect(text).toContain('eventlog_ready{namespace="shop",name="orders"} 1');
    expect(text).toContain('eventlog_ready{namespace="shop",name="other"} 0');
    expect(text).toContain('eventlog_records{namespace="shop",name="orders"} 12');
    expect(text).not.toContain('eventlog_records{namespace="shop",name="other"}');
    expect(text).toContain('eventlog_bytes{namespace="shop",name="orders"} 3456');
    expect(text).toContain('eventlog_drift_items{namespace="shop",name="orders"} 1');
    expect(text).toContain(`eventlog_storage_capacity_bytes{namespace="shop",name="orders"} ${64 * 1024 * 1024}`);
    expect(text).toContain('eventlog_recoveries_total{outcome="Clean"} 1');
    expect(text).toContain('eventlog_recoveries_total{outcome="CorruptionDetected"} 0');

    m.forget('shop', 'orders');
    const after = await registry.metrics();
    expect(after).not.toMatch(/name="orders"/);
    expect(after).toContain('eventlog_info{namespace="shop",name="other",phase="Provisioning"} 1');
    // The counter is per process, not per EventLog: it stays.
    expect(after).toContain('eventlog_recoveries_total{outcome="Clean"} 1');
  });
});
