/**
 * The EventLog operator under change and failure, on the shared control plane with the
 * node agent running real log servers:
 * - growing spec.storage.size expands the PVC (and the agent's PV), and the status shows
 *   the resize while it runs and the new capacity after; the gauges follow;
 * - two operator instances on one Lease: only the leader reconciles; a stopped leader
 *   hands over and the other keeps reconciling;
 * - the operator as a child process, SIGKILLed while it creates several EventLogs and
 *   started again: every EventLog ends Ready with exactly one PVC, pod, Service and
 *   finalizer, and no Event twice; its /metrics shows the EventLog gauges, and a deleted
 *   EventLog's series go away.
 * (An API server restart needs a control plane of its own: operator-apiserver-restart.test.ts.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FINALIZER, type EventLogStatus } from '../../src/api/eventlog.ts';
import { KubeHttp } from '../../src/runtime/kube-http.ts';
import { watchResource, type KubeObject } from '../../src/runtime/watcher.ts';
import { ensureEventLogCrd, freshNamespace, kubeConfigFromInject, waitFor, type FreshNamespace } from './helpers.ts';
import { cond, EventLogApi, metricValue, spawnOperator, startInProcessOperator, type ChildOperator, type Evl, type InProcessOperator, type Obj } from './operator-helpers.ts';

const MI = 1024 * 1024;
let kc: KubeConfig;
let http: KubeHttp;
const namespaces: FreshNamespace[] = [];
const operators: InProcessOperator[] = [];
const children: ChildOperator[] = [];
const logDir = mkdtempSync(join(tmpdir(), 'operator-resilience-'));

async function namespace(prefix: string): Promise<EventLogApi> {
  const ns = await freshNamespace(prefix, kc);
  namespaces.push(ns);
  return new EventLogApi(http, ns.name);
}

beforeAll(async () => {
  kc = kubeConfigFromInject();
  http = new KubeHttp(kc);
  await ensureEventLogCrd(kc);
});

afterAll(async () => {
  for (const c of children) {
    c.kill('SIGKILL');
    await c.exited;
  }
  await Promise.all(operators.map((o) => o.stop()));
  for (const ns of namespaces) await ns.cleanup();
  rmSync(logDir, { recursive: true, force: true });
});

describe('EventLog operator: storage growth', () => {
  it('expands the PVC when spec.storage.size grows, showing the resize in status until the new capacity is there', async () => {
    const api = await namespace('op-grow');
    const op = startInProcessOperator({ kc, namespaces: [api.ns], identity: 'grow' });
    operators.push(op);
    // The agent's volumes are real ext4 file systems, which this machine can only grow
    // offline: the operator restarts the pod once to let the resize finish.
    await api.create('grow', {}, { size: '16Mi', restartPodForResize: true });
    const before = await api.waitReady('grow');
    expect(before.status?.storage).toMatchObject({ requested: '16Mi', capacity: '16Mi', resizing: false });

    // Every status the API server stores, in order (a watch sees each write).
    const seen: EventLogStatus[] = [];
    const watcher = watchResource<KubeObject & { status?: EventLogStatus }>(kc, { group: 'eventlog.dev', version: 'v1alpha1', plural: 'eventlogs', namespace: api.ns }, { http });
    watcher.onUpdate((_old, now) => {
      if (now.status) seen.push(now.status);
    });
    watcher.start();
    try {
      await watcher.waitForSync(AbortSignal.timeout(30_000));
      const patched = await api.patchSpec('grow', { storage: { size: '48Mi' } });
      expect(patched.metadata.generation).toBe((before.metadata.generation ?? 0) + 1);

      const after = await waitFor(
        async () => {
          const e = await api.waitReady('grow');
          return e.status?.storage?.capacity === '48Mi' ? e : undefined;
        },
        { message: 'EventLog grow to be Ready with capacity 48Mi', timeoutMs: 120_000 },
      );
      expect(after.status?.storage).toMatchObject({ requested: '48Mi', capacity: '48Mi', resizing: false });
      expect(cond(after, 'Reconciling')?.status).toBe('False');

      const pvc = await api.get<Obj & { spec: { volumeName: string; resources: { requests: { storage: string } } }; status: { capacity: { storage: string } } }>(
        api.corePath('persistentvolumeclaims', 'grow-data'),
      );
      expect(pvc?.spec.resources.requests.storage).toBe('48Mi');
      expect(pvc?.status.capacity.storage).toBe('48Mi');
      const pv = await api.get<{ spec: { capacity: { storage: string } } }>(`/api/v1/persistentvolumes/${pvc!.spec.volumeName}`);
      expect(pv?.spec.capacity.storage).toBe('48Mi');

      // While the expansion ran, the status said so (operator writes it before the agent expands).
      const during = seen.find((s) => s.storage?.resizing === true);
      expect(during, `statuses seen: ${JSON.stringify(seen.map((s) => s.storage))}`).toBeDefined();
      expect(during?.conditions?.find((c) => c.type === 'Reconciling')).toMatchObject({ status: 'True', reason: 'ResizingStorage' });
      expect(during?.storage?.capacity).toBe('16Mi');

      const text = await op.metricsText();
      expect(metricValue(text, 'eventlog_storage_capacity_bytes', { namespace: api.ns, name: 'grow' })).toBe(48 * MI);
      expect(metricValue(text, 'eventlog_storage_resizing', { namespace: api.ns, name: 'grow' })).toBe(0);
      expect(metricValue(text, 'eventlog_ready', { namespace: api.ns, name: 'grow' })).toBe(1);
      expect(metricValue(text, 'eventlog_info', { namespace: api.ns, name: 'grow', phase: 'Ready' })).toBe(1);
    } finally {
      await watcher.stop();
      await api.deleteAll();
      await op.stop();
    }
  });
});

describe('EventLog operator: two instances', () => {
  it('only the Lease holder reconciles; when it stops, the other takes over and keeps reconciling', async () => {
    const api = await namespace('op-ha');
    const leaderElection = { namespace: api.ns, name: 'eventlog-operator', leaseDurationMs: 4_000, renewDeadlineMs: 3_000, retryPeriodMs: 500 };
    const a = startInProcessOperator({ kc, namespaces: [api.ns], identity: 'instance-a', leaderElection });
    operators.push(a);
    await waitFor(() => a.manager.isLeader(), { message: 'instance A to acquire the Lease', timeoutMs: 30_000 });
    const b = startInProcessOperator({ kc, namespaces: [api.ns], identity: 'instance-b', leaderElection });
    operators.push(b);
    await waitFor(async () => b.manager.probeUrl !== undefined && (await fetch(`${b.manager.probeUrl}/readyz`)).status === 200, { message: 'instance B to be ready (caches synced)', timeoutMs: 30_000 });

    await api.create('alpha');
    const alpha = await api.waitReady('alpha');
    expect(a.reconciled).toContain(`${api.ns}/alpha`);
    expect(b.manager.isLeader()).toBe(false);
    expect(b.reconciled).toEqual([]);
    // The gauge follows the stored status right after the write: wait for it, do not sample once.
    await waitFor(async () => metricValue(await a.metricsText(), 'eventlog_ready', { namespace: api.ns, name: 'alpha' }) === 1, { message: "instance A's eventlog_ready gauge for alpha", timeoutMs: 10_000 });
    expect(metricValue(await b.metricsText(), 'eventlog_ready', { namespace: api.ns, name: 'alpha' })).toBeUndefined();
    const lease = await api.get<{ spec: { holderIdentity?: string } }>(`/apis/coordination.k8s.io/v1/namespaces/${api.ns}/leases/eventlog-operator`);
    expect(lease?.spec.holderIdentity).toBe('instance-a');

    await a.stop();
    await waitFor(() => b.manager.isLeader(), { message: 'instance B to take over after A released the Lease', timeoutMs: 30_000 });
    // B reconciles what exists (from its warm cache) and what comes next.
    await waitFor(() => b.reconciled.includes(`${api.ns}/alpha`), { message: 'instance B to reconcile the existing EventLog', timeoutMs: 30_000 });
    await api.create('beta');
    await api.waitReady('beta');
    expect(b.reconciled).toContain(`${api.ns}/beta`);
    expect(a.reconciled).not.toContain(`${api.ns}/beta`);
    // The takeover did not disturb alpha: same pod, still Ready.
    const alphaNow = await api.waitReady('alpha');
    expect(alphaNow.status?.pod?.uid).toBe(alpha.status?.pod?.uid);
    await waitFor(async () => metricValue(await b.metricsText(), 'eventlog_ready', { namespace: api.ns, name: 'beta' }) === 1, { message: "instance B's eventlog_ready gauge for beta", timeoutMs: 10_000 });

    await api.deleteAll();
    await b.stop();
  });
});

describe('EventLog operator: killed mid-reconcile', () => {
  it('SIGKILL while creating several EventLogs, then a restart: each ends Ready with one PVC, pod, Service, finalizer and no duplicate Events', async () => {
    const api = await namespace('op-kill');
    const names = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5'];
    const args = [
      '--kubeconfig', inject('kubeconfigPath'),
      '--namespaces', api.ns,
      '--leader-elect', 'false',
      '--metrics-addr', '127.0.0.1:0',
      '--probe-addr', '127.0.0.1:0',
      '--poll-interval', '1s',
      '--log-level', 'debug',
    ];
    const first = spawnOperator(args, join(logDir, 'first.log'));
    children.push(first);
    await first.metricsUrl;
    for (const n of names) await api.create(n);

    // Kill as soon as it has started creating owned objects, while it is mid-way.
    await waitFor(async () => (await api.list(`${api.corePath('persistentvolumeclaims')}?labelSelector=app.kubernetes.io/managed-by%3Deventlog-operator`)).length > 0, {
      message: 'the operator to start creating PVCs',
      timeoutMs: 60_000,
      intervalMs: 50,
    });
    first.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    const atKill = await api.list<Evl>(api.evlPath());
    const readyAtKill = atKill.filter((e) => cond(e, 'Ready')?.status === 'True').length;
    // Otherwise this would not test a kill mid-reconcile.
    expect(readyAtKill).toBeLessThan(names.length);

    const second = spawnOperator(args, join(logDir, 'second.log'));
    children.push(second);
    const metricsUrl = await second.metricsUrl;
    const ready = new Map<string, Evl>();
    for (const n of names) ready.set(n, await api.waitReady(n, 180_000));

    const selector = (n: string) => `?labelSelector=${encodeURIComponent(`app.kubernetes.io/managed-by=eventlog-operator,app.kubernetes.io/instance=${n}`)}`;
    const events = await api.list<{ reason: string; note: string; regarding: { uid: string }; series?: { count: number } }>(`/apis/events.k8s.io/v1/namespaces/${api.ns}/events`);
    for (const n of names) {
      const e = ready.get(n)!;
      expect(e.metadata.finalizers?.filter((f) => f === FINALIZER)).toEqual([FINALIZER]);
      for (const plural of ['persistentvolumeclaims', 'pods', 'services']) {
        const objs = await api.list<Obj>(`${api.corePath(plural)}${selector(n)}`);
        expect(objs.map((o) => o.metadata.ownerReferences?.map((r) => r.uid)), `${plural} of ${n}`).toEqual([[e.metadata.uid]]);
      }
      // The recorder dedupes within one process; across the kill, a transition is recorded
      // once (after its status write), so no (reason, note) appears twice.
      const mine = events.filter((ev) => ev.regarding.uid === e.metadata.uid);
      const keys = mine.map((ev) => `${ev.reason}: ${ev.note}`);
      expect(new Set(keys).size, `Events of ${n}: ${JSON.stringify(keys)}`).toBe(keys.length);
      expect(mine.filter((ev) => ev.reason === 'Ready').length).toBeLessThanOrEqual(1);
    }
    expect(events.filter((ev) => ev.reason === 'Ready').length).toBeGreaterThan(0);

    // The gauges on the operator's /metrics, and a deleted EventLog's series dropping.
    const scrape = async () => (await fetch(`${metricsUrl}/metrics`)).text();
    const text = await waitFor(async () => {
      const t = await scrape();
      return names.every((n) => metricValue(t, 'eventlog_ready', { namespace: api.ns, name: n }) === 1) ? t : undefined;
    }, { message: 'eventlog_ready 1 for every EventLog on /metrics', timeoutMs: 30_000 });
    for (const n of names) {
      expect(metricValue(text, 'eventlog_info', { namespace: api.ns, name: n, phase: 'Ready' })).toBe(1);
      expect(metricValue(text, 'eventlog_stalled', { namespace: api.ns, name: n })).toBe(0);
      expect(metricValue(text, 'eventlog_drift_items', { namespace: api.ns, name: n })).toBe(0);
      expect(metricValue(text, 'eventlog_storage_capacity_bytes', { namespace: api.ns, name: n })).toBe(16 * MI);
    }
    // Recoveries this process saw appear: at least those of EventLogs without one at the kill.
    const unrecovered = atKill.filter((e) => (e.status?.recovery?.history?.length ?? 0) === 0).length;
    expect(unrecovered).toBeGreaterThan(0);
    expect(metricValue(text, 'eventlog_recoveries_total', { outcome: 'Clean' })).toBeGreaterThanOrEqual(unrecovered);
    expect(metricValue(text, 'eventlog_recoveries_total', { outcome: 'Clean' })).toBeLessThanOrEqual(names.length);
    expect(metricValue(text, 'controller_runtime_reconcile_total', { controller: 'eventlog', result: 'requeue_after' })).toBeGreaterThan(0);

    await api.http.json('DELETE', api.evlPath('k0'));
    await waitFor(async () => (await api.get(api.evlPath('k0'))) === undefined, { message: 'EventLog k0 to be finalized', timeoutMs: 60_000 });
    const afterDelete = await waitFor(async () => {
      const t = await scrape();
      return /name="k0"/.test(t) ? undefined : t;
    }, { message: 'the series of the deleted EventLog k0 to disappear from /metrics', timeoutMs: 30_000 });
    expect(metricValue(afterDelete, 'eventlog_ready', { namespace: api.ns, name: 'k1' })).toBe(1);

    await api.deleteAll();
    second.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });
  });
});
