/**
 * The controller manager (src/runtime/manager.ts) against the real API server, with
 * a recording reconcile function in place of the EventLog reconciler: keys come from
 * the primary and from owned objects (via their controller owner reference), caches
 * serve reads, /readyz and /metrics answer, only the leader reconciles, and a stopped
 * leader hands over.
 */
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/common/logger.ts';
import { KubeHttp } from '../../src/runtime/kube-http.ts';
import { Manager, type ControllerDefinition, type ManagerOptions } from '../../src/runtime/manager.ts';
import { Outcome } from '../../src/runtime/reconcile.ts';
import { ensureEventLogCrd, freshNamespace, kubeConfigFromInject, waitFor, type FreshNamespace } from './helpers.ts';

let kc: KubeConfig;
let ns: FreshNamespace;
const managers: Manager[] = [];

type Recorder = { keys: string[]; concurrent: number; maxConcurrentPerKey: number; sawInCache: Set<string> };

function recordingController(label: string, rec: Recorder): ControllerDefinition {
  const active = new Map<string, number>();
  return {
    name: `test-${label}`,
    primary: { group: 'eventlog.dev', version: 'v1alpha1', plural: 'eventlogs', apiVersion: 'eventlog.dev/v1alpha1', kind: 'EventLog' },
    owned: { configmaps: { version: 'v1', plural: 'configmaps', labelSelector: `manager-test=${label}` } },
    reconcile: async ({ namespace, name, caches }) => {
      const key = `${namespace}/${name}`;
      active.set(key, (active.get(key) ?? 0) + 1);
      rec.maxConcurrentPerKey = Math.max(rec.maxConcurrentPerKey, active.get(key)!);
      rec.keys.push(key);
      if (caches.primary.get(namespace, name)) rec.sawInCache.add(key);
      await new Promise((r) => setTimeout(r, 20));
      active.set(key, active.get(key)! - 1);
      return Outcome.done();
    },
  };
}

function newManager(def: ControllerDefinition, extra: Partial<ManagerOptions> = {}): Manager {
  const m = new Manager({
    kubeConfig: kc,
    controller: def,
    registry: new Registry(),
    log: silentLogger,
    namespaces: [ns.name],
    workers: 2,
    probe: { host: '127.0.0.1', port: 0 },
    metrics: { host: '127.0.0.1', port: 0 },
    shutdownTimeoutMs: 5_000,
    ...extra,
  });
  managers.push(m);
  return m;
}

async function createEventLog(name: string): Promise<KubernetesObject & { metadata: { uid: string } }> {
  const api = kc.makeApiClient(CustomObjectsApi);
  return (await api.createNamespacedCustomObject({
    group: 'eventlog.dev',
    version: 'v1alpha1',
    namespace: ns.name,
    plural: 'eventlogs',
    body: { apiVersion: 'eventlog.dev/v1alpha1', kind: 'EventLog', metadata: { name }, spec: { storage: { size: '1Gi' } } },
  })) as KubernetesObject & { metadata: { uid: string } };
}

beforeAll(async () => {
  kc = kubeConfigFromInject();
  await ensureEventLogCrd(kc);
  ns = await freshNamespace('manager');
});

afterAll(async () => {
  await Promise.all(managers.map((m) => m.stop()));
  await ns?.cleanup();
});

describe('controller manager', () => {
  it('reconciles primaries and owners of changed owned objects, reading from synced caches; serves /readyz and /metrics', async () => {
    const rec: Recorder = { keys: [], concurrent: 0, maxConcurrentPerKey: 0, sawInCache: new Set() };
    const m = newManager(recordingController('single', rec));
    const running = m.run();

    const evl = await createEventLog('orders');
    const key = `${ns.name}/orders`;
    await waitFor(() => rec.keys.includes(key), { message: 'a reconcile of the new EventLog' });
    expect(rec.sawInCache.has(key)).toBe(true);

    // An owned object (controller owner reference to the EventLog) changes: the owner is reconciled.
    const core = kc.makeApiClient(CoreV1Api);
    const before = rec.keys.length;
    await core.createNamespacedConfigMap({
      namespace: ns.name,
      body: {
        metadata: {
          name: 'orders-owned',
          labels: { 'manager-test': 'single' },
          ownerReferences: [{ apiVersion: 'eventlog.dev/v1alpha1', kind: 'EventLog', name: 'orders', uid: evl.metadata.uid, controller: true }],
        },
        data: { a: '1' },
      },
    });
    await waitFor(() => rec.keys.slice(before).includes(key), { message: 'the owner to be reconciled after its ConfigMap was created' });
    const afterCreate = rec.keys.length;
    const cm = await core.readNamespacedConfigMap({ namespace: ns.name, name: 'orders-owned' });
    await core.replaceNamespacedConfigMap({ namespace: ns.name, name: 'orders-owned', body: { ...cm, data: { a: '2' } } });
    await waitFor(() => rec.keys.slice(afterCreate).includes(key), { message: 'the owner to be reconciled after its ConfigMap changed' });
    // An object without a controller reference to an EventLog maps to nothing.
    await core.createNamespacedConfigMap({ namespace: ns.name, body: { metadata: { name: 'unowned', labels: { 'manager-test': 'single' } } } });

    expect(rec.maxConcurrentPerKey).toBe(1);
    expect(new Set(rec.keys)).toEqual(new Set([key]));

    const ready = await fetch(`${m.probeUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await (await fetch(`${m.probeUrl}/healthz`)).json()).toEqual({ status: 'ok' });
    const metrics = await (await fetch(`${m.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(/controller_runtime_reconcile_total\{controller="test-single",result="success"\} [1-9]/);
    expect(metrics).toMatch(/workqueue_adds_total\{name="test-single"\} [1-9]/);

    await m.stop();
    await running;
    await expect(fetch(`${m.probeUrl}/healthz`)).rejects.toThrow();
  });

  it('with leader election only the leader reconciles, and a stopped leader hands over', async () => {
    const lease = { namespace: ns.name, name: 'manager-test-lease', leaseDurationMs: 4_000, renewDeadlineMs: 3_000, retryPeriodMs: 500 };
    const recA: Recorder = { keys: [], concurrent: 0, maxConcurrentPerKey: 0, sawInCache: new Set() };
    const recB: Recorder = { keys: [], concurrent: 0, maxConcurrentPerKey: 0, sawInCache: new Set() };
    const a = newManager(recordingController('le', recA), { leaderElection: { ...lease, identity: 'candidate-a' } });
    const runA = a.run();
    await waitFor(() => a.isLeader(), { message: 'candidate A to lead', timeoutMs: 20_000 });
    const b = newManager(recordingController('le', recB), { leaderElection: { ...lease, identity: 'candidate-b' } });
    const runB = b.run();

    await createEventLog('payments');
    await waitFor(() => recA.keys.includes(`${ns.name}/payments`), { message: 'the leader to reconcile the new EventLog' });
    // B is ready (caches synced) but not leading: it reconciles nothing.
    await waitFor(async () => (await fetch(`${b.probeUrl}/readyz`)).status === 200, { message: 'candidate B to be ready' });
    expect(b.isLeader()).toBe(false);
    expect(recB.keys).toEqual([]);
    // client-go's leader gauge: 1 on the leader, 0 on the standby.
    const leaderGauge = async (m: Manager) => (await (await fetch(`${m.metricsUrl}/metrics`)).text()).match(/^leader_election_master_status\{name="manager-test-lease"\} (\d+)$/m)?.[1];
    expect(await leaderGauge(a)).toBe('1');
    expect(await leaderGauge(b)).toBe('0');

    await a.stop();
    await runA;
    await waitFor(() => b.isLeader(), { message: 'candidate B to take over after A released the Lease', timeoutMs: 20_000 });
    expect(await leaderGauge(b)).toBe('1');
    // B starts from its synced cache: every existing EventLog gets reconciled.
    await waitFor(() => recB.keys.includes(`${ns.name}/payments`), { message: 'the new leader to reconcile existing EventLogs' });
    await b.stop();
    await runB;
  });

  it('on the controller\'s own client: its own status write and creates reconcile nothing, changes by others do, and a pass reads its own writes', async () => {
    const http = new KubeHttp(kc);
    const other = new KubeHttp(kc);
    const evlPath = `/apis/eventlog.dev/v1alpha1/namespaces/${ns.name}/eventlogs`;
    const passes: string[] = [];
    let staleReads = 0;
    let beforeOurWrite: string | undefined;
    const def: ControllerDefinition = {
      name: 'test-own',
      primary: { group: 'eventlog.dev', version: 'v1alpha1', plural: 'eventlogs', apiVersion: 'eventlog.dev/v1alpha1', kind: 'EventLog' },
      owned: { configmaps: { version: 'v1', plural: 'configmaps', labelSelector: 'manager-test=own' } },
      reconcile: async ({ namespace, name, caches }) => {
        const cached = caches.primary.get(namespace, name) as { metadata: { uid: string; resourceVersion: string } } | undefined;
        if (!cached || name !== 'own') return Outcome.done();
        passes.push(cached.metadata.resourceVersion);
        if (beforeOurWrite !== undefined && cached.metadata.resourceVersion === beforeOurWrite) staleReads++;
        if (passes.length === 1) {
          // One status write and one owned create, through the manager's client.
          beforeOurWrite = cached.metadata.resourceVersion;
          await http.json('PATCH', `${evlPath}/own/status`, { contentType: 'application/merge-patch+json', body: { status: { observedGeneration: 1 } } });
          await http.json('POST', `/api/v1/namespaces/${namespace}/configmaps`, {
            body: {
              apiVersion: 'v1',
              kind: 'ConfigMap',
              metadata: { name: 'own-cm', labels: { 'manager-test': 'own' }, ownerReferences: [{ apiVersion: 'eventlog.dev/v1alpha1', kind: 'EventLog', name, uid: cached.metadata.uid, controller: true }] },
              data: { a: '1' },
            },
          });
        }
        return Outcome.done();
      },
    };
    const registry = new Registry();
    const m = newManager(def, { http, registry });
    const running = m.run();
    await createEventLog('own');
    await waitFor(() => passes.length >= 1, { message: 'the first pass' });
    // Its status write and its ConfigMap come back through the watch: no pass for them.
    await new Promise((r) => setTimeout(r, 3_000));
    expect(passes).toHaveLength(1);
    // Someone else's status change is handled.
    await other.json('PATCH', `${evlPath}/own/status`, { contentType: 'application/merge-patch+json', body: { status: { observedGeneration: 7 } } });
    await waitFor(() => passes.length === 2, { message: 'a pass for a status change by someone else' });
    // And so is someone else's change of the owned object.
    await other.json('PATCH', `/api/v1/namespaces/${ns.name}/configmaps/own-cm`, { contentType: 'application/merge-patch+json', body: { data: { a: '2' } } });
    await waitFor(() => passes.length === 3, { message: 'a pass for a changed owned object' });
    expect(staleReads).toBe(0);
    const metrics = await registry.metrics();
    expect(metrics).toMatch(/eventlog_controller_watch_events_total\{controller="test-own",resource="eventlogs",decision="skip_own_write"\} 1/);
    expect(metrics).toMatch(/eventlog_controller_watch_events_total\{controller="test-own",resource="configmaps",decision="skip_own_write"\} 1/);
    await m.stop();
    await running;
  });
});
