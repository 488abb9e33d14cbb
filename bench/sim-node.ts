/**
 * A simulated node for `npm run bench:operator --sim N` (the way kwok simulates kubelets):
 * it lets the operator manage 1000 EventLogs on a 2-core machine, where running 1000 real
 * `eventlog-server` processes is impossible. Every figure taken with it is labelled
 * "simulated" by bench/operator.ts.
 *
 * What it does, for one namespace only:
 * - registers a Node (`sim-node`) and keeps its Lease and Ready condition fresh (the
 *   node agent's NodeHeartbeat), so the node lifecycle controller leaves its pods alone;
 * - provides the StorageClass `eventlog-sim` (expansion allowed) and binds every claim of
 *   it the way the node agent does: a PersistentVolume `pvc-<uid>` with a claimRef, PV
 *   status Bound, the claim's bind annotations + volumeName, the claim's status Bound
 *   with capacity (the same API writes, so the operator sees the same events);
 * - schedules pending pods whose claims are Bound (a Binding, like the agent's binder);
 * - "runs" a bound pod without a process: a loopback address from `ipPrefix`
 *   (127.b.x.y), one HTTP listener on podIP:containerPort answering `GET /status` with a
 *   document that `parseServerStatus` accepts (state ready, clean recovery, 16Mi file
 *   system), and the kubelet's status sequence as the node agent writes it
 *   (`computePodStatus`): Pending/ContainerCreating with the pod IP, Running not ready,
 *   then Ready after `readyAfterMs` (the readiness probe);
 * - a deleted pod: close its listener and delete the object (grace 0, uid precondition);
 *   a deleted claim: delete its PersistentVolume.
 *
 * It is event-driven (the operator runtime's own Watcher on pods and claims of the
 * namespace), works on one object at a time per object, and retries a failed step after
 * a second. Requests from the operator to /status are counted (`polls`).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { CoordinationV1Api, CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import type { Logger } from '../src/common/logger.ts';
import { computePodStatus, type ContainerRuntimeState } from '../dev/agent/pod-status.ts';
import { NodeHeartbeat } from '../dev/agent/node.ts';
import { PodIpAllocator } from '../dev/agent/ip-allocator.ts';
import { KubeHttp, statusCodeOf } from '../src/runtime/kube-http.ts';
import { httpListWatch } from '../src/runtime/list-watch.ts';
import { Watcher } from '../src/runtime/watcher.ts';
import type { KubeObject } from '../src/runtime/store.ts';

export const SIM_STORAGE_CLASS = 'eventlog-sim';
export const SIM_NODE = 'sim-node';
const PROVISIONER = 'bench.eventlog.dev/simulated';

type Pvc = KubeObject & {
  spec?: { storageClassName?: string; volumeName?: string; accessModes?: string[]; resources?: { requests?: { storage?: string } } };
  status?: { phase?: string; capacity?: { storage?: string } };
};
type Pod = KubeObject & { spec?: { nodeName?: string; containers?: Array<{ name: string; image?: string; ports?: Array<{ containerPort: number }> }>; volumes?: Array<{ persistentVolumeClaim?: { claimName: string } }> }; status?: { phase?: string; podIP?: string; conditions?: Array<{ type: string; status: string }> } };

export interface SimNodeOptions {
  kubeConfig: KubeConfig;
  http: KubeHttp;
  namespace: string;
  ipPrefix: readonly [number, number];
  log: Logger;
  /** Ready this long after Running (the readiness probe). Default 1000 ms. */
  readyAfterMs?: number;
  /** API calls in flight at most. Default 8. */
  concurrency?: number;
}

export interface SimNode {
  /** GET /status requests answered. */
  readonly polls: number;
  /** Pods with a listener now. */
  readonly running: number;
  stop(): Promise<void>;
}

interface Running {
  uid: string;
  ip: string;
  server: Server;
  startedAt: number;
  doc: string;
}

function statusDoc(uid: string, startedAt: number, capacityBytes: number): string {
  const at = new Date(startedAt).toISOString();
  return JSON.stringify({
    state: 'ready',
    version: 'simulated',
    durability: 'fsync',
    startedAt: at,
    bootId: `sim-${uid}`,
    recovery: { outcome: 'Clean', startedAt: at, durationMs: 1, segmentsScanned: 1, bytesScanned: 0, recordsRecovered: 0, bytesTruncated: 0 },
    stats: { total: 0, bytes: 0, lastSequence: 0, segments: 1, diskBytes: 0 },
    storage: { filesystemBytes: capacityBytes, freeBytes: capacityBytes - 1_572_864, usedBytes: 1_572_864, reserveBytes: 1_048_576, logBytes: 0, sideFileBytes: 0, appendsRefused: 0 },
    retention: { maxAgeSeconds: null, maxBytes: null, firstSequence: 1, removedSegments: 0, removedEvents: 0, removedBytes: 0, lastRemovedAt: null },
  });
}

export async function startSimNode(opts: SimNodeOptions): Promise<SimNode> {
  const { http, namespace, log } = opts;
  const readyAfterMs = opts.readyAfterMs ?? 1_000;
  const core = opts.kubeConfig.makeApiClient(CoreV1Api);
  const heartbeat = new NodeHeartbeat(core, opts.kubeConfig.makeApiClient(CoordinationV1Api), { name: SIM_NODE, hostIP: '127.0.0.1', maxPods: 2000 }, log, 10_000);
  await heartbeat.register();
  heartbeat.start();
  await http
    .json('POST', '/apis/storage.k8s.io/v1/storageclasses', {
      body: { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: SIM_STORAGE_CLASS }, provisioner: PROVISIONER, reclaimPolicy: 'Delete', volumeBindingMode: 'Immediate', allowVolumeExpansion: true },
    })
    .catch((e: unknown) => {
      if (statusCodeOf(e) !== 409) throw e;
    });

  const ips = new PodIpAllocator({ prefix: opts.ipPrefix });
  const running = new Map<string, Running>(); // pod key -> listener
  const byIp = new Map<string, Running>();
  let polls = 0;
  let stopped = false;

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const r = byIp.get(req.socket.localAddress?.replace(/^::ffff:/, '') ?? '');
    if (req.method === 'GET' && (req.url === '/status' || req.url === '/v1/status') && r) {
      polls++;
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(r.doc);
      return;
    }
    if (req.method === 'GET' && (req.url === '/readyz' || req.url === '/healthz')) {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found","message":"simulated log pod"}');
  };

  // ---- one step at a time per object, bounded concurrency overall ----------------
  const chains = new Map<string, Promise<void>>();
  let inFlight = 0;
  const waiters: Array<() => void> = [];
  const limit = opts.concurrency ?? 8;
  const slot = async <T>(fn: () => Promise<T>): Promise<T> => {
    while (inFlight >= limit) await new Promise<void>((r) => waiters.push(r));
    inFlight++;
    try {
      return await fn();
    } finally {
      inFlight--;
      waiters.shift()?.();
    }
  };
  const pendingRetry = new Set<string>();
  const serial = (key: string, fn: () => Promise<void>) => {
    const next = (chains.get(key) ?? Promise.resolve())
      .then(() => (stopped ? undefined : fn()))
      .catch((err: unknown) => {
        if (stopped) return;
        log.warn({ key, err: (err as Error).message }, 'simulated node: step failed; retrying in 1 s');
        if (!pendingRetry.has(key)) {
          pendingRetry.add(key);
          setTimeout(() => {
            pendingRetry.delete(key);
            retry(key);
          }, 1_000).unref();
        }
      });
    chains.set(key, next);
    void next.finally(() => {
      if (chains.get(key) === next) chains.delete(key);
    });
  };
  const api = <T>(method: string, path: string, body?: unknown, contentType?: string) =>
    slot(() => http.json<T>(method, path, { ...(body !== undefined ? { body } : {}), ...(contentType ? { contentType } : {}), timeoutMs: 30_000 }));
  const merge = 'application/merge-patch+json';
  const ns = encodeURIComponent(namespace);

  // ---- claims ---------------------------------------------------------------------
  const claims = new Watcher<Pvc>({ source: httpListWatch<Pvc>(http, { version: 'v1', plural: 'persistentvolumeclaims', namespace }), logger: log, freeze: false });
  const pods = new Watcher<Pod>({ source: httpListWatch<Pod>(http, { version: 'v1', plural: 'pods', namespace }), logger: log, freeze: false });

  async function syncClaim(name: string): Promise<void> {
    const pvc = claims.get(namespace, name);
    if (!pvc || pvc.metadata?.deletionTimestamp || pvc.spec?.storageClassName !== SIM_STORAGE_CLASS || pvc.status?.phase === 'Bound') return;
    const uid = pvc.metadata?.uid ?? '';
    const pvName = `pvc-${uid}`;
    const size = pvc.spec?.resources?.requests?.storage ?? '16Mi';
    const accessModes = pvc.spec?.accessModes ?? ['ReadWriteOnce'];
    await api('POST', '/api/v1/persistentvolumes', {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: pvName, annotations: { 'pv.kubernetes.io/provisioned-by': PROVISIONER }, labels: { 'bench.eventlog.dev/simulated': 'true' } },
      spec: {
        capacity: { storage: size },
        accessModes,
        // Retain: the simulated node deletes the volume itself when the claim is gone
        // (no in-tree plugin would delete a hostPath volume).
        persistentVolumeReclaimPolicy: 'Retain',
        storageClassName: SIM_STORAGE_CLASS,
        claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace, name, uid },
        hostPath: { path: `/nonexistent/eventlog-sim/${uid}` },
      },
    }).catch((e: unknown) => {
      if (statusCodeOf(e) !== 409) throw e;
    });
    await api('PATCH', `/api/v1/persistentvolumes/${pvName}/status`, { status: { phase: 'Bound' } }, merge);
    if (pvc.spec?.volumeName !== pvName) {
      await api('PATCH', `/api/v1/namespaces/${ns}/persistentvolumeclaims/${encodeURIComponent(name)}`, {
        metadata: { annotations: { 'pv.kubernetes.io/bind-completed': 'yes', 'pv.kubernetes.io/bound-by-controller': 'yes', 'volume.kubernetes.io/storage-provisioner': PROVISIONER, 'volume.beta.kubernetes.io/storage-provisioner': PROVISIONER } },
        spec: { volumeName: pvName },
      }, merge);
    }
    await api('PATCH', `/api/v1/namespaces/${ns}/persistentvolumeclaims/${encodeURIComponent(name)}/status`, { status: { phase: 'Bound', accessModes, capacity: { storage: size } } }, merge);
  }

  // ---- pods -----------------------------------------------------------------------
  const claimBound = (pod: Pod) =>
    (pod.spec?.volumes ?? []).every((v) => !v.persistentVolumeClaim || claims.get(namespace, v.persistentVolumeClaim.claimName)?.status?.phase === 'Bound');

  async function patchPodStatus(pod: Pod, containers: ContainerRuntimeState[], podIP: string, startTime: number): Promise<void> {
    const status = computePodStatus(pod as V1Pod, { hostIP: '127.0.0.1', podIP, sandboxReady: true, startTime, containers }, Date.now());
    await api('PATCH', `/api/v1/namespaces/${ns}/pods/${encodeURIComponent(pod.metadata!.name!)}/status`, { status }, merge);
  }

  async function listen(ip: string, port: number): Promise<Server> {
    const server = createServer({ keepAlive: false }, onRequest);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, ip, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server;
  }

  async function stopPod(key: string): Promise<void> {
    const r = running.get(key);
    if (!r) return;
    running.delete(key);
    byIp.delete(r.ip);
    ips.release(r.uid);
    await new Promise<void>((resolve) => r.server.close(() => resolve()));
  }

  async function syncPod(name: string): Promise<void> {
    const key = `${namespace}/${name}`;
    const pod = pods.get(namespace, name);
    const uid = pod?.metadata?.uid ?? '';
    if (!pod || (running.get(key) && running.get(key)!.uid !== uid)) await stopPod(key);
    if (!pod) return;
    if (pod.metadata?.deletionTimestamp) {
      await stopPod(key);
      await api('DELETE', `/api/v1/namespaces/${ns}/pods/${encodeURIComponent(name)}`, { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0, preconditions: { uid } }).catch((e: unknown) => {
        if (statusCodeOf(e) !== 404 && statusCodeOf(e) !== 409) throw e;
      });
      return;
    }
    if (!pod.spec?.nodeName) {
      if (!claimBound(pod)) return; // a claim event retries
      await api('POST', `/api/v1/namespaces/${ns}/pods/${encodeURIComponent(name)}/binding`, {
        apiVersion: 'v1',
        kind: 'Binding',
        metadata: { name, namespace, uid },
        target: { apiVersion: 'v1', kind: 'Node', name: SIM_NODE },
      }).catch((e: unknown) => {
        if (statusCodeOf(e) !== 409 && statusCodeOf(e) !== 404) throw e;
      });
      return;
    }
    if (pod.spec.nodeName !== SIM_NODE) return;
    const c = pod.spec.containers?.[0];
    if (!c) return;
    const image = c.image ?? 'eventlog:dev';
    let r = running.get(key);
    if (!r) {
      // "Sandbox": an address and the listener; the status says ContainerCreating.
      const ip = ips.allocate(uid);
      const startTime = Date.now();
      const port = c.ports?.[0]?.containerPort ?? 8080;
      await patchPodStatus(pod, [{ name: c.name, image, state: { kind: 'waiting', reason: 'ContainerCreating' }, restartCount: 0, started: false, ready: false }], ip, startTime);
      const server = await listen(ip, port);
      r = { uid, ip, server, startedAt: startTime, doc: statusDoc(uid, startTime, 16 * 1024 * 1024) };
      running.set(key, r);
      byIp.set(ip, r);
      const containerID = `simulated://${uid}`;
      await patchPodStatus(pod, [{ name: c.name, image, state: { kind: 'running', startedAt: startTime, containerID }, restartCount: 0, started: true, ready: false }], ip, startTime);
      const started = r;
      setTimeout(() => {
        if (running.get(key) !== started) return;
        serial(key, async () => {
          const now = pods.get(namespace, name);
          if (!now || now.metadata?.uid !== uid || now.metadata?.deletionTimestamp) return;
          await patchPodStatus(now, [{ name: c.name, image, state: { kind: 'running', startedAt: startTime, containerID }, restartCount: 0, started: true, ready: true }], ip, startTime);
        });
      }, readyAfterMs).unref();
    }
  }

  const retry = (key: string) => {
    const [kind, name] = key.split(':') as [string, string];
    if (kind === 'pvc') serial(key, () => syncClaim(name));
    else serial(`pod:${name}`, () => syncPod(name));
  };
  claims.onAdd((o) => retry(`pvc:${o.metadata!.name}`));
  claims.onUpdate((_o, n) => {
    retry(`pvc:${n.metadata!.name}`);
    if (n.status?.phase === 'Bound') {
      // Pods waiting for this claim.
      for (const p of pods.list()) if (!p.spec?.nodeName && p.spec?.volumes?.some((v) => v.persistentVolumeClaim?.claimName === n.metadata!.name)) retry(`pod:${p.metadata!.name}`);
    }
  });
  claims.onDelete((o) => {
    const pv = o.spec?.volumeName ?? `pvc-${o.metadata?.uid}`;
    serial(`pv:${pv}`, () => api('DELETE', `/api/v1/persistentvolumes/${pv}`).then(() => undefined, (e: unknown) => {
      if (statusCodeOf(e) !== 404) throw e;
    }));
  });
  pods.onAdd((o) => retry(`pod:${o.metadata!.name}`));
  pods.onUpdate((_o, n) => retry(`pod:${n.metadata!.name}`));
  pods.onDelete((o) => retry(`pod:${o.metadata!.name}`));
  claims.start();
  pods.start();
  await Promise.all([claims.waitForSync(), pods.waitForSync()]);
  log.info({ namespace, node: SIM_NODE }, 'simulated node started');

  return {
    get polls() {
      return polls;
    },
    get running() {
      return running.size;
    },
    async stop() {
      stopped = true;
      await Promise.all([claims.stop(), pods.stop()]);
      await heartbeat.stop();
      await Promise.all([...running.keys()].map((k) => stopPod(k)));
      await Promise.allSettled([...chains.values()]);
    },
  };
}
