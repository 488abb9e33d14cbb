/**
 * Issue 5 end to end: health, recovery outcomes and drift in EventLog status, against
 * the shared control plane (real kube-apiserver) and real `eventlog-server` processes
 * run by the node agent. The operator (a Manager with the EventLog controller) runs
 * in-process with short poll intervals. What operator.test.ts already covers (create ->
 * Ready, pod deleted, steady state writes nothing, corruption + approved repair, Service
 * label/port drift, suspend, retention) is not repeated here.
 *
 * Processes: the log server's pid comes from the pod's `containerID` (`process://PID`,
 * set by the node agent) and is checked against /proc before it is signalled; the only
 * process this file starts itself (a lock holder) is tracked by pid and stopped by pid.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventLogStatus } from '../../src/api/eventlog.ts';
import { KubeHttp, statusCodeOf } from '../../src/runtime/kube-http.ts';
import { ensureEventLogCrd, freshNamespace, kubeConfigFromInject, waitFor, type FreshNamespace } from './helpers.ts';
import { EventLogApi, startInProcessOperator, type InProcessOperator } from './operator-helpers.ts';
import { TOOL_BUILD_TIMEOUT_MS } from '../support/go-tools.ts';
import { ensureKStatus, kstatusOf } from '../support/kstatus.ts';

const run = promisify(execFile);
const POLL_MS = 1_000;
const COUNTER_INTERVAL_MS = 3_000;

let kc: KubeConfig;
let ns: FreshNamespace;
let http: KubeHttp;
let operator: InProcessOperator | undefined;

type Meta = { name: string; uid: string; resourceVersion: string; generation?: number; labels?: Record<string, string>; deletionTimestamp?: string; managedFields?: unknown[] };
type ContainerStatus = {
  name: string;
  image?: string;
  restartCount?: number;
  containerID?: string;
  state?: { running?: unknown; waiting?: { reason?: string }; terminated?: unknown };
};
type Pod = { metadata: Meta; spec: { containers: { name: string; image: string }[] }; status?: { podIP?: string; phase?: string; containerStatuses?: ContainerStatus[] } };
type Evl = { metadata: Meta; status?: EventLogStatus };
type KEvent = { reason: string; type: string; note?: string; regarding: { uid: string }; series?: { count: number } };

const evlPath = (name = '') => `/apis/eventlog.dev/v1alpha1/namespaces/${ns.name}/eventlogs${name ? `/${name}` : ''}`;
const corePath = (plural: string, name: string) => `/api/v1/namespaces/${ns.name}/${plural}/${name}`;
const kubectl = (...args: string[]) => run('/usr/bin/kubectl', [...args, '-n', ns.name], { env: { ...process.env } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function get<T>(path: string): Promise<T | undefined> {
  try {
    return await http.json<T>('GET', path);
  } catch (error) {
    if (statusCodeOf(error) === 404) return undefined;
    throw error;
  }
}
const getEvl = (name: string) => get<Evl>(evlPath(name));
const getPod = (name: string) => get<Pod>(corePath('pods', `${name}-0`));
const cond = (e: Evl | undefined, type: string) => e?.status?.conditions?.find((c) => c.type === type);

async function createEventLog(name: string, spec: Record<string, unknown> = {}): Promise<Evl> {
  return http.json<Evl>('POST', evlPath(), {
    body: { apiVersion: 'eventlog.dev/v1alpha1', kind: 'EventLog', metadata: { name }, spec: { storage: { size: '64Mi', retentionPolicy: 'Delete' }, ...spec } },
  });
}

async function patchSpec(name: string, spec: Record<string, unknown>): Promise<Evl> {
  return http.json<Evl>('PATCH', evlPath(name), { contentType: 'application/merge-patch+json', body: { spec } });
}

async function waitReady(name: string, message: string, extra: (e: Evl) => boolean = () => true): Promise<Evl> {
  return waitFor(
    async () => {
      const e = await getEvl(name);
      const ready = cond(e, 'Ready');
      return e && ready?.status === 'True' && ready.observedGeneration === e.metadata.generation && extra(e) ? e : undefined;
    },
    { message, timeoutMs: 120_000, intervalMs: 300 },
  );
}

async function eventsFor(uid: string): Promise<KEvent[]> {
  const list = await http.json<{ items: KEvent[] }>('GET', `/apis/events.k8s.io/v1/namespaces/${ns.name}/events`);
  return list.items.filter((e) => e.regarding.uid === uid);
}

/** `Authorization` for the log server of EventLog `name`: its token Secret `<name>-token`, when there is one. */
async function authHeaders(name: string): Promise<Record<string, string>> {
  const secret = await get<{ data?: Record<string, string> }>(corePath('secrets', `${name}-token`));
  const token = secret?.data?.token;
  return token ? { authorization: `Bearer ${Buffer.from(token, 'base64').toString('utf8').trim()}` } : {};
}

async function postEvent(ip: string, auth: Record<string, string>, body: unknown): Promise<{ id: string; sequence: number }> {
  const r = await fetch(`http://${ip}:8080/events`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify(body) });
  if (r.status !== 201) throw new Error(`POST /events on ${ip}: ${r.status} ${await r.text()}`);
  return (await r.json()) as { id: string; sequence: number };
}

/** The host directory of the PV bound to `<name>-data` (the log server's data dir). */
async function dataDirOf(name: string): Promise<string> {
  const pvc = await get<{ spec: { volumeName: string } }>(corePath('persistentvolumeclaims', `${name}-data`));
  const pv = await http.json<{ spec: { local?: { path: string }; hostPath?: { path: string } } }>('GET', `/api/v1/persistentvolumes/${pvc!.spec.volumeName}`);
  return pv.spec.local?.path ?? pv.spec.hostPath!.path;
}

/**
 * The pid of the running log server of pod `<name>-0`, from its containerID
 * (`process://PID`), checked in /proc to be an eventlog-server on this EventLog's volume.
 */
async function serverPid(name: string): Promise<number> {
  const dir = await dataDirOf(name);
  return waitFor(
    async () => {
      const pod = await getPod(name);
      const cs = pod?.status?.containerStatuses?.find((c) => c.name === 'server');
      const m = /^process:\/\/(\d+)$/.exec(cs?.containerID ?? '');
      if (!cs?.state?.running || !m) return undefined;
      const pid = Number(m[1]);
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return cmdline.some((a) => a.includes('eventlog-server')) && cmdline.includes(dir) ? pid : undefined;
    },
    { message: `the server process of pod ${name}-0`, timeoutMs: 60_000 },
  );
}

function startManager(): void {
  operator = startInProcessOperator({ kc, namespaces: [ns.name], identity: 'operator-health-test', pollMs: POLL_MS, statusCounterIntervalMs: COUNTER_INTERVAL_MS });
}

async function stopManager(): Promise<void> {
  await operator?.stop();
  operator = undefined;
}

beforeAll(() => ensureKStatus(), TOOL_BUILD_TIMEOUT_MS);

beforeAll(async () => {
  kc = kubeConfigFromInject();
  await ensureEventLogCrd(kc);
  ns = await freshNamespace('operator-health');
  http = new KubeHttp(kc);
  startManager();
});

afterAll(async () => {
  if (!operator && ns) startManager(); // a failed test may have left it stopped
  if (ns) await new EventLogApi(http, ns.name).deleteAll();
  await stopManager();
  await ns?.cleanup();
});

describe('recovery outcomes', () => {
  it('SIGKILL during appends: the restarted server recovers every acknowledged event; status, Event and metric say what recovery found', async () => {
    await createEventLog('crashy');
    const before = await waitReady('crashy', 'EventLog crashy to become Ready', (e) => (e.status?.recovery?.history?.length ?? 0) === 1);
    expect(before.status?.recovery?.lastOutcome).toBe('Clean');
    const firstBoot = before.status!.recovery!.history![0]!.bootId;
    const pod = (await getPod('crashy'))!;
    const ip = pod.status!.podIP!;
    const pid = await serverPid('crashy');
    const auth = await authHeaders('crashy');

    // Four clients append until the kill; every 201 is an acknowledged event.
    const acked = new Map<string, { n: number }>();
    let stop = false;
    let n = 0;
    const clients = Array.from({ length: 4 }, async () => {
      while (!stop) {
        const mine = ++n;
        try {
          const ev = await postEvent(ip, auth, { type: 'tick', n: mine, text: 'ünïcødé ✓ '.repeat(1 + (mine % 7)) });
          acked.set(ev.id, { n: mine });
        } catch {
          if (stop) return;
          await sleep(20);
        }
      }
    });
    await waitFor(() => acked.size >= 200, { message: '200 acknowledged appends', timeoutMs: 60_000, intervalMs: 10 });
    process.kill(pid, 'SIGKILL');
    stop = true;
    await Promise.all(clients);
    const ackedCount = acked.size;

    // The agent restarts the container; the operator records the new boot's recovery.
    const after = await waitReady('crashy', 'EventLog crashy to be Ready after the SIGKILL', (e) => {
      const h = e.status?.recovery?.history ?? [];
      return h.length === 2 && h[0]!.bootId !== firstBoot;
    });
    const rec = after.status!.recovery!;
    expect(['Clean', 'TornTailTruncated']).toContain(rec.lastOutcome);
    expect(rec.recordsRecovered).toBeGreaterThanOrEqual(ackedCount);
    if (rec.lastOutcome === 'Clean') expect(rec.bytesTruncated).toBe(0);
    else expect(rec.bytesTruncated).toBeGreaterThan(0);
    expect(rec.history![0]).toMatchObject({ outcome: rec.lastOutcome, recordsRecovered: rec.recordsRecovered, bytesTruncated: rec.bytesTruncated });
    expect(rec.history![1]).toMatchObject({ bootId: firstBoot, outcome: 'Clean' });
    expect(cond(after, 'Recovered')).toMatchObject({ status: 'True', reason: rec.lastOutcome });
    expect(after.status?.pod?.restarts).toBe(1);
    expect(after.status?.pod?.bootId).toBe(rec.history![0]!.bootId);
    expect(after.status?.pod?.lastTermination).toMatchObject({ exitCode: 137, signal: 9 });

    // One Event for the new recovery, of the type docs/controller.md gives.
    const reason = rec.lastOutcome === 'Clean' ? 'RecoveredClean' : 'TornTailTruncated';
    const events = await waitFor(
      async () => {
        const list = (await eventsFor(after.metadata.uid)).filter((e) => e.reason === reason && e.note?.includes(rec.history![0]!.bootId));
        return list.length > 0 ? list : undefined;
      },
      { message: `a ${reason} Event for the new boot`, timeoutMs: 30_000 },
    );
    expect(events).toHaveLength(1);
    expect(events[0]!.type).toBe(reason === 'RecoveredClean' ? 'Normal' : 'Warning');

    // Every acknowledged event is still there, byte for byte what the server stored.
    const newIp = (await getPod('crashy'))!.status!.podIP!;
    for (const [id, { n: mine }] of acked) {
      const r = await fetch(`http://${newIp}:8080/events/${id}`, { headers: auth });
      expect(r.status, `acknowledged event ${id}`).toBe(200);
      expect(await r.json()).toMatchObject({ id, type: 'tick', n: mine });
    }

    // The same boot is never recorded twice: more polls, same history.
    await sleep(4 * POLL_MS);
    const later = await getEvl('crashy');
    expect(later?.status?.recovery?.history?.map((h) => h.bootId)).toEqual(rec.history!.map((h) => h.bootId));
    expect((await eventsFor(after.metadata.uid)).filter((e) => e.reason === 'RecoveredClean' || e.reason === 'TornTailTruncated').length).toBe(2);

    // The operator counts recoveries by outcome on /metrics.
    const metrics = await (await fetch(`${operator!.manager.metricsUrl}/metrics`)).text();
    const outcomeSeries = (outcome: string) => Number(new RegExp(`^eventlog_recoveries_total\\{[^}]*outcome="${outcome}"[^}]*\\} (\\d+)`, 'm').exec(metrics)?.[1] ?? NaN);
    expect(metrics).toContain('# TYPE eventlog_recoveries_total counter');
    if (rec.lastOutcome === 'Clean') expect(outcomeSeries('Clean')).toBeGreaterThanOrEqual(2);
    else expect(outcomeSeries('TornTailTruncated')).toBeGreaterThanOrEqual(1);
  });

  it('a crash loop (another process holds the data-dir lock) fills restarts and lastTermination and is Stalled; when it ends, a torn tail left meanwhile is cut off', async () => {
    await createEventLog('locked');
    const ready = await waitReady('locked', 'EventLog locked to become Ready');
    const ip = (await getPod('locked'))!.status!.podIP!;
    const auth = await authHeaders('locked');
    const stored = [];
    for (const n of [1, 2, 3]) stored.push(await postEvent(ip, auth, { type: 'before-the-loop', n }));
    const dir = await dataDirOf('locked');
    const pid = await serverPid('locked');
    // A live process of ours "holds" the lock, as a second server on the volume would.
    const holder: ChildProcess = spawn('sleep', ['600'], { stdio: 'ignore' });
    try {
      const hp = holder.pid!;
      const stat = readFileSync(`/proc/${hp}/stat`, 'utf8');
      const processStart = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
      writeFileSync(join(dir, 'LOCK'), JSON.stringify({ pid: hp, processStart, hostname: hostname(), acquiredAt: new Date().toISOString() }) + '\n');
      process.kill(pid, 'SIGKILL');

      const stalled = await waitFor(
        async () => {
          const e = await getEvl('locked');
          return cond(e, 'Stalled')?.status === 'True' ? e : undefined;
        },
        { message: 'EventLog locked to be Stalled by the crash loop', timeoutMs: 120_000, intervalMs: 300 },
      );
      expect(cond(stalled, 'Stalled')).toMatchObject({ reason: 'ContainerCrashLooping', observedGeneration: stalled.metadata.generation });
      expect(cond(stalled, 'Stalled')?.message).toContain(`is locked by pid ${hp}`);
      expect(cond(stalled, 'Ready')).toMatchObject({ status: 'False', reason: 'ContainerCrashLooping' });
      expect(cond(stalled, 'Reconciling')?.status).toBe('False');
      expect(stalled.status?.phase).toBe('Stalled');
      expect(stalled.status?.pod?.restarts).toBeGreaterThanOrEqual(3);
      // Flux (kstatus, the real library) fails the health check at once on it.
      expect(await kstatusOf(stalled)).toMatchObject({ status: 'Failed', message: cond(stalled, 'Stalled')?.message });
      const last = stalled.status?.pod?.lastTermination;
      expect(last).toMatchObject({ exitCode: 1, reason: 'Error' });
      expect(last?.message).toContain(`is locked by pid ${hp}`);
      expect(last?.finishedAt).toBeTruthy();

      // kstatus: Stalled stays True (same lastTransitionTime) through further restarts.
      const since = cond(stalled, 'Stalled')!.lastTransitionTime;
      const restarts = stalled.status!.pod!.restarts!;
      const seen: string[] = [];
      const more = await waitFor(
        async () => {
          const e = await getEvl('locked');
          const s = cond(e, 'Stalled');
          if (s?.status !== 'True' || s.lastTransitionTime !== since) seen.push(`${s?.status}/${s?.reason} since ${s?.lastTransitionTime}`);
          return (e?.status?.pod?.restarts ?? 0) >= restarts + 2 ? e : undefined;
        },
        { message: 'two more restarts in the crash loop', timeoutMs: 120_000, intervalMs: 200 },
      );
      expect(seen).toEqual([]);
      expect(cond(more, 'Ready')?.status).toBe('False');
      const stalledEvents = (await eventsFor(ready.metadata.uid)).filter((e) => e.reason === 'Stalled' || e.reason === 'Unstalled');
      expect(stalledEvents.map((e) => e.reason)).toEqual(['Stalled']);

      // No server runs now: leave a partial record at the end of the log, as a crash in
      // the middle of an append would (the first 20 bytes of a record header).
      const segDir = join(dir, 'segments');
      const segment = join(segDir, readdirSync(segDir).filter((f) => f.endsWith('.seg')).sort().at(-1)!);
      appendFileSync(segment, readFileSync(segment).subarray(0, 20));
    } finally {
      holder.kill('SIGKILL');
    }

    // The lock holder is gone: the next restart takes the stale lock over, cuts the torn
    // tail off, and serves again.
    const back = await waitReady('locked', 'EventLog locked to be Ready once the lock is free', (e) => cond(e, 'Stalled')?.status === 'False' && e.status?.recovery?.lastOutcome === 'TornTailTruncated');
    expect(cond(back, 'Stalled')?.reason).toBe('NotStalled');
    expect(await kstatusOf(back)).toMatchObject({ status: 'Current', message: 'Resource is Ready' });
    expect(cond(back, 'Recovered')).toMatchObject({ status: 'True', reason: 'TornTailTruncated' });
    expect(back.status?.recovery).toMatchObject({ lastOutcome: 'TornTailTruncated', recordsRecovered: 3, bytesTruncated: 20 });
    expect(back.status?.recovery?.history?.map((h) => h.outcome)).toEqual(['TornTailTruncated', 'Clean']);
    const events = await waitFor(
      async () => {
        const ev = await eventsFor(ready.metadata.uid);
        return ev.some((e) => e.reason === 'Unstalled') && ev.some((e) => e.reason === 'TornTailTruncated') ? ev : undefined;
      },
      { message: 'Unstalled and TornTailTruncated Events', timeoutMs: 30_000 },
    );
    expect(events.find((e) => e.reason === 'TornTailTruncated')).toMatchObject({ type: 'Warning', note: expect.stringContaining('20 bytes kept aside') });
    const newIp = (await getPod('locked'))!.status!.podIP!;
    for (const e of stored) expect((await fetch(`http://${newIp}:8080/events/${e.id}`, { headers: auth })).status).toBe(200);
    // The log is appendable again after the cut.
    expect((await postEvent(newIp, auth, { type: 'after-the-loop' })).sequence).toBe(4);
    await http.json('DELETE', evlPath('locked'));
  });
});

describe('drift on the pod and the Service', () => {
  it('pod labels: put back under Correct; left and reported with the exact field under Report', async () => {
    await createEventLog('podlabels');
    await waitReady('podlabels', 'EventLog podlabels to become Ready');
    const path = 'metadata.labels["app.kubernetes.io/component"]';

    await kubectl('label', 'pod/podlabels-0', 'app.kubernetes.io/component=hacked', '--overwrite');
    const corrected = await waitFor(
      async () => {
        const e = await getEvl('podlabels');
        return (e?.status?.drift?.corrections ?? 0) >= 1 ? e : undefined;
      },
      { message: 'the pod label drift to be corrected', timeoutMs: 60_000 },
    );
    expect(cond(corrected, 'Drifted')).toMatchObject({ status: 'False', reason: 'DriftCorrected' });
    expect(cond(corrected, 'Drifted')?.message).toContain(`Pod podlabels-0 ${path}`);
    expect(corrected.status?.drift?.lastCorrectedAt).toBeTruthy();
    await waitFor(async () => (await getPod('podlabels'))?.metadata.labels?.['app.kubernetes.io/component'] === 'log-server', { message: 'the pod label to be put back' });
    const uid = corrected.metadata.uid;
    await waitFor(
      async () => {
        const ev = await eventsFor(uid);
        return ev.some((e) => e.reason === 'DriftDetected' && e.type === 'Warning' && e.note?.includes(path)) && ev.some((e) => e.reason === 'DriftCorrected' && e.type === 'Normal');
      },
      { message: 'DriftDetected and DriftCorrected Events', timeoutMs: 30_000 },
    );

    await patchSpec('podlabels', { driftPolicy: 'Report' });
    await waitReady('podlabels', 'EventLog podlabels to be Ready for the new generation');
    await kubectl('label', 'pod/podlabels-0', 'app.kubernetes.io/component=hacked-again', '--overwrite');
    const reported = await waitFor(
      async () => {
        const e = await getEvl('podlabels');
        return cond(e, 'Drifted')?.status === 'True' ? e : undefined;
      },
      { message: 'the pod label drift to be reported', timeoutMs: 60_000 },
    );
    expect(cond(reported, 'Drifted')).toMatchObject({ reason: 'DriftDetected', observedGeneration: reported.metadata.generation });
    expect(cond(reported, 'Drifted')?.message).toContain(`Pod podlabels-0 ${path}: left in place (driftPolicy Report)`);
    const items = reported.status?.drift?.items ?? [];
    expect(items).toEqual([expect.objectContaining({ kind: 'Pod', name: 'podlabels-0', path, expected: 'log-server', actual: 'hacked-again' })]);
    expect(items[0]!.firstSeen).toBeTruthy();
    expect(reported.status?.drift?.detected).toBe(true);
    expect(reported.status?.drift?.corrections).toBe(corrected.status?.drift?.corrections);
    // Left alone, and still reported (firstSeen kept) over further passes.
    await sleep(3 * POLL_MS);
    expect((await getPod('podlabels'))?.metadata.labels?.['app.kubernetes.io/component']).toBe('hacked-again');
    const still = await getEvl('podlabels');
    expect(still?.status?.drift?.items).toEqual(items);
    expect(cond(still, 'Ready')?.status).toBe('True');

    // Putting it back by hand ends the drift.
    await kubectl('label', 'pod/podlabels-0', 'app.kubernetes.io/component=log-server', '--overwrite');
    const clean = await waitFor(
      async () => {
        const e = await getEvl('podlabels');
        return cond(e, 'Drifted')?.status === 'False' ? e : undefined;
      },
      { message: 'Drifted=False once the label matches again', timeoutMs: 60_000 },
    );
    expect(clean.status?.drift?.detected).toBe(false);
    expect(clean.status?.drift?.items).toBeUndefined();

    // Removing the label the operator watches by (managed-by) hides the pod from its
    // cache: still the same pod, reported as a label change, not as a deleted pod.
    const before = (await getPod('podlabels'))!;
    await kubectl('label', 'pod/podlabels-0', 'app.kubernetes.io/managed-by-');
    const unwatched = await waitFor(
      async () => {
        const e = await getEvl('podlabels');
        return cond(e, 'Drifted')?.status === 'True' ? e : undefined;
      },
      { message: 'the removed managed-by label to be reported', timeoutMs: 60_000 },
    );
    expect(unwatched.status?.drift?.items).toEqual([
      expect.objectContaining({ kind: 'Pod', name: 'podlabels-0', path: 'metadata.labels["app.kubernetes.io/managed-by"]', expected: 'eventlog-operator' }),
    ]);
    await sleep(3 * POLL_MS);
    const left = (await getPod('podlabels'))!;
    expect(left.metadata.uid).toBe(before.metadata.uid);
    expect(left.metadata.labels?.['app.kubernetes.io/managed-by']).toBeUndefined();
    expect(cond(await getEvl('podlabels'), 'Ready')?.status).toBe('True');
    // Correct puts it back, on the same pod.
    await patchSpec('podlabels', { driftPolicy: 'Correct' });
    await waitFor(async () => (await getPod('podlabels'))?.metadata.labels?.['app.kubernetes.io/managed-by'] === 'eventlog-operator', { message: 'the managed-by label to be put back', timeoutMs: 60_000 });
    expect((await getPod('podlabels'))?.metadata.uid).toBe(before.metadata.uid);
    await waitReady('podlabels', 'EventLog podlabels to be Ready with the label put back', (e) => cond(e, 'Drifted')?.status === 'False');
    await http.json('DELETE', evlPath('podlabels'));
  });

  it('pod image: reported and left under Report; put back under Correct, the server back on its image with its data', async () => {
    await createEventLog('podimage', { driftPolicy: 'Report' });
    await waitReady('podimage', 'EventLog podimage to become Ready');
    const ip = (await getPod('podimage'))!.status!.podIP!;
    const auth = await authHeaders('podimage');
    const stored = await postEvent(ip, auth, { type: 'keep-me' });
    const imagePath = 'spec.containers[name=server].image';

    await kubectl('set', 'image', 'pod/podimage-0', 'server=eventlog:other');
    const reported = await waitFor(
      async () => {
        const e = await getEvl('podimage');
        return cond(e, 'Drifted')?.status === 'True' ? e : undefined;
      },
      { message: 'the pod image drift to be reported', timeoutMs: 60_000 },
    );
    expect(reported.status?.drift?.items).toEqual([expect.objectContaining({ kind: 'Pod', name: 'podimage-0', path: imagePath, expected: 'eventlog:dev', actual: 'eventlog:other' })]);
    expect(cond(reported, 'Drifted')?.message).toContain('left in place (driftPolicy Report)');
    await sleep(3 * POLL_MS);
    expect((await getPod('podimage'))?.spec.containers[0]?.image).toBe('eventlog:other');

    const podUid = reported.status?.pod?.uid;
    await patchSpec('podimage', { driftPolicy: 'Correct' });
    const corrected = await waitReady('podimage', 'EventLog podimage to be Ready with the image put back', (e) => (e.status?.drift?.corrections ?? 0) >= 1 && cond(e, 'Drifted')?.status === 'False');
    expect(cond(corrected, 'Drifted')).toMatchObject({ reason: 'DriftCorrected' });
    expect(cond(corrected, 'Drifted')?.message).toContain(`Pod podimage-0 ${imagePath}`);
    const pod = await waitFor(
      async () => {
        const p = await getPod('podimage');
        const cs = p?.status?.containerStatuses?.[0];
        return p?.spec.containers[0]?.image === 'eventlog:dev' && cs?.image === 'eventlog:dev' && cs.state?.running ? p : undefined;
      },
      { message: 'the server running eventlog:dev again', timeoutMs: 90_000 },
    );
    // The image is a mutable pod field: corrected in place on the same pod (the kubelet
    // restarts the container), which mounts the same PVC.
    expect(pod.metadata.uid).toBe(podUid);
    expect(corrected.status?.storage?.pvcName).toBe('podimage-data');
    const read = await fetch(`http://${pod.status!.podIP}:8080/events/${stored.id}`, { headers: auth });
    expect(read.status).toBe(200);
    expect(await read.json()).toMatchObject({ id: stored.id, type: 'keep-me' });
    await http.json('DELETE', evlPath('podimage'));
  });

  it('a deleted Service is recreated and counted as a correction', async () => {
    await createEventLog('svcgone');
    const ready = await waitReady('svcgone', 'EventLog svcgone to become Ready');
    const oldSvc = await get<{ metadata: Meta }>(corePath('services', 'svcgone'));
    await http.json('DELETE', corePath('services', 'svcgone'));
    const corrected = await waitFor(
      async () => {
        const e = await getEvl('svcgone');
        return (e?.status?.drift?.corrections ?? 0) >= 1 ? e : undefined;
      },
      { message: 'the deleted Service to be recreated and counted', timeoutMs: 60_000 },
    );
    expect(corrected.status?.drift?.corrections).toBe(1);
    expect(cond(corrected, 'Drifted')).toMatchObject({ status: 'False', reason: 'DriftCorrected' });
    expect(cond(corrected, 'Drifted')?.message).toContain('Service svcgone deleted');
    const svc = await get<{ metadata: Meta; spec: { ports: { port: number }[] } }>(corePath('services', 'svcgone'));
    expect(svc?.metadata.uid).not.toBe(oldSvc?.metadata.uid);
    expect(svc?.spec.ports[0]?.port).toBe(8080);
    await waitReady('svcgone', 'EventLog svcgone to be Ready with the new Service');
    const ev = await eventsFor(ready.metadata.uid);
    expect(ev.some((e) => e.reason === 'DriftDetected' && e.note?.includes('Service svcgone deleted'))).toBe(true);
    expect(ev.some((e) => e.reason === 'DriftCorrected')).toBe(true);
    await http.json('DELETE', evlPath('svcgone'));
  });

  it('a Service port changed by someone else is put back under Correct: one port, 8080, no duplicate', async () => {
    await createEventLog('svcport');
    const ready = await waitReady('svcport', 'EventLog svcport to become Ready');
    // A JSON patch is an update by another field manager: server-side apply keys
    // Service ports by (port, protocol), so this is an item the operator never owned.
    await kubectl('patch', 'svc/svcport', '--type=json', '-p', '[{"op":"replace","path":"/spec/ports/0/port","value":9090}]');
    const corrected = await waitFor(
      async () => {
        const e = await getEvl('svcport');
        return (e?.status?.drift?.corrections ?? 0) >= 1 ? e : undefined;
      },
      { message: 'the Service port drift to be corrected', timeoutMs: 60_000 },
    );
    expect(cond(corrected, 'Drifted')).toMatchObject({ status: 'False', reason: 'DriftCorrected' });
    expect(cond(corrected, 'Drifted')?.message).toContain('spec.ports[name=http].port');
    const svc = await get<{ spec: { ports: { name: string; port: number; protocol: string }[] } }>(corePath('services', 'svcport'));
    // One port: a forced apply alone would add 8080 beside the foreign 9090 item (both
    // named "http": 422, CorrectionFailed) and the drift would never be corrected.
    expect(svc?.spec.ports).toEqual([expect.objectContaining({ name: 'http', port: 8080, protocol: 'TCP' })]);
    const ev = await eventsFor(ready.metadata.uid);
    expect(ev.some((e) => e.reason === 'DriftDetected' && e.note?.includes('spec.ports[name=http].port: expected 8080, found 9090'))).toBe(true);
    expect(ev.some((e) => e.reason === 'DriftCorrected')).toBe(true);
    await waitReady('svcport', 'EventLog svcport to stay Ready');
    await http.json('DELETE', evlPath('svcport'));
  });
});

describe('kubectl wait and status write rate', () => {
  it('kubectl wait --for=condition=Ready passes on a Ready EventLog, and not on a Ready left from an older generation', async () => {
    await createEventLog('waitme');
    await waitReady('waitme', 'EventLog waitme to become Ready');
    const ok = await kubectl('wait', '--for=condition=Ready', 'evl/waitme', '--timeout=60s');
    expect(ok.stdout).toContain('condition met');

    // Operator stopped: a spec change (new generation) leaves the old generation's Ready=True.
    await stopManager();
    try {
      const changed = await patchSpec('waitme', { podTemplate: { labels: { tier: 'gold' } } });
      const stale = (await getEvl('waitme'))!;
      expect(changed.metadata.generation).toBeGreaterThan(cond(stale, 'Ready')!.observedGeneration!);
      expect(cond(stale, 'Ready')?.status).toBe('True');
      const waited = await kubectl('wait', '--for=condition=Ready', 'evl/waitme', '--timeout=4s').then(
        (r) => ({ code: 0, out: r.stdout + r.stderr }),
        (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }),
      );
      expect(waited.code, waited.out).not.toBe(0);
      expect(waited.out).toMatch(/timed out/);
    } finally {
      startManager();
    }
    // The operator rolls the pod out for the new generation; then Ready holds again.
    const rolled = await kubectl('wait', '--for=condition=Ready', 'evl/waitme', '--timeout=120s');
    expect(rolled.stdout).toContain('condition met');
    const now = await getEvl('waitme');
    expect(cond(now, 'Ready')?.observedGeneration).toBe(now?.metadata.generation);
    expect((await getPod('waitme'))?.metadata.labels?.tier).toBe('gold');
    await http.json('DELETE', evlPath('waitme'));
  });

  it('with appends going on, counters are written at most once per statusCounterInterval', async () => {
    await createEventLog('busy');
    const ready = await waitReady('busy', 'EventLog busy to become Ready', (e) => cond(e, 'Recovered')?.status === 'True');
    const ip = (await getPod('busy'))!.status!.podIP!;
    const auth = await authHeaders('busy');

    // Watch the EventLog: every status write is one MODIFIED event.
    const writes: Evl[] = [];
    const abort = new AbortController();
    const watching = http
      .stream(evlPath(), {
        query: { watch: 'true', resourceVersion: ready.metadata.resourceVersion, fieldSelector: 'metadata.name=busy' },
        signal: abort.signal,
        onLine: (line) => {
          const ev = JSON.parse(line) as { type: string; object: Evl };
          if (ev.type === 'MODIFIED') writes.push(ev.object);
        },
      })
      .catch((e: unknown) => e);
    let appended = 0;
    const until = Date.now() + 4 * COUNTER_INTERVAL_MS;
    while (Date.now() < until) {
      await postEvent(ip, auth, { type: 'busy', n: ++appended });
      await sleep(50);
    }
    await sleep(COUNTER_INTERVAL_MS + 2 * POLL_MS);
    abort.abort();
    expect(await watching).toBeUndefined();

    expect(writes.length).toBeGreaterThanOrEqual(2);
    // The write before the window is the baseline of the first interval.
    if (ready.status?.log?.updatedAt) writes.unshift(ready);
    const stamps = writes.map((w) => Date.parse(w.status!.log!.updatedAt!));
    for (let i = 1; i < writes.length; i++) {
      // Only counters change here, so each write carries new counters (the log's, or the
      // volume's: the file system may allocate a block after the last append), at least
      // the interval apart.
      const [prev, next] = [writes[i - 1]!.status!, writes[i]!.status!];
      const newCounters = next.log!.records! > prev.log!.records! || next.storage?.usedBytes !== prev.storage?.usedBytes;
      expect(newCounters, changedFields(prev, next)).toBe(true);
      expect(next.log!.records!).toBeGreaterThanOrEqual(prev.log!.records!);
      expect(stamps[i]! - stamps[i - 1]!).toBeGreaterThanOrEqual(COUNTER_INTERVAL_MS);
      expect(cond(writes[i], 'Ready')?.lastTransitionTime).toBe(cond(ready, 'Ready')?.lastTransitionTime);
    }
    // The last write (after the appends stopped) carries the final count.
    expect(writes.at(-1)?.status?.log?.records).toBe(appended);
    await http.json('DELETE', evlPath('busy'));
  });
});

/** The status fields that differ between two writes, for a failure message. */
function changedFields(a: unknown, b: unknown, path = 'status'): string {
  if (JSON.stringify(a) === JSON.stringify(b)) return '';
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].map((k) => changedFields((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`)).filter(Boolean).join('; ');
  }
  return `${path}: ${JSON.stringify(a)} -> ${JSON.stringify(b)}`;
}
