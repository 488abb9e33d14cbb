/**
 * The node agent against the real control plane (started with the agent by
 * global-setup.ts): pods of the project's image run as real eventlog-server
 * processes on their own 127.1.x.y address.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, PatchStrategy, StorageV1Api, Watch, setHeaderOptions, type KubeConfig, type V1ContainerStatus, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNodeAgent, type NodeAgent } from '../../dev/agent/agent.ts';
import { freshNamespace, kubeConfigFromInject, statusOf, waitFor, type FreshNamespace } from './helpers.ts';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

let kc: KubeConfig;
let core: CoreV1Api;
let ns: FreshNamespace;

beforeAll(async () => {
  kc = kubeConfigFromInject();
  core = kc.makeApiClient(CoreV1Api);
  ns = await freshNamespace('agent');
});

afterAll(async () => {
  await ns?.cleanup();
});

function serverPod(name: string, opts: { claim?: string; args?: string[]; fallbackToLogs?: boolean; image?: string; livenessPath?: string; nodeName?: string } = {}): V1Pod {
  return {
    metadata: { name, labels: { app: 'agent-test' } },
    spec: {
      ...(opts.nodeName ? { nodeName: opts.nodeName } : {}),
      terminationGracePeriodSeconds: 10,
      containers: [
        {
          name: 'server',
          image: opts.image ?? 'eventlog:dev',
          command: ['eventlog-server'],
          args: opts.args ?? ['--data-dir', '/data', '--host', '$(POD_IP)', '--port', '8080', '--termination-message-path', '/dev/termination-log'],
          env: [
            { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
            { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          ],
          ports: [{ name: 'http', containerPort: 8080 }],
          readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 1, failureThreshold: 1 },
          livenessProbe: { httpGet: { path: opts.livenessPath ?? '/healthz', port: 'http' }, periodSeconds: opts.livenessPath ? 1 : 2, failureThreshold: opts.livenessPath ? 2 : 3 },
          // With a failing liveness path, hold liveness back until the server answers at all.
          ...(opts.livenessPath ? { startupProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 1, failureThreshold: 120 } } : {}),
          terminationMessagePolicy: opts.fallbackToLogs ? 'FallbackToLogsOnError' : 'File',
          volumeMounts: [{ name: 'data', mountPath: '/data' }],
        },
      ],
      volumes: [opts.claim ? { name: 'data', persistentVolumeClaim: { claimName: opts.claim } } : { name: 'data', emptyDir: {} }],
    },
  };
}

const readPod = (name: string): Promise<V1Pod> => core.readNamespacedPod({ name, namespace: ns.name });
const serverStatus = (pod: V1Pod): V1ContainerStatus | undefined => pod.status?.containerStatuses?.find((c) => c.name === 'server');
const pidOf = (s: V1ContainerStatus | undefined): number => {
  const m = /^process:\/\/(\d+)$/.exec(s?.containerID ?? '');
  if (!m) throw new Error(`no process pid in containerID ${JSON.stringify(s?.containerID)}`);
  return Number(m[1]);
};
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function waitReady(name: string, timeoutMs = 60_000): Promise<V1Pod> {
  return waitFor(
    async () => {
      const p = await readPod(name);
      const ready = p.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
      return ready && serverStatus(p)?.ready ? p : undefined;
    },
    { message: `pod ${name} to become Ready`, timeoutMs },
  );
}

async function waitGone(name: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    async () => {
      try {
        await readPod(name);
        return false;
      } catch (err) {
        if (statusOf(err) === 404) return true;
        throw err;
      }
    },
    { message: `pod ${name} to be removed`, timeoutMs },
  );
}

async function createClaim(name: string, size: string, storageClassName?: string): Promise<void> {
  await core.createNamespacedPersistentVolumeClaim({
    namespace: ns.name,
    body: {
      metadata: { name },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: size } }, ...(storageClassName ? { storageClassName } : {}) },
    },
  });
}

async function waitBound(name: string): Promise<void> {
  await waitFor(async () => (await core.readNamespacedPersistentVolumeClaim({ name, namespace: ns.name })).status?.phase === 'Bound', {
    message: `claim ${name} to be Bound`,
  });
}

describe('node agent', () => {
  it('registers a Ready node and the default StorageClass', async () => {
    const nodes = await core.listNode();
    const node = nodes.items.find((n) => n.metadata?.labels?.['eventlog.dev/local-agent'] === 'true');
    expect(node, 'agent node').toBeDefined();
    expect(node?.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(node?.status?.addresses).toContainEqual({ type: 'InternalIP', address: '127.0.0.1' });
    const sc = await kc.makeApiClient(StorageV1Api).readStorageClass({ name: 'eventlog-local' });
    expect(sc.metadata?.annotations?.['storageclass.kubernetes.io/is-default-class']).toBe('true');
    expect(sc.allowVolumeExpansion).toBe(true);
  });

  it('runs a log server pod: Ready on its own 127.x IP, restarted after a kill, stopped on delete', async () => {
    await core.createNamespacedPod({ namespace: ns.name, body: serverPod('web') });
    let pod = await waitReady('web');
    const ip = pod.status?.podIP ?? '';
    expect(ip).toMatch(/^127\.1\.\d+\.\d+$/);
    expect(pod.status?.podIPs).toEqual([{ ip }]);
    expect(pod.status?.hostIP).toBe('127.0.0.1');
    expect(pod.status?.phase).toBe('Running');
    expect(pod.spec?.nodeName).toBeTruthy();
    const types = pod.status?.conditions?.map((c) => `${c.type}=${c.status}`);
    expect(types).toEqual(expect.arrayContaining(['PodScheduled=True', 'Initialized=True', 'ContainersReady=True', 'Ready=True']));
    const healthz = await fetch(`http://${ip}:8080/healthz`);
    expect(healthz.status).toBe(200);

    // Kill the process: the agent records the exit and restarts it (first restart is immediate).
    const firstPid = pidOf(serverStatus(pod));
    expect(alive(firstPid)).toBe(true);
    process.kill(firstPid, 'SIGKILL');
    pod = await waitFor(
      async () => {
        const p = await readPod('web');
        const s = serverStatus(p);
        return s && s.restartCount >= 1 && s.ready ? p : undefined;
      },
      { message: 'pod web to be restarted and Ready again', timeoutMs: 60_000 },
    );
    const restarted = serverStatus(pod);
    expect(restarted?.lastState?.terminated?.exitCode).toBe(137);
    expect(restarted?.lastState?.terminated?.reason).toBe('Error');
    expect(restarted?.lastState?.terminated?.finishedAt).toBeTruthy();
    const secondPid = pidOf(restarted);
    expect(secondPid).not.toBe(firstPid);
    expect(pod.status?.podIP).toBe(ip); // same pod, same address
    expect((await fetch(`http://${ip}:8080/healthz`)).status).toBe(200);

    // Delete: SIGTERM, the process exits, then the object is removed.
    await core.deleteNamespacedPod({ name: 'web', namespace: ns.name });
    await waitGone('web');
    await waitFor(() => !alive(secondPid), { message: `process ${secondPid} to exit`, timeoutMs: 15_000 });
  });

  it('backs off a crash loop with CrashLoopBackOff and growing delays, and reports the exit', async () => {
    const seen: string[] = [];
    const watch = new Watch(kc);
    const ctrl = await watch.watch(
      `/api/v1/namespaces/${ns.name}/pods`,
      { fieldSelector: 'metadata.name=crashy' },
      (_type, obj: V1Pod) => {
        const w = obj.status?.containerStatuses?.[0]?.state?.waiting;
        if (w?.reason === 'CrashLoopBackOff' && w.message && seen.at(-1) !== w.message) seen.push(w.message);
      },
      () => undefined,
    );
    try {
      await core.createNamespacedPod({ namespace: ns.name, body: serverPod('crashy', { args: ['--data-dir', '/data', '--no-such-flag'], fallbackToLogs: true }) });
      const pod = await waitFor(
        async () => {
          const p = await readPod('crashy');
          const s = serverStatus(p);
          return s && s.restartCount >= 3 && s.state?.waiting?.reason === 'CrashLoopBackOff' ? p : undefined;
        },
        { message: 'pod crashy to be in CrashLoopBackOff after 3 restarts', timeoutMs: 90_000 },
      );
      const s = serverStatus(pod);
      expect(s?.ready).toBe(false);
      expect(s?.lastState?.terminated?.exitCode).toBe(2);
      expect(s?.lastState?.terminated?.reason).toBe('Error');
      // FallbackToLogsOnError: the message is the tail of the container's output.
      expect(s?.lastState?.terminated?.message).toContain('no-such-flag');
      expect(pod.status?.phase).toBe('Running'); // restartPolicy Always: still "running", restarting
      expect(pod.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('False');

      await waitFor(() => seen.length >= 2, { message: `two back-off messages (seen ${JSON.stringify(seen)})`, timeoutMs: 30_000 });
      const delays = seen.map((m) => {
        const d = /^back-off (\d+(?:\.\d+)?)(ms|s) restarting failed container=server pod=crashy_/.exec(m);
        if (!d) throw new Error(`unexpected back-off message ${m}`);
        return d[2] === 's' ? Number(d[1]) * 1000 : Number(d[1]);
      });
      for (let i = 1; i < delays.length; i++) expect(delays[i]).toBeGreaterThan(delays[i - 1]!);
    } finally {
      ctrl.abort();
    }
    await core.deleteNamespacedPod({ name: 'crashy', namespace: ns.name });
    await waitGone('crashy');
  });

  it('keeps data written through the pod across pod deletion and a new pod on the same claim', async () => {
    await createClaim('keep', '64Mi');
    await core.createNamespacedPod({ namespace: ns.name, body: serverPod('writer', { claim: 'keep' }) });
    const writer = await waitReady('writer');
    const post = await fetch(`http://${writer.status?.podIP}:8080/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'agent-test', note: 'survives the pod' }),
    });
    expect(post.status).toBe(201);
    const writerPid = pidOf(serverStatus(writer));

    await core.deleteNamespacedPod({ name: 'writer', namespace: ns.name });
    await waitGone('writer');
    expect(alive(writerPid)).toBe(false);

    await core.createNamespacedPod({ namespace: ns.name, body: serverPod('reader', { claim: 'keep' }) });
    const reader = await waitReady('reader');
    const res = await fetch(`http://${reader.status?.podIP}:8080/events`);
    expect(res.status).toBe(200);
    const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toEqual([expect.objectContaining({ type: 'agent-test', note: 'survives the pod' })]);
    await core.deleteNamespacedPod({ name: 'reader', namespace: ns.name });
    await waitGone('reader');
  });

  it("records the server's termination-message file in lastState.terminated.message", async () => {
    // A log with interior corruption: the server starts in state "corrupt" and writes
    // its report to the termination-message file; after the process dies the agent
    // puts the file's contents into lastState.terminated.message.
    await createClaim('damaged', '64Mi');
    await waitBound('damaged');
    await core.createNamespacedPod({ namespace: ns.name, body: serverPod('filler', { claim: 'damaged' }) });
    const filler = await waitReady('filler');
    for (let i = 0; i < 6; i++) {
      const r = await fetch(`http://${filler.status?.podIP}:8080/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ i }) });
      expect(r.status).toBe(201);
    }
    await core.deleteNamespacedPod({ name: 'filler', namespace: ns.name });
    await waitGone('filler');

    const claim = await core.readNamespacedPersistentVolumeClaim({ name: 'damaged', namespace: ns.name });
    const dir = (await core.readPersistentVolume({ name: claim.spec?.volumeName ?? '' })).spec?.local?.path ?? '';
    const segPath = join(dir, 'segments', (await readdir(join(dir, 'segments'))).sort()[0]!);
    const buf = await readFile(segPath);
    let off = 0;
    for (let i = 0; i < 2; i++) off += 8 + buf.readUInt32LE(off);
    buf[off + 60]! ^= 0x20; // flip a bit inside the third record
    await writeFile(segPath, buf);

    await core.createNamespacedPod({ namespace: ns.name, body: serverPod('damaged', { claim: 'damaged' }) });
    const running = await waitFor(
      async () => {
        const p = await readPod('damaged');
        if (!serverStatus(p)?.state?.running || !p.status?.podIP) return undefined;
        const st = (await (await fetch(`http://${p.status.podIP}:8080/status`)).json()) as { state?: string };
        return st.state === 'corrupt' ? p : undefined;
      },
      { message: 'pod damaged to run with a corrupt log', timeoutMs: 60_000 },
    );
    expect(serverStatus(running)?.ready).toBe(false); // /readyz is not ok on a corrupt log
    process.kill(pidOf(serverStatus(running)), 'SIGKILL');
    const after = await waitFor(
      async () => {
        const t = serverStatus(await readPod('damaged'))?.lastState?.terminated;
        return t?.message ? t : undefined;
      },
      { message: 'lastState.terminated.message of pod damaged', timeoutMs: 60_000 },
    );
    expect(after.exitCode).toBe(137);
    expect(JSON.parse(after.message ?? '')).toMatchObject({ state: 'corrupt', recovery: { outcome: 'CorruptionDetected' } });
    await core.deleteNamespacedPod({ name: 'damaged', namespace: ns.name });
    await waitGone('damaged');
  });

  it('restarts a container whose liveness probe fails', async () => {
    await core.createNamespacedPod({ namespace: ns.name, body: serverPod('unhealthy', { livenessPath: '/no-such-path' }) });
    const pod = await waitFor(
      async () => {
        const p = await readPod('unhealthy');
        return (serverStatus(p)?.restartCount ?? 0) >= 1 ? p : undefined;
      },
      { message: 'pod unhealthy to be restarted by its liveness probe', timeoutMs: 60_000 },
    );
    expect(serverStatus(pod)?.lastState?.terminated?.finishedAt).toBeTruthy();
    const events = await core.listNamespacedEvent({ namespace: ns.name, fieldSelector: 'involvedObject.name=unhealthy' });
    const reasons = events.items.map((e) => e.reason);
    expect(reasons).toContain('Unhealthy');
    expect(reasons).toContain('Killing');
    // The startup probe passed first, so the liveness failures are the 404s, not a slow start.
    expect(events.items.find((e) => e.reason === 'Unhealthy')?.message).toBe('Liveness probe failed: HTTP probe failed with statuscode: 404');
    await core.deleteNamespacedPod({ name: 'unhealthy', namespace: ns.name });
    await waitGone('unhealthy');
  });

  it('runs init containers to completion before the app container', async () => {
    const withInit = (name: string, initArgs: string[]): V1Pod => {
      const pod = serverPod(name);
      pod.spec!.initContainers = [
        { name: 'verify', image: 'eventlog:dev', command: ['eventlog-server', 'verify'], args: initArgs, volumeMounts: [{ name: 'data', mountPath: '/data' }] },
      ];
      return pod;
    };
    await core.createNamespacedPod({ namespace: ns.name, body: withInit('init-ok', ['--data-dir', '/data']) });
    const ok = await waitReady('init-ok');
    expect(ok.status?.conditions?.find((c) => c.type === 'Initialized')?.status).toBe('True');
    const init = ok.status?.initContainerStatuses?.[0];
    expect(init?.state?.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
    expect(init?.ready).toBe(true);

    // A failing init container is retried and holds the pod in Pending.
    await core.createNamespacedPod({ namespace: ns.name, body: withInit('init-bad', ['--data-dir', '/data', '--bogus']) });
    const bad = await waitFor(
      async () => {
        const p = await readPod('init-bad');
        return (p.status?.initContainerStatuses?.[0]?.restartCount ?? 0) >= 1 ? p : undefined;
      },
      { message: 'init container of init-bad to be restarted', timeoutMs: 60_000 },
    );
    expect(bad.status?.phase).toBe('Pending');
    expect(bad.status?.conditions?.find((c) => c.type === 'Initialized')).toMatchObject({ status: 'False', reason: 'ContainersNotInitialized' });
    expect(bad.status?.initContainerStatuses?.[0]?.lastState?.terminated?.exitCode).toBe(2);
    expect(serverStatus(bad)?.state?.waiting?.reason).toBe('PodInitializing');

    await core.deleteNamespacedPod({ name: 'init-ok', namespace: ns.name });
    await core.deleteNamespacedPod({ name: 'init-bad', namespace: ns.name });
    await waitGone('init-ok');
    await waitGone('init-bad');
  });

  it('adopts its pods again after an agent restart on the same data dir', async () => {
    // A second agent with its own node (no scheduler/provisioner, so it does not
    // compete with the suite's agent); pods name the node directly.
    const dataDir = await mkdtemp(join(tmpdir(), 'agent-restart-'));
    const nodeName = `restart-${ns.name}`;
    const opts = { kubeConfig: kc, dataDir, nodeName, scheduler: false, provisioner: false, crashLoopBaseMs: 500 };
    let agent: NodeAgent | undefined = await startNodeAgent(opts);
    try {
      await core.createNamespacedPod({ namespace: ns.name, body: serverPod('adopted', { nodeName }) });
      const before = await waitReady('adopted');
      const ip = before.status?.podIP;
      const firstPid = pidOf(serverStatus(before));
      expect(agent.pidOf(ns.name, 'adopted', 'server')).toBe(firstPid);

      await agent.stop();
      agent = undefined;
      expect(alive(firstPid)).toBe(false); // the agent's stop ends its processes

      agent = await startNodeAgent(opts);
      const after = await waitFor(
        async () => {
          const p = await readPod('adopted');
          const s = serverStatus(p);
          return s?.ready && s.containerID !== `process://${firstPid}` ? p : undefined;
        },
        { message: 'pod adopted to run again under the new agent', timeoutMs: 60_000 },
      );
      expect(after.status?.podIP).toBe(ip);
      expect(serverStatus(after)?.restartCount).toBe(1);
      expect((await fetch(`http://${ip}:8080/healthz`)).status).toBe(200);

      await core.deleteNamespacedPod({ name: 'adopted', namespace: ns.name });
      await waitGone('adopted');
    } finally {
      await agent?.stop();
      await core.deleteNode({ name: nodeName }).catch(() => undefined);
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('provisions a bound PV of the requested size, expands it, and leaves an unknown class Pending', async () => {
    await createClaim('lost', '1Gi', 'no-such-class');
    await createClaim('sized', '1Gi');
    await waitBound('sized');
    let claim = await core.readNamespacedPersistentVolumeClaim({ name: 'sized', namespace: ns.name });
    expect(claim.spec?.storageClassName).toBe('eventlog-local');
    expect(claim.status?.capacity?.storage).toBe('1Gi');
    expect(claim.status?.accessModes).toEqual(['ReadWriteOnce']);
    const pvName = claim.spec?.volumeName ?? '';
    let pv = await core.readPersistentVolume({ name: pvName });
    expect(pv.spec?.capacity?.storage).toBe('1Gi');
    expect(pv.spec?.claimRef?.name).toBe('sized');
    expect(pv.spec?.claimRef?.uid).toBe(claim.metadata?.uid);
    expect(pv.status?.phase).toBe('Bound');
    expect(pv.spec?.local?.path).toBeTruthy();

    await core.patchNamespacedPersistentVolumeClaim({ name: 'sized', namespace: ns.name, body: { spec: { resources: { requests: { storage: '2Gi' } } } } }, mergePatch);
    claim = await waitFor(
      async () => {
        const c = await core.readNamespacedPersistentVolumeClaim({ name: 'sized', namespace: ns.name });
        return c.status?.capacity?.storage === '2Gi' ? c : undefined;
      },
      { message: 'claim sized to report 2Gi' },
    );
    pv = await core.readPersistentVolume({ name: pvName });
    expect(pv.spec?.capacity?.storage).toBe('2Gi');

    // The agent has processed claims created after it; the unknown class is still Pending.
    const lost = await core.readNamespacedPersistentVolumeClaim({ name: 'lost', namespace: ns.name });
    expect(lost.status?.phase).toBe('Pending');
    expect(lost.spec?.volumeName ?? '').toBe('');

    // A pod on that claim is not scheduled, and says why.
    await core.createNamespacedPod({ namespace: ns.name, body: serverPod('stuck', { claim: 'lost' }) });
    const stuck = await waitFor(
      async () => {
        const p = await readPod('stuck');
        const c = p.status?.conditions?.find((x) => x.type === 'PodScheduled');
        return c?.status === 'False' ? p : undefined;
      },
      { message: 'pod stuck to be Unschedulable' },
    );
    const cond = stuck.status?.conditions?.find((x) => x.type === 'PodScheduled');
    expect(cond?.reason).toBe('Unschedulable');
    expect(cond?.message).toContain('unbound immediate PersistentVolumeClaims');
    expect(stuck.spec?.nodeName ?? '').toBe('');
  });

  it('puts a pod with a foreign image into a clear waiting state, and follows image changes', async () => {
    await core.createNamespacedPod({ namespace: ns.name, body: serverPod('foreign', { image: 'nginx:1.27' }) });
    const pod = await waitFor(
      async () => {
        const p = await readPod('foreign');
        return serverStatus(p)?.state?.waiting?.reason === 'ErrImageNeverPull' ? p : undefined;
      },
      { message: 'pod foreign to report ErrImageNeverPull' },
    );
    const s = serverStatus(pod);
    expect(s?.state?.waiting?.message).toContain('"nginx:1.27"');
    expect(s?.state?.waiting?.message).toContain("only the project's own image");
    expect(s?.ready).toBe(false);
    expect(s?.restartCount).toBe(0);
    expect(pod.status?.phase).toBe('Pending');
    expect(pod.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('False');

    // Pod images are mutable: switching to the project's image starts the container,
    // and switching back stops it again (the kubelet replaces the container).
    const setImage = (image: string): Promise<V1Pod> =>
      core.patchNamespacedPod(
        { name: 'foreign', namespace: ns.name, body: [{ op: 'replace', path: '/spec/containers/0/image', value: image }] },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      );
    await setImage('eventlog:dev');
    const fixed = await waitReady('foreign');
    const pid = pidOf(serverStatus(fixed));
    await setImage('busybox:1.36');
    const back = await waitFor(
      async () => {
        const p = await readPod('foreign');
        return serverStatus(p)?.state?.waiting?.reason === 'ErrImageNeverPull' ? p : undefined;
      },
      { message: 'pod foreign to stop its container after the image went foreign again' },
    );
    expect(serverStatus(back)?.image).toBe('busybox:1.36');
    expect(serverStatus(back)?.restartCount).toBe(1);
    expect(serverStatus(back)?.lastState?.terminated).toBeTruthy();
    await waitFor(() => !alive(pid), { message: `process ${pid} to exit` });

    await core.deleteNamespacedPod({ name: 'foreign', namespace: ns.name });
    await waitGone('foreign');
  });
});
