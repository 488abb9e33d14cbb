/**
 * The storage lifecycle end to end: EventLogs of 64Mi on the node agent's real ext4
 * loop volumes (the global agent runs as root), filled through their log servers, with
 * the operator in-process against the shared control plane.
 *
 * - A full log without autoGrow: Ready=False/StorageFull and Stalled=True/StorageFull,
 *   reads still served, every acknowledged event intact.
 * - With autoGrow (and restartPodForResize, since this machine's ext4 cannot grow
 *   online): the PVC grows 64Mi -> 96Mi, the log returns to Ready with nothing lost,
 *   status.storage.growth records it.
 * - A PVC grown by a person is capacity, not drift, and is never shrunk.
 * - Retention keeps a log under its limit while appends continue; a reader behind the
 *   first kept sequence gets 410.
 *
 * Measured figures (volume full -> StorageFull in status; auto-grow start -> Ready) are
 * printed, never asserted.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeHttp } from '../../src/runtime/kube-http.ts';
import { ensureEventLogCrd, freshNamespace, kubeConfigFromInject, waitFor, type FreshNamespace } from './helpers.ts';
import { EventLogApi, cond, startInProcessOperator, type Evl, type InProcessOperator } from './operator-helpers.ts';

let kc: KubeConfig;
let ns: FreshNamespace;
let api: EventLogApi;
let operator: InProcessOperator | undefined;

type Pod = { metadata: { uid: string }; status?: { podIP?: string; phase?: string } };
type Pvc = { spec: { resources: { requests: { storage: string } } }; status?: { capacity?: { storage?: string }; conditions?: { type: string }[] } };

async function token(name: string): Promise<string> {
  const s = await api.get<{ data?: { token?: string } }>(api.corePath('secrets', `${name}-token`));
  if (!s?.data?.token) throw new Error(`Secret ${name}-token has no token`);
  return Buffer.from(s.data.token, 'base64').toString('utf8');
}

async function server(name: string): Promise<{ base: string; auth: Record<string, string> }> {
  const pod = await waitFor(async () => {
    const p = await api.get<Pod>(api.corePath('pods', `${name}-0`));
    return p?.status?.podIP && p.status.phase === 'Running' ? p : undefined;
  }, { message: `pod ${name}-0 to run`, timeoutMs: 60_000 });
  return { base: `http://${pod.status!.podIP}:8080`, auth: { authorization: `Bearer ${await token(name)}` } };
}

/** Appends batches of ~`eventBytes` events until the server answers 507; returns every acknowledged sequence. */
async function fillUntilFull(name: string, opts: { eventBytes?: number; batch?: number; stopAtPercent?: number } = {}): Promise<{ acked: number[]; fullAt: number | undefined }> {
  const { base, auth } = await server(name);
  const pad = 'x'.repeat(opts.eventBytes ?? 900);
  const acked: number[] = [];
  for (let i = 0; i < 10_000; i++) {
    const lines = Array.from({ length: opts.batch ?? 200 }, (_, j) => JSON.stringify({ n: i * 1000 + j, pad })).join('\n');
    const res = await fetch(`${base}/events`, { method: 'POST', headers: { ...auth, 'content-type': 'application/x-ndjson' }, body: lines });
    if (res.status === 507) {
      const body = (await res.json()) as { error: string; freeBytes: number; reserveBytes: number };
      expect(body.error).toBe('storage_full');
      expect(body.reserveBytes).toBeGreaterThan(0);
      console.log(`[storage] ${name}: 507 storage_full with ${body.freeBytes} bytes free, reserve ${body.reserveBytes}, after ${acked.length} events`);
      return { acked, fullAt: Date.now() };
    }
    expect(res.status, await res.clone().text()).toBe(201);
    for (const e of (await res.json()) as { sequence: number }[]) acked.push(e.sequence);
    if (opts.stopAtPercent !== undefined && i % 5 === 4) {
      const st = (await (await fetch(`${base}/status`, { headers: auth })).json()) as { storage?: { usedBytes: number; filesystemBytes: number } };
      if (st.storage && (st.storage.usedBytes / st.storage.filesystemBytes) * 100 >= opts.stopAtPercent) return { acked, fullAt: undefined };
    }
  }
  throw new Error(`EventLog ${name}: never full`);
}

/** Every event from the start, in order (NDJSON pages). */
async function readAll(name: string): Promise<number[]> {
  const { base, auth } = await server(name);
  const out: number[] = [];
  for (let after = 0; ; ) {
    const res = await fetch(`${base}/events?after=${after}&limit=5000`, { headers: auth });
    expect(res.status).toBe(200);
    const lines = (await res.text()).split('\n').filter((l) => l.length > 0);
    if (lines.length === 0) return out;
    for (const l of lines) out.push((JSON.parse(l) as { sequence: number }).sequence);
    after = out[out.length - 1]!;
  }
}

const reason = (e: Evl | undefined, type: string) => `${cond(e, type)?.status}/${cond(e, type)?.reason}`;

beforeAll(async () => {
  kc = kubeConfigFromInject();
  await ensureEventLogCrd(kc);
  ns = await freshNamespace('storage');
  api = new EventLogApi(new KubeHttp(kc), ns.name);
  operator = startInProcessOperator({ kc, namespaces: [ns.name], identity: 'storage-test', pollMs: 1_000 });
});

afterAll(async () => {
  await api?.deleteAll().catch(() => undefined);
  await operator?.stop();
  await ns?.cleanup();
});

describe('a full volume', () => {
  it('without autoGrow: StorageFull in status within seconds, Stalled=True, reads still served, nothing acknowledged lost', async () => {
    await api.create('full', {}, { size: '64Mi' });
    await api.waitReady('full');
    const { acked, fullAt } = await fillUntilFull('full');
    expect(acked.length).toBeGreaterThan(1000);
    const e = await waitFor(async () => {
      const x = await api.get<Evl>(api.evlPath('full'));
      return cond(x, 'Ready')?.reason === 'StorageFull' && cond(x, 'Stalled')?.status === 'True' ? x : undefined;
    }, { message: 'EventLog full to report StorageFull', timeoutMs: 60_000, intervalMs: 200 });
    console.log(`[storage] volume full -> Ready=False/StorageFull in status: ${((Date.now() - fullAt!) / 1000).toFixed(1)} s`);
    expect(reason(e, 'Ready')).toBe('False/StorageFull');
    expect(reason(e, 'Stalled')).toBe('True/StorageFull');
    expect(cond(e, 'Stalled')?.message).toMatch(/spec.storage.autoGrow is not set/);
    // Usually ~98% (1.3 MB free of 64 MiB, reserve 1.27 MB). One loaded CI run stopped at
    // 88%: statfs reported less free space for a while (our reading: ext4's delayed-allocation
    // reservations while much is dirty), and the server refused early, on the safe side. At
    // least the nearly-full threshold (85%) holds either way.
    expect(e.status?.storage?.usedPercent, JSON.stringify(e.status?.storage)).toBeGreaterThanOrEqual(85);
    expect(e.status?.storage?.nearlyFull).toBe(true);
    // Reads still served, every acknowledged event there, in order.
    const all = await readAll('full');
    expect(all).toEqual(acked);
    // The pod stays in the Service: /readyz is 200 while full.
    const { base } = await server('full');
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
  });
});

describe('auto-grow', () => {
  it('a full log whose StorageClass does not allow expansion is Stalled=True/StorageNotExpandable and says why', async () => {
    await api.create('fixed', {}, { size: '64Mi', storageClassName: 'eventlog-local-fixed', autoGrow: { maxSize: '128Mi' } });
    await api.waitReady('fixed');
    const { acked } = await fillUntilFull('fixed');
    const e = await waitFor(async () => {
      const x = await api.get<Evl>(api.evlPath('fixed'));
      return cond(x, 'Stalled')?.reason === 'StorageNotExpandable' && cond(x, 'Ready')?.reason === 'StorageFull' ? x : undefined;
    }, { message: 'EventLog fixed to be Stalled/StorageNotExpandable', timeoutMs: 60_000, intervalMs: 300 });
    expect(cond(e, 'Stalled')?.message).toMatch(/does not allow volume expansion/);
    expect(reason(e, 'Ready')).toBe('False/StorageFull');
    const pvc = await api.get<Pvc>(api.corePath('persistentvolumeclaims', 'fixed-data'));
    expect(pvc?.spec.resources.requests.storage).toBe('64Mi');
    expect(e.status?.storage?.growth).toBeUndefined();
    expect(await readAll('fixed')).toEqual(acked);
  });

  it('expands the PVC to the next size and returns to Ready with nothing lost; status records the growth', async () => {
    await api.create('grow', {}, { size: '64Mi', autoGrow: { usedPercent: 80, increment: '50%', maxSize: '128Mi' }, restartPodForResize: true });
    await api.waitReady('grow');
    const { acked } = await fillUntilFull('grow', { stopAtPercent: 82 });
    const started = Date.now();
    const grown = await waitFor(async () => {
      const x = await api.get<Evl>(api.evlPath('grow'));
      return x?.status?.storage?.growth?.[0] ? x : undefined;
    }, { message: 'the operator to grow the PVC', timeoutMs: 60_000, intervalMs: 200 });
    expect(grown.status?.storage?.growth?.[0]).toMatchObject({ from: '64Mi', to: '96Mi' });
    const pvc = await api.get<Pvc>(api.corePath('persistentvolumeclaims', 'grow-data'));
    expect(pvc?.spec.resources.requests.storage).toBe('96Mi');
    // The EventLog's spec (Git's) is untouched.
    expect((await api.get<Evl>(api.evlPath('grow')))?.spec.storage.size).toBe('64Mi');
    const ready = await waitFor(async () => {
      const x = await api.get<Evl>(api.evlPath('grow'));
      return cond(x, 'Ready')?.status === 'True' && x?.status?.storage?.capacity === '96Mi' ? x : undefined;
    }, { message: 'EventLog grow to be Ready on 96Mi', timeoutMs: 120_000, intervalMs: 300 });
    console.log(`[storage] auto-grow start -> Ready on 96Mi: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect(reason(ready, 'Drifted')).toBe('False/NoDrift');
    expect(ready.status?.storage?.filesystemBytes).toBeGreaterThan(90 * 1024 * 1024);
    expect(await readAll('grow')).toEqual(acked);
  });
});

describe('a PVC grown by a person', () => {
  it('is capacity, not drift, and is never shrunk; the file-system resize waits for a pod restart', async () => {
    await api.create('manual', {}, { size: '64Mi' });
    await api.waitReady('manual');
    await api.http.json('PATCH', api.corePath('persistentvolumeclaims', 'manual-data'), {
      contentType: 'application/merge-patch+json',
      body: { spec: { resources: { requests: { storage: '96Mi' } } } },
    });
    const pending = await waitFor(async () => {
      const x = await api.get<Evl>(api.evlPath('manual'));
      return cond(x, 'Reconciling')?.reason === 'FileSystemResizePending' ? x : undefined;
    }, { message: 'EventLog manual to show FileSystemResizePending', timeoutMs: 60_000, intervalMs: 300 });
    expect(cond(pending, 'Reconciling')?.message).toMatch(/restartPodForResize/);
    expect(reason(pending, 'Drifted')).toBe('False/NoDrift');
    // The user restarts the pod, as the message says.
    const pod = await api.get<Pod>(api.corePath('pods', 'manual-0'));
    await api.http.json('DELETE', api.corePath('pods', 'manual-0'));
    const after = await waitFor(async () => {
      const x = await api.get<Evl>(api.evlPath('manual'));
      return cond(x, 'Ready')?.status === 'True' && x?.status?.storage?.capacity === '96Mi' && x.status.pod?.uid !== pod?.metadata.uid ? x : undefined;
    }, { message: 'EventLog manual to be Ready on 96Mi', timeoutMs: 120_000, intervalMs: 300 });
    expect(after.status?.storage?.requested).toBe('96Mi');
    // The deleted pod was put back (that is drift, corrected); the larger PVC never was drift.
    expect(cond(after, 'Drifted')?.status).toBe('False');
    expect(cond(after, 'Drifted')?.message ?? '').not.toMatch(/PersistentVolumeClaim/);
    expect(after.status?.drift?.items ?? []).toEqual([]);
    const pvc = await api.get<Pvc>(api.corePath('persistentvolumeclaims', 'manual-data'));
    expect(pvc?.spec.resources.requests.storage).toBe('96Mi');
  });
});

describe('retention', () => {
  it('keeps the log under its limit while appends continue; a reader behind the first kept sequence gets 410', async () => {
    await api.create('retained', { retention: { maxBytes: '8Mi' } }, { size: '64Mi' });
    await api.waitReady('retained');
    const { base, auth } = await server('retained');
    const pad = 'y'.repeat(900);
    let last = 0;
    for (let i = 0; i < 150; i++) {
      const lines = Array.from({ length: 200 }, (_, j) => JSON.stringify({ n: i * 1000 + j, pad })).join('\n');
      const res = await fetch(`${base}/events`, { method: 'POST', headers: { ...auth, 'content-type': 'application/x-ndjson' }, body: lines });
      expect(res.status).toBe(201);
      const stored = (await res.json()) as { sequence: number }[];
      last = stored[stored.length - 1]!.sequence;
    }
    const e = await waitFor(async () => {
      const x = await api.get<Evl>(api.evlPath('retained'));
      return (x?.status?.log?.firstSequence ?? 1) > 1 && x?.status?.log?.lastSequence === last ? x : undefined;
    }, { message: 'status.log to show what retention kept', timeoutMs: 60_000, intervalMs: 300 });
    // ~28 MB appended; the log stays near 8 MiB (at most one segment over: only whole sealed segments go).
    expect(e.status?.log?.bytes).toBeLessThan(16 * 1024 * 1024);
    expect(e.status?.log?.removedBytes).toBeGreaterThan(10 * 1024 * 1024);
    expect(cond(e, 'Ready')?.status).toBe('True');
    const first = e.status!.log!.firstSequence!;
    const gone = await fetch(`${base}/events?after=0&limit=10`, { headers: auth });
    expect(gone.status).toBe(410);
    expect(((await gone.json()) as { firstSequence: number }).firstSequence).toBe(first);
    const page = await fetch(`${base}/events?after=${first - 1}&limit=1`, { headers: auth });
    expect(page.status).toBe(200);
    expect((JSON.parse((await page.text()).trim()) as { sequence: number }).sequence).toBe(first);
  });
});
