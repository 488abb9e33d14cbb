/**
 * The EventLog operator end to end: the Manager with the EventLog controller runs
 * in-process against the shared control plane; the node agent runs the log pods as
 * real `eventlog-server` processes on 127.1.x.y. Short poll intervals keep it quick.
 */
import { execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FINALIZER, type EventLogStatus } from '../../src/api/eventlog.ts';
import { silentLogger } from '../../src/common/logger.ts';
import type { Manager } from '../../src/runtime/manager.ts';
import { main } from '../../src/operator/main.ts';
import { KubeHttp, statusCodeOf } from '../../src/runtime/kube-http.ts';
import { ensureEventLogCrd, freshNamespace, kubeConfigFromInject, waitFor, type FreshNamespace } from './helpers.ts';
import { EventLogApi, startInProcessOperator, type InProcessOperator } from './operator-helpers.ts';

const run = promisify(execFile);
const POLL_MS = 1_000;

let kc: KubeConfig;
let ns: FreshNamespace;
let http: KubeHttp;
let operator: InProcessOperator | undefined;

type Obj = {
  metadata: { name: string; uid: string; resourceVersion: string; generation?: number; finalizers?: string[]; ownerReferences?: { uid: string }[]; deletionTimestamp?: string };
  spec?: Record<string, unknown> & { volumes?: { persistentVolumeClaim?: { claimName: string } }[] };
  status?: Record<string, unknown> & { phase?: string; podIP?: string };
};
type Evl = Obj & { status?: EventLogStatus };

const evlPath = (name = '') => `/apis/eventlog.dev/v1alpha1/namespaces/${ns.name}/eventlogs${name ? `/${name}` : ''}`;
const corePath = (plural: string, name: string) => `/api/v1/namespaces/${ns.name}/${plural}/${name}`;

async function get<T = Obj>(path: string): Promise<T | undefined> {
  try {
    return await http.json<T>('GET', path);
  } catch (error) {
    if (statusCodeOf(error) === 404) return undefined;
    throw error;
  }
}

async function createEventLog(name: string, storage: Record<string, unknown>): Promise<Evl> {
  return http.json<Evl>('POST', evlPath(), {
    body: { apiVersion: 'eventlog.dev/v1alpha1', kind: 'EventLog', metadata: { name }, spec: { storage: { size: '64Mi', ...storage } } },
  });
}

const cond = (e: Evl | undefined, type: string) => e?.status?.conditions?.find((c) => c.type === type);

/** `Authorization` for the log server of EventLog `name` (its token Secret `<name>-token`). */
async function authHeaders(name: string): Promise<Record<string, string>> {
  const secret = await get<{ data?: Record<string, string> }>(corePath('secrets', `${name}-token`));
  const token = secret?.data?.token;
  if (!token) throw new Error(`Secret ${name}-token has no token`);
  return { authorization: `Bearer ${Buffer.from(token, 'base64').toString('utf8')}` };
}

async function waitReady(name: string, message: string): Promise<Evl> {
  return waitFor(
    async () => {
      const e = await get<Evl>(evlPath(name));
      const ready = cond(e, 'Ready');
      return ready?.status === 'True' && ready.observedGeneration === e?.metadata.generation ? e : undefined;
    },
    { message, timeoutMs: 90_000, intervalMs: 300 },
  );
}

beforeAll(async () => {
  kc = kubeConfigFromInject();
  await ensureEventLogCrd(kc);
  ns = await freshNamespace('operator');
  http = new KubeHttp(kc);
  operator = startInProcessOperator({ kc, namespaces: [ns.name], identity: 'operator-test', pollMs: POLL_MS });
});

afterAll(async () => {
  // Let the operator finalize what is left before it stops, so the namespace can go.
  if (operator && ns) await new EventLogApi(http, ns.name).deleteAll();
  await operator?.stop();
  await ns?.cleanup();
});

describe('EventLog operator', () => {
  let podUid = '';
  let pvcUid = '';
  let eventId = '';

  it('creates PVC, pod and Service, and reports Ready=True for the current generation', async () => {
    await createEventLog('orders', {});
    const evl = await waitReady('orders', 'EventLog orders to become Ready');
    expect(evl.metadata.finalizers).toContain(FINALIZER);
    expect(cond(evl, 'Reconciling')?.status).toBe('False');
    expect(cond(evl, 'Stalled')?.status).toBe('False');
    for (const c of evl.status?.conditions ?? []) expect(c.observedGeneration).toBe(evl.metadata.generation);
    expect(evl.status?.observedGeneration).toBe(evl.metadata.generation);
    expect(evl.status?.endpoint).toBe(`http://orders.${ns.name}.svc:8080`);
    expect(evl.status?.phase).toBe('Ready');

    const pvc = await get(corePath('persistentvolumeclaims', 'orders-data'));
    expect(pvc?.status?.phase).toBe('Bound');
    expect(pvc?.metadata.ownerReferences?.[0]?.uid).toBe(evl.metadata.uid);
    const pod = await get(corePath('pods', 'orders-0'));
    expect(pod?.status?.phase).toBe('Running');
    expect(pod?.status?.podIP).toMatch(/^127\.\d+\.\d+\.\d+$/);
    expect(pod?.spec?.volumes?.find((v) => v.persistentVolumeClaim)?.persistentVolumeClaim?.claimName).toBe('orders-data');
    expect(await get(corePath('services', 'orders'))).toBeDefined();
    expect(evl.status?.pod?.uid).toBe(pod?.metadata.uid);
    podUid = pod!.metadata.uid;
    pvcUid = pvc!.metadata.uid;

    const { stdout } = await run('/usr/bin/kubectl', ['wait', '--for=condition=Ready', 'evl/orders', '-n', ns.name, '--timeout=60s'], { env: { ...process.env } });
    expect(stdout).toContain('condition met');
  });

  it('recreates a deleted pod on the same PVC, with the data still there', async () => {
    const pod = await get(corePath('pods', 'orders-0'));
    const posted = await fetch(`http://${pod!.status!.podIP}:8080/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(await authHeaders('orders')) },
      body: JSON.stringify({ type: 'order-placed', amount: 42 }),
    });
    expect(posted.status).toBe(201);
    const event = (await posted.json()) as { id: string };
    eventId = event.id;

    await http.json('DELETE', corePath('pods', 'orders-0'));
    const fresh = await waitFor(
      async () => {
        const p = await get(corePath('pods', 'orders-0'));
        return p && p.metadata.uid !== podUid && !p.metadata.deletionTimestamp && p.status?.podIP ? p : undefined;
      },
      { message: 'pod orders-0 to be recreated', timeoutMs: 90_000 },
    );
    const evl = await waitFor(
      async () => {
        const e = await get<Evl>(evlPath('orders'));
        return cond(e, 'Ready')?.status === 'True' && e?.status?.pod?.uid === fresh.metadata.uid ? e : undefined;
      },
      { message: 'EventLog orders to be Ready on the new pod', timeoutMs: 90_000 },
    );
    expect(evl.status?.storage?.pvcName).toBe('orders-data');
    expect((await get(corePath('persistentvolumeclaims', 'orders-data')))?.metadata.uid).toBe(pvcUid);
    const p = await get(corePath('pods', 'orders-0'));
    const read = await fetch(`http://${p!.status!.podIP}:8080/events/${eventId}`, { headers: await authHeaders('orders') });
    expect(read.status).toBe(200);
    expect(await read.json()).toMatchObject({ id: eventId, type: 'order-placed', amount: 42 });
  });

  it('writes no status while the EventLog is steady', async () => {
    // Counters settle first (written at most every statusCounterInterval).
    const steady = await waitFor(
      async () => {
        const e = await get<Evl>(evlPath('orders'));
        return cond(e, 'Ready')?.status === 'True' && e?.status?.log?.records === 1 ? e : undefined;
      },
      { message: 'status.log.records to show the event', timeoutMs: 30_000 },
    );
    await new Promise((r) => setTimeout(r, 3.5 * POLL_MS));
    const later = await get<Evl>(evlPath('orders'));
    expect(later?.metadata.resourceVersion).toBe(steady.metadata.resourceVersion);
  });

  it('reports Stalled=True for an unknown StorageClass, saying what to fix', async () => {
    await createEventLog('nosc', { storageClassName: 'no-such-class' });
    const evl = await waitFor(
      async () => {
        const e = await get<Evl>(evlPath('nosc'));
        return cond(e, 'Stalled')?.status === 'True' ? e : undefined;
      },
      { message: 'EventLog nosc to be Stalled', timeoutMs: 30_000 },
    );
    const stalled = cond(evl, 'Stalled')!;
    expect(stalled.reason).toBe('StorageClassNotFound');
    expect(stalled.message).toContain('StorageClass no-such-class does not exist');
    expect(cond(evl, 'Ready')?.status).toBe('False');
    expect(cond(evl, 'Reconciling')?.status).toBe('False');
    expect(evl.status?.phase).toBe('Stalled');
    expect(await get(corePath('persistentvolumeclaims', 'nosc-data'))).toBeUndefined();
  });

  it('reports interior corruption as Stalled, refuses a wrong approval, and runs the approved repair', async () => {
    await createEventLog('ledger', { retentionPolicy: 'Delete' });
    await waitReady('ledger', 'EventLog ledger to become Ready');
    const pod = await get(corePath('pods', 'ledger-0'));
    for (const n of [1, 2, 3]) {
      const r = await fetch(`http://${pod!.status!.podIP}:8080/events`, { method: 'POST', headers: { 'content-type': 'application/json', ...(await authHeaders('ledger')) }, body: JSON.stringify({ n }) });
      expect(r.status).toBe(201);
    }
    // Damage the first record (valid records follow it: interior corruption, not a torn tail).
    const pvc = await get(corePath('persistentvolumeclaims', 'ledger-data'));
    const pv = await http.json<{ spec: { local?: { path: string }; hostPath?: { path: string } } }>('GET', `/api/v1/persistentvolumes/${pvc!.spec!.volumeName as string}`);
    const segment = join(pv.spec.local?.path ?? pv.spec.hostPath!.path, 'segments', '00000000000000000001.seg');
    const bytes = readFileSync(segment);
    bytes[40] = bytes[40]! ^ 0xff;
    writeFileSync(segment, bytes);
    await http.json('DELETE', corePath('pods', 'ledger-0'));

    const stalled = await waitFor(
      async () => {
        const e = await get<Evl>(evlPath('ledger'));
        return cond(e, 'Stalled')?.reason === 'CorruptionDetected' ? e : undefined;
      },
      { message: 'EventLog ledger to be Stalled with CorruptionDetected', timeoutMs: 90_000 },
    );
    const id = stalled.status?.recovery?.corruption?.id;
    expect(id).toBeTruthy();
    expect(cond(stalled, 'Ready')).toMatchObject({ status: 'False', reason: 'CorruptionDetected' });
    expect(cond(stalled, 'Recovered')).toMatchObject({ status: 'False', reason: 'CorruptionDetected' });
    expect(cond(stalled, 'Stalled')?.message).toContain(`eventlog.dev/approve-repair=${id}`);
    expect(readFileSync(segment).equals(bytes)).toBe(true); // data untouched

    // As the README tells a human to approve it.
    const annotate = (value: string) =>
      run('bash', ['-c', 'kubectl annotate evl ledger eventlog.dev/approve-repair=$ID --overwrite -n "$NS"'], { env: { ...process.env, ID: value, NS: ns.name } });
    await annotate('not-this-one');
    await waitFor(
      async () => cond(await get<Evl>(evlPath('ledger')), 'Stalled')?.message.includes('"not-this-one" does not match this corruption and was refused'),
      { message: 'the wrong approval to be named and refused', timeoutMs: 30_000 },
    );
    expect(readFileSync(segment).equals(bytes)).toBe(true);

    await annotate(id!);
    const repaired = await waitReady('ledger', 'EventLog ledger to be Ready after the approved repair');
    expect(repaired.status?.recovery?.repair).toMatchObject({ corruptionId: id, result: 'Succeeded' });
    expect(cond(repaired, 'Recovered')).toMatchObject({ status: 'True', reason: 'Repaired' });
    expect(cond(repaired, 'Stalled')?.status).toBe('False');
    await http.json('DELETE', evlPath('ledger'));
  });

  it('drift: an edited Service label is put back (Correct); an edited port is reported and left (Report)', async () => {
    await createEventLog('drifty', { retentionPolicy: 'Delete' });
    await waitReady('drifty', 'EventLog drifty to become Ready');
    const kubectl = (...args: string[]) => run('/usr/bin/kubectl', [...args, '-n', ns.name], { env: { ...process.env } });

    await kubectl('label', 'svc/drifty', 'app.kubernetes.io/component=hacked', '--overwrite');
    const corrected = await waitFor(
      async () => {
        const e = await get<Evl>(evlPath('drifty'));
        return (e?.status?.drift?.corrections ?? 0) >= 1 ? e : undefined;
      },
      { message: 'the Service label drift to be corrected', timeoutMs: 30_000 },
    );
    expect(cond(corrected, 'Drifted')).toMatchObject({ status: 'False', reason: 'DriftCorrected' });
    expect(cond(corrected, 'Drifted')?.message).toContain('metadata.labels["app.kubernetes.io/component"]');
    await waitFor(async () => ((await get(corePath('services', 'drifty'))) as { metadata: { labels?: Record<string, string> } } | undefined)?.metadata.labels?.['app.kubernetes.io/component'] === 'log-server', {
      message: 'the Service label to be put back',
    });

    await http.json('PATCH', evlPath('drifty'), { contentType: 'application/merge-patch+json', body: { spec: { driftPolicy: 'Report' } } });
    await waitReady('drifty', 'EventLog drifty to be Ready for the new generation');
    await kubectl('patch', 'svc/drifty', '--type=json', '-p', '[{"op":"replace","path":"/spec/ports/0/port","value":9090}]');
    const reported = await waitFor(
      async () => {
        const e = await get<Evl>(evlPath('drifty'));
        return cond(e, 'Drifted')?.status === 'True' ? e : undefined;
      },
      { message: 'the Service port drift to be reported', timeoutMs: 30_000 },
    );
    expect(cond(reported, 'Drifted')?.reason).toBe('DriftDetected');
    expect(cond(reported, 'Drifted')?.message).toContain('left in place (driftPolicy Report)');
    expect(reported.status?.drift?.items).toEqual([expect.objectContaining({ kind: 'Service', name: 'drifty', path: 'spec.ports[name=http].port', expected: '8080', actual: '9090' })]);
    const svc = (await get(corePath('services', 'drifty'))) as unknown as { spec: { ports: { port: number }[] } };
    expect(svc.spec.ports[0]?.port).toBe(9090);
  });

  it('suspend: owned objects are left alone until resumed', async () => {
    await http.json('PATCH', evlPath('drifty'), { contentType: 'application/merge-patch+json', body: { spec: { suspend: true, driftPolicy: 'Correct' } } });
    await waitFor(
      async () => {
        const e = await get<Evl>(evlPath('drifty'));
        return e?.status?.phase === 'Suspended' && cond(e, 'Reconciling')?.reason === 'Suspended' && cond(e, 'Reconciling')?.observedGeneration === e.metadata.generation;
      },
      { message: 'EventLog drifty to report Suspended', timeoutMs: 30_000 },
    );
    await http.json('DELETE', corePath('services', 'drifty'));
    await waitFor(async () => (await get(corePath('services', 'drifty'))) === undefined, { message: 'Service drifty to be deleted' });
    await new Promise((r) => setTimeout(r, 3 * POLL_MS));
    expect(await get(corePath('services', 'drifty'))).toBeUndefined();

    await http.json('PATCH', evlPath('drifty'), { contentType: 'application/merge-patch+json', body: { spec: { suspend: false } } });
    await waitFor(async () => (await get(corePath('services', 'drifty'))) !== undefined, { message: 'Service drifty to be recreated after resume', timeoutMs: 30_000 });
    const svc = (await get(corePath('services', 'drifty'))) as unknown as { spec: { ports: { port: number }[] } };
    expect(svc.spec.ports[0]?.port).toBe(8080);
    await waitReady('drifty', 'EventLog drifty to be Ready after resume');
    await http.json('DELETE', evlPath('drifty'));
  });

  it('deleting with retentionPolicy Retain keeps the PVC without our owner reference; a new EventLog adopts it', async () => {
    const evl = await get<Evl>(evlPath('orders'));
    await http.json('DELETE', evlPath('orders'));
    await waitFor(async () => (await get(evlPath('orders'))) === undefined, { message: 'EventLog orders to be finalized and gone', timeoutMs: 60_000 });
    await waitFor(async () => (await get(corePath('pods', 'orders-0'))) === undefined, { message: 'pod orders-0 to be garbage-collected', timeoutMs: 90_000 });
    const pvc = await get(corePath('persistentvolumeclaims', 'orders-data'));
    expect(pvc?.metadata.uid).toBe(pvcUid);
    expect(pvc?.metadata.deletionTimestamp).toBeUndefined();
    expect((pvc?.metadata.ownerReferences ?? []).some((r) => r.uid === evl?.metadata.uid)).toBe(false);
    const events = await http.json<{ items: { reason: string; regarding: { uid: string } }[] }>('GET', `/apis/events.k8s.io/v1/namespaces/${ns.name}/events`);
    expect(events.items.some((e) => e.reason === 'StorageRetained' && e.regarding.uid === evl?.metadata.uid)).toBe(true);

    // An EventLog of the same name adopts the retained claim, and the data is still there.
    const again = await createEventLog('orders', {});
    await waitReady('orders', 'the re-created EventLog orders to become Ready on the retained PVC');
    const adopted = await get(corePath('persistentvolumeclaims', 'orders-data'));
    expect(adopted?.metadata.uid).toBe(pvcUid);
    expect(adopted?.metadata.ownerReferences?.map((r) => r.uid)).toEqual([again.metadata.uid]);
    const pod = await get(corePath('pods', 'orders-0'));
    const read = await fetch(`http://${pod!.status!.podIP}:8080/events/${eventId}`, { headers: await authHeaders('orders') });
    expect(read.status).toBe(200);
  });

  it('deleting with retentionPolicy Delete lets garbage collection take the PVC', async () => {
    await createEventLog('scratch', { retentionPolicy: 'Delete' });
    await waitFor(
      async () => {
        const e = await get<Evl>(evlPath('scratch'));
        const pvc = await get(corePath('persistentvolumeclaims', 'scratch-data'));
        return e?.metadata.finalizers?.includes(FINALIZER) && pvc?.status?.phase === 'Bound';
      },
      { message: 'EventLog scratch to have a bound PVC', timeoutMs: 60_000 },
    );
    await http.json('DELETE', evlPath('scratch'));
    await waitFor(async () => (await get(evlPath('scratch'))) === undefined, { message: 'EventLog scratch to be gone', timeoutMs: 60_000 });
    await waitFor(async () => (await get(corePath('persistentvolumeclaims', 'scratch-data'))) === undefined, {
      message: 'PVC scratch-data to be garbage-collected',
      timeoutMs: 120_000,
    });
  });
});

describe('eventlog operator main()', () => {
  it('runs the operator under leader election, reconciles to Ready, and exits 0 on SIGTERM releasing the Lease', async () => {
    const own = await freshNamespace('operator-main', kc);
    const signals = new EventEmitter();
    let started: Manager | undefined;
    const exit = main(
      [
        '--namespaces', own.name,
        '--leader-election-namespace', own.name,
        '--leader-election-id', 'eventlog-operator-test',
        '--metrics-addr', '127.0.0.1:0',
        '--probe-addr', '127.0.0.1:0',
        '--poll-interval', '1s',
        '--kubeconfig', inject('kubeconfigPath'),
      ],
      {
        stdout: process.stdout,
        stderr: process.stderr,
        env: {},
        signals: { once: (s, fn) => signals.once(s, fn), off: (s, fn) => signals.off(s, fn) },
        log: silentLogger,
        onStarted: (m) => (started = m),
      },
    );
    try {
      const path = `/apis/eventlog.dev/v1alpha1/namespaces/${own.name}/eventlogs`;
      await http.json('POST', path, { body: { apiVersion: 'eventlog.dev/v1alpha1', kind: 'EventLog', metadata: { name: 'mainlog' }, spec: { storage: { size: '16Mi', retentionPolicy: 'Delete' } } } });
      await waitFor(
        async () => {
          const e = await get<Evl>(`${path}/mainlog`);
          return cond(e, 'Ready')?.status === 'True';
        },
        { message: 'EventLog mainlog to become Ready under main()', timeoutMs: 90_000 },
      );
      expect(started?.isLeader()).toBe(true);
      expect((await fetch(`${started!.probeUrl}/readyz`)).status).toBe(200);
      expect(await (await fetch(`${started!.metricsUrl}/metrics`)).text()).toMatch(/controller_runtime_reconcile_total\{controller="eventlog",result="requeue_after"\} [1-9]/);
      await http.json('DELETE', `${path}/mainlog`);
      await waitFor(async () => (await get(`${path}/mainlog`)) === undefined, { message: 'EventLog mainlog to be finalized', timeoutMs: 60_000 });
    } finally {
      signals.emit('SIGTERM');
      expect(await exit).toBe(0);
      const lease = await get<{ spec: { holderIdentity?: string } }>(`/apis/coordination.k8s.io/v1/namespaces/${own.name}/leases/eventlog-operator-test`);
      expect(lease?.spec.holderIdentity ?? '').toBe('');
      await own.cleanup();
    }
  });
});
