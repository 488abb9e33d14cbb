/**
 * Upgrading the operator: an "old" and a "new" operator (the same code as child
 * processes, `node src/cli.ts operator`, with different `--default-image` values: the
 * node agent runs any `eventlog:<tag>` image as the project's server) against the same
 * cluster. The old one makes four EventLogs Ready (one pins `spec.image`); the new one,
 * with `--max-concurrent-rollouts 1`, must roll the three unpinned ones to its template
 * one at a time — watched through every pod and EventLog event — and is SIGKILLed in the
 * middle of a rollout and started again, so the slot in use must be recomputed from the
 * cluster. The pinned EventLog is never touched.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { EventLogStatus } from '../../src/api/eventlog.ts';
import { KubeHttp } from '../../src/runtime/kube-http.ts';
import { watchResource, type KubeObject } from '../../src/runtime/watcher.ts';
import { ensureEventLogCrd, freshNamespace, kubeConfigFromInject, waitFor, type FreshNamespace } from './helpers.ts';
import { cond, EventLogApi, metricValue, spawnOperator, type ChildOperator, type Evl } from './operator-helpers.ts';

let kc: KubeConfig;
let http: KubeHttp;
let ns: FreshNamespace;
const children: ChildOperator[] = [];
const logDir = mkdtempSync(join(tmpdir(), 'operator-upgrade-'));

beforeAll(async () => {
  kc = kubeConfigFromInject();
  http = new KubeHttp(kc);
  await ensureEventLogCrd(kc);
  ns = await freshNamespace('op-upgrade', kc);
});

afterAll(async () => {
  for (const c of children) {
    c.kill('SIGKILL');
    await c.exited;
  }
  await ns?.cleanup();
  rmSync(logDir, { recursive: true, force: true });
});

type Pod = KubeObject & {
  metadata: { name: string; uid: string; deletionTimestamp?: string; labels?: Record<string, string> };
  spec: { containers: { name: string; image: string }[] };
  status?: { conditions?: { type: string; status: string }[]; containerStatuses?: { name: string; restartCount?: number }[] };
};

const ROLLED = ['u0', 'u1', 'u2'];
const PINNED = 'pinned';

function operatorArgs(image: string): string[] {
  return [
    '--kubeconfig', inject('kubeconfigPath'),
    '--namespaces', ns.name,
    '--leader-elect', 'false',
    '--metrics-addr', '127.0.0.1:0',
    '--probe-addr', '127.0.0.1:0',
    '--poll-interval', '1s',
    '--default-image', image,
    '--max-concurrent-rollouts', '1',
  ];
}

const podReady = (p: Pod | undefined) => p !== undefined && p.metadata.deletionTimestamp === undefined && (p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false);
const imageOf = (p: Pod | undefined) => p?.spec.containers.find((c) => c.name === 'server')?.image;

describe('upgrading the operator: a new default image', () => {
  it('rolls the EventLogs one at a time (also across a restart of the new operator), shows the outdated ones in status, and leaves a pinned image alone', async () => {
    const api = new EventLogApi(http, ns.name);
    const old = spawnOperator(operatorArgs('eventlog:v1'), join(logDir, 'old.log'));
    children.push(old);
    await old.metricsUrl;
    for (const n of ROLLED) await api.create(n);
    await api.create(PINNED, { image: 'eventlog:pinned' });
    const before = new Map<string, Evl>();
    for (const n of [...ROLLED, PINNED]) before.set(n, await api.waitReady(n));
    for (const n of ROLLED) expect(before.get(n)!.status?.rollout).toMatchObject({ state: 'UpToDate', upToDate: true });
    const pods0 = new Map((await api.list<Pod>(api.corePath('pods'))).map((p) => [p.metadata.name, p]));
    for (const n of ROLLED) expect(imageOf(pods0.get(`${n}-0`))).toBe('eventlog:v1');
    expect(imageOf(pods0.get(`${PINNED}-0`))).toBe('eventlog:pinned');
    old.kill('SIGTERM');
    expect((await old.exited).code).toBe(0);

    // Every pod and EventLog event from here on: the invariants are checked at each one.
    const pods = new Map<string, Pod>();
    const evls = new Map<string, KubeObject & { status?: EventLogStatus }>();
    const violations: string[] = [];
    let maxRolling = 0;
    let maxDisrupted = 0;
    const queuedMessages: string[] = [];
    const rollingSeen = new Set<string>();
    let synced = false;
    const check = (what: string) => {
      if (!synced) return; // the initial list arrives one object at a time
      const rolling = [...evls.values()].filter((e) => e.status?.rollout?.state === 'RollingOut').map((e) => e.metadata?.name);
      rolling.forEach((n) => rollingSeen.add(n!));
      maxRolling = Math.max(maxRolling, rolling.length);
      // A log pod is disrupted while it is missing, terminating or not Ready (its server restarting).
      const disrupted = [...ROLLED, PINNED].filter((n) => !podReady(pods.get(`${n}-0`)));
      maxDisrupted = Math.max(maxDisrupted, disrupted.length);
      if (rolling.length > 1) violations.push(`${what}: ${rolling.join(', ')} rolling at once`);
      if (disrupted.length > 1) violations.push(`${what}: pods of ${disrupted.join(', ')} down at once`);
      const pinned = evls.get(PINNED)?.status?.rollout;
      if (pinned && pinned.state !== 'UpToDate') violations.push(`${what}: the pinned EventLog is ${pinned.state}`);
      for (const e of evls.values()) {
        const r = cond(e as Evl, 'Reconciling');
        if (r?.reason === 'RolloutQueued' && !queuedMessages.includes(`${e.metadata?.name}: ${r.message}`)) queuedMessages.push(`${e.metadata?.name}: ${r.message}`);
      }
    };
    const podWatch = watchResource<Pod>(kc, { version: 'v1', plural: 'pods', namespace: ns.name }, { http });
    podWatch.onAdd((p) => (pods.set(p.metadata.name, p), check(`pod ${p.metadata.name} added`)));
    podWatch.onUpdate((_o, p) => (pods.set(p.metadata.name, p), check(`pod ${p.metadata.name} updated`)));
    podWatch.onDelete((p) => (pods.delete(p.metadata.name), check(`pod ${p.metadata.name} deleted`)));
    const evlWatch = watchResource<KubeObject & { status?: EventLogStatus }>(kc, { group: 'eventlog.dev', version: 'v1alpha1', plural: 'eventlogs', namespace: ns.name }, { http });
    evlWatch.onAdd((e) => (evls.set(e.metadata!.name!, e), check(`EventLog ${e.metadata?.name} added`)));
    evlWatch.onUpdate((_o, e) => (evls.set(e.metadata!.name!, e), check(`EventLog ${e.metadata?.name} updated`)));
    podWatch.start();
    evlWatch.start();
    try {
      await podWatch.waitForSync(AbortSignal.timeout(30_000));
      await evlWatch.waitForSync(AbortSignal.timeout(30_000));
      synced = true;
      check('both watches synced');
      expect(maxDisrupted).toBe(0);
      expect(pods.size).toBe(4);

      // The new operator, killed as soon as a rollout is in flight, then started again.
      const first = spawnOperator(operatorArgs('eventlog:v2'), join(logDir, 'new-1.log'));
      children.push(first);
      const inFlight = await waitFor(() => [...evls.values()].find((e) => e.status?.rollout?.state === 'RollingOut')?.metadata?.name, {
        message: 'the new operator to start a rollout',
        timeoutMs: 60_000,
        intervalMs: 20,
      });
      first.kill('SIGKILL');
      await first.exited;
      const second = spawnOperator(operatorArgs('eventlog:v2'), join(logDir, 'new-2.log'));
      children.push(second);
      const metricsUrl = await second.metricsUrl;

      // While rollouts remain, the status names the outdated EventLogs (and the gauge counts them).
      const outdatedSeen = await waitFor(
        async () => {
          const text = await (await fetch(`${metricsUrl}/metrics`)).text();
          const outdated = ROLLED.filter((n) => metricValue(text, 'eventlog_pod_template_outdated', { namespace: ns.name, name: n }) === 1);
          return outdated.length > 0 ? outdated : undefined;
        },
        { message: 'eventlog_pod_template_outdated to count an outdated EventLog', timeoutMs: 60_000, intervalMs: 100 },
      );
      expect(outdatedSeen.length).toBeGreaterThan(0);

      for (const n of ROLLED) {
        await waitFor(
          async () => {
            const e = await api.waitReady(n, 180_000);
            const pod = await api.get<Pod>(api.corePath('pods', `${n}-0`));
            return e.status?.rollout?.state === 'UpToDate' && imageOf(pod) === 'eventlog:v2' && podReady(pod) ? e : undefined;
          },
          { message: `EventLog ${n} to be Ready on the new template`, timeoutMs: 240_000, intervalMs: 500 },
        );
      }
      const after = new Map<string, Evl>();
      for (const n of [...ROLLED, PINNED]) after.set(n, (await api.waitReady(n))!);
      check('the end');

      expect(violations).toEqual([]);
      expect(maxRolling).toBe(1);
      expect(maxDisrupted).toBeLessThanOrEqual(1);
      expect([...rollingSeen].sort()).toEqual(ROLLED);
      expect(rollingSeen.has(inFlight)).toBe(true);
      // Queued EventLogs said so, with one message each while queued (it names no holder,
      // so it is not rewritten as the rollouts move on).
      expect(queuedMessages.length, 'a RolloutQueued condition').toBeGreaterThan(0);
      expect(queuedMessages.every((m) => m.includes('waiting for a rollout slot (at most 1 at once')), queuedMessages.join('\n')).toBe(true);
      const queuedNames = queuedMessages.map((m) => m.slice(0, m.indexOf(':')));
      expect(new Set(queuedNames).size, queuedMessages.join('\n')).toBe(queuedNames.length);
      for (const n of ROLLED) {
        const a = after.get(n)!.status!;
        expect(a.rollout).toMatchObject({ state: 'UpToDate', upToDate: true });
        expect(a.rollout?.desired).not.toBe(before.get(n)!.status?.rollout?.desired);
        expect(a.pod?.bootId, `${n} runs a new server`).not.toBe(before.get(n)!.status?.pod?.bootId);
      }
      // The pinned EventLog: same pod, same server process, same template.
      const p0 = pods0.get(`${PINNED}-0`)!;
      const p1 = pods.get(`${PINNED}-0`)!;
      expect(p1.metadata.uid).toBe(p0.metadata.uid);
      expect(imageOf(p1)).toBe('eventlog:pinned');
      expect(p1.status?.containerStatuses?.[0]?.restartCount).toBe(p0.status?.containerStatuses?.[0]?.restartCount);
      expect(after.get(PINNED)!.status?.pod?.bootId).toBe(before.get(PINNED)!.status?.pod?.bootId);
      expect(after.get(PINNED)!.status?.rollout).toEqual(before.get(PINNED)!.status?.rollout);

      const text = await (await fetch(`${metricsUrl}/metrics`)).text();
      for (const n of [...ROLLED, PINNED]) {
        expect(metricValue(text, 'eventlog_pod_template_outdated', { namespace: ns.name, name: n })).toBe(0);
        expect(metricValue(text, 'eventlog_rollout_in_progress', { namespace: ns.name, name: n })).toBe(0);
      }
      // Progress lines in the operators' logs.
      const logs = ['new-1.log', 'new-2.log'].map((f) => readFileSync(join(logDir, f), 'utf8')).join('\n');
      for (const n of ROLLED) expect(logs).toMatch(new RegExp(`rolling EventLog ${ns.name}/${n} to template [0-9a-f]{16} \\(1 of at most 1 at once; \\d+ outdated\\)`));
      expect(logs).toMatch(/rolled EventLog \S+ to template [0-9a-f]{16} in [\d.]+s \(0 outdated left\)/);

      second.kill('SIGTERM');
      expect((await second.exited).code).toBe(0);
    } finally {
      await podWatch.stop();
      await evlWatch.stop();
    }
    // Finalize with an operator running (the namespace cleanup needs the finalizers gone).
    const cleaner = spawnOperator(operatorArgs('eventlog:v2'), join(logDir, 'cleanup.log'));
    children.push(cleaner);
    await cleaner.metricsUrl;
    await api.deleteAll();
  });
});
