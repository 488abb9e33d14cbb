/**
 * The node agent: a small process-based kubelet for the local cluster.
 *
 * It registers a Node and keeps it Ready, provides the StorageClasses and
 * provisions/binds/expands volumes (real ext4 file systems on loop devices as
 * root, directories otherwise), binds pending pods to its node, and
 * runs the pods' containers as local processes (project image only). It is
 * level-triggered: each pass lists pods and claims and reconciles; watches on
 * pods/claims/volumes only trigger passes early (a periodic resync covers any
 * missed event), so a broken watch can delay but never wedge it.
 */
import { readdir, readFile, rm, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { CoordinationV1Api, CoreV1Api, StorageV1Api, type KubeConfig, type V1PersistentVolume, type V1PersistentVolumeClaim, type V1Pod } from '@kubernetes/client-node';
import { silentLogger, type Logger } from '../../src/common/logger.ts';
import { backoffPolicy } from './backoff.ts';
import { eventRecorder } from './events.ts';
import { defaultImages, defaultPrograms, type ProgramPaths } from './images.ts';
import { PodIpAllocator } from './ip-allocator.ts';
import { describeError, isNotFound, sleep, watchAsTrigger } from './kube.ts';
import { NodeHeartbeat } from './node.ts';
import { agentPaths, type AgentPaths } from './paths.ts';
import { PodWorker } from './pod-worker.ts';
import { Binder, wantsScheduling } from './scheduler.ts';
import { NodeVolumes, type VolumeMode } from './node-volumes.ts';
import { provisionerName, StorageProvisioner } from './storage.ts';

export { storageClassName, offlineStorageClassName, fixedStorageClassName, storageClassNames, provisionerName, onlineExpansionParameter } from './storage.ts';
export { volumeModeAnnotation, type VolumeMode } from './node-volumes.ts';

export interface NodeAgentOptions {
  kubeConfig: KubeConfig;
  /** Where volumes, pod directories and container logs live. Reusing it keeps PV data. */
  dataDir: string;
  log?: Logger;
  /** Node name (default "eventlog-node"). */
  nodeName?: string;
  /** Images that run here (default ["eventlog:dev"]; any ".../eventlog" repository always does). */
  images?: readonly string[];
  /** First crash-loop back-off delay (kubelet: 10 000 ms); doubles per crash up to 30x. */
  crashLoopBaseMs?: number;
  /**
   * First two octets of the pod address range (default [127, 1] -> 127.1.x.y). Two
   * agents on one machine (the playground and the test suite) need distinct ranges,
   * or their pods' servers would compete for the same address and port.
   */
  podIpPrefix?: readonly [number, number];
  /** Full resync period (default 5 000 ms); watches trigger passes sooner. */
  resyncMs?: number;
  /** Node status + lease heartbeat (default 10 000 ms). */
  heartbeatMs?: number;
  /** Upper bound on each pod's grace period when the agent itself stops (default 10 000 ms). */
  shutdownGraceMs?: number;
  /** Override the programs the image's commands map to (tests). */
  programs?: ProgramPaths;
  /** Bind pending pods to this node (default true). Turn off for a second agent on the same cluster. */
  scheduler?: boolean;
  /** Provide the StorageClasses and provision volumes (default true). Turn off for a second agent. */
  provisioner?: boolean;
  /**
   * What a PV is on this node: 'loop-ext4' (an ext4 file system of exactly the requested
   * size on a loop device; needs root and e2fsprogs + mount), 'directory' (capacity is
   * bookkeeping), or 'auto' (default): loop-ext4 when running as root, else directory.
   */
  volumeMode?: VolumeMode | 'auto';
  /** Host-wide record of attached loop devices (default /run/eventlog-volumes). */
  volumeRegistryDir?: string;
}

export interface NodeAgent {
  readonly nodeName: string;
  readonly hostIP: string;
  readonly dataDir: string;
  /** pid of a running container's process (also in status: containerID `process://<pid>`). */
  pidOf(namespace: string, pod: string, container: string): number | undefined;
  /** Run one reconcile pass now and wait for it. */
  syncNow(): Promise<void>;
  /** Stop watches, heartbeat and every process (SIGTERM, grace, SIGKILL). Pod objects stay. */
  stop(): Promise<void>;
}

const graceSeconds = (pod: V1Pod): number => pod.metadata?.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* gone */
    }
  }
}

/**
 * Kill processes a previous agent left behind (it crashed or was SIGKILLed):
 * pid files under <dataDir>/run whose process still runs one of our programs.
 */
async function reapOrphans(paths: AgentPaths, programs: ProgramPaths, log: Logger): Promise<void> {
  let files: string[];
  try {
    files = await readdir(paths.run);
  } catch {
    return;
  }
  for (const f of files) {
    const file = join(paths.run, f);
    const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(pid) && pid > 1) {
      const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
      if (cmdline.includes(programs.server) || cmdline.includes(programs.cli)) {
        log.warn({ pid, file: f }, 'killing a container process left behind by a previous agent');
        killGroup(pid, 'SIGKILL');
      }
    }
    await rm(file, { force: true });
  }
}

export async function startNodeAgent(opts: NodeAgentOptions): Promise<NodeAgent> {
  const log = (opts.log ?? silentLogger).child({ component: 'node-agent' });
  const nodeName = opts.nodeName ?? 'eventlog-node';
  const hostIP = '127.0.0.1';
  const paths = agentPaths(opts.dataDir);
  const programs = opts.programs ?? defaultPrograms;
  const images = opts.images ?? defaultImages;
  const resyncMs = opts.resyncMs ?? 5_000;
  const shutdownGraceMs = opts.shutdownGraceMs ?? 10_000;
  for (const dir of [paths.root, paths.volumes, paths.pods, paths.logs, paths.run]) await mkdir(dir, { recursive: true });
  await reapOrphans(paths, programs, log);

  const kc = opts.kubeConfig;
  const core = kc.makeApiClient(CoreV1Api);
  const coordination = kc.makeApiClient(CoordinationV1Api);
  const storageApi = kc.makeApiClient(StorageV1Api);
  const events = eventRecorder(core, 'kubelet', nodeName, log);
  const registry = new Map<number, ChildProcess>();
  const killAll = (): void => {
    for (const pid of registry.keys()) killGroup(pid, 'SIGKILL');
  };
  const heartbeat = new NodeHeartbeat(core, coordination, { name: nodeName, hostIP, maxPods: 110 }, log, opts.heartbeatMs ?? 10_000);
  const provisioner = opts.provisioner ?? true;
  const scheduler = opts.scheduler ?? true;
  // The loop's trigger, set once the loop exists (a pod releasing a volume may unblock an offline resize).
  let onVolumeRelease = (): void => undefined;
  // Volumes first: a root run without the tools fails here, loudly, before anything is registered.
  const nodeVolumes = provisioner
    ? await NodeVolumes.start({
        paths,
        log,
        mode: opts.volumeMode ?? 'auto',
        ...(opts.volumeRegistryDir ? { registryDir: opts.volumeRegistryDir } : {}),
        onRelease: () => onVolumeRelease(),
      })
    : undefined;
  const storage = nodeVolumes ? new StorageProvisioner({ core, storage: storageApi, paths, nodeName, log, volumes: nodeVolumes, events: eventRecorder(core, provisionerName, nodeName, log) }) : undefined;
  try {
    await heartbeat.register();
    if (storage) await storage.ensureStorageClasses();
  } catch (err) {
    await nodeVolumes?.stop();
    throw new Error(`node agent ${nodeName} could not start against ${kc.getCurrentCluster()?.server}: ${describeError(err)}`, { cause: err });
  }
  heartbeat.start();
  process.on('exit', killAll);
  const binder = new Binder(core, nodeName, events, log);
  const ips = new PodIpAllocator(opts.podIpPrefix ? { prefix: opts.podIpPrefix } : {});
  const server = new URL(kc.getCurrentCluster()?.server ?? 'https://127.0.0.1:6443');
  const baseEnv: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    KUBERNETES_SERVICE_HOST: server.hostname,
    KUBERNETES_SERVICE_PORT: server.port || '443',
  };
  if (process.env.HOME) baseEnv.HOME = process.env.HOME;
  const workers = new Map<string, PodWorker>();
  const deps = {
    core,
    paths,
    programs,
    backoff: backoffPolicy(opts.crashLoopBaseMs),
    events,
    log,
    nodeName,
    hostIP,
    ips,
    images,
    registry,
    baseEnv,
    retryMs: Math.min(2_000, resyncMs),
    ...(storage && nodeVolumes
      ? { stageClaim: (pv: V1PersistentVolume, podUid: string) => storage.stageClaimVolume(pv, podUid), releaseVolumes: (podUid: string) => nodeVolumes.release(podUid) }
      : {}),
  };
  const deleting = new Set<string>();

  async function handleOurPod(pod: V1Pod): Promise<void> {
    const uid = pod.metadata?.uid ?? '';
    const w = workers.get(uid);
    if (pod.metadata?.deletionTimestamp) {
      if (w && !w.stopped) {
        w.update(pod);
        if (!w.terminating) {
          log.info({ pod: w.key, graceSeconds: graceSeconds(pod) }, 'pod deleted; stopping its containers');
          void w.terminate(graceSeconds(pod) * 1000, { deleteObject: true });
        }
      } else if (!deleting.has(uid)) {
        // Nothing runs for it here (it finished, the agent restarted, or an earlier
        // delete did not go through): remove the object. Finalizers keep it until
        // their controllers are done; deleting again is harmless.
        deleting.add(uid);
        try {
          await core.deleteNamespacedPod({ name: pod.metadata?.name ?? '', namespace: pod.metadata?.namespace ?? 'default', gracePeriodSeconds: 0, body: { gracePeriodSeconds: 0, preconditions: { uid } } });
        } catch (err) {
          if (!isNotFound(err)) log.warn({ pod: `${pod.metadata?.namespace}/${pod.metadata?.name}`, err: describeError(err) }, 'could not delete pod');
        } finally {
          deleting.delete(uid);
        }
      }
      return;
    }
    if (!w) {
      if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return;
      const worker = new PodWorker(pod, deps);
      workers.set(uid, worker);
      log.info({ pod: worker.key, uid }, 'starting pod');
      worker.start();
      return;
    }
    w.update(pod);
    w.markDirty();
  }

  async function syncOnce(): Promise<void> {
    if (storage) {
      try {
        await storage.sync();
      } catch (err) {
        log.warn({ err: describeError(err) }, 'storage sync failed; will retry');
      }
    }
    const [podList, claimList] = await Promise.all([core.listPodForAllNamespaces({}), core.listPersistentVolumeClaimForAllNamespaces({})]);
    const claims = new Map<string, V1PersistentVolumeClaim>(claimList.items.map((c) => [`${c.metadata?.namespace}/${c.metadata?.name}`, c]));
    const seen = new Set<string>();
    for (const pod of podList.items) {
      const uid = pod.metadata?.uid ?? '';
      try {
        if (wantsScheduling(pod)) {
          if (scheduler) await binder.schedule(pod, claims);
        }
        else if (pod.spec?.nodeName === nodeName) {
          seen.add(uid);
          await handleOurPod(pod);
        }
      } catch (err) {
        log.warn({ pod: `${pod.metadata?.namespace}/${pod.metadata?.name}`, err: describeError(err) }, 'pod sync failed; will retry');
      }
    }
    for (const [uid, w] of workers) {
      if (seen.has(uid)) continue;
      // The pod object is gone (force-deleted, or our own delete completed).
      if (!w.terminating) log.info({ pod: w.key }, 'pod object removed; stopping its containers');
      const grace = Math.min(graceSeconds(w.pod) * 1000, shutdownGraceMs);
      void w.terminate(grace, { deleteObject: false }).finally(() => workers.delete(uid));
    }
  }

  // The loop: a pass, then wait for a trigger (watch event) or the resync period.
  const abort = new AbortController();
  let kicked = false;
  let wake: (() => void) | undefined;
  const kick = (): void => {
    kicked = true;
    wake?.();
  };
  let pass: Promise<void> = Promise.resolve();
  const runPass = (): Promise<void> => {
    pass = pass.then(() =>
      syncOnce().catch((err: unknown) => {
        log.warn({ err: describeError(err) }, 'sync pass failed; will retry');
      }),
    );
    return pass;
  };
  const loop = (async () => {
    while (!abort.signal.aborted) {
      kicked = false;
      await runPass();
      if (abort.signal.aborted) break;
      if (!kicked) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, resyncMs);
          wake = () => {
            clearTimeout(t);
            resolve();
          };
          abort.signal.addEventListener('abort', wake, { once: true });
        });
        wake = undefined;
      }
      await sleep(50, abort.signal); // coalesce bursts of events
    }
  })();
  onVolumeRelease = kick;
  const watches = ['/api/v1/pods', '/api/v1/persistentvolumeclaims', '/api/v1/persistentvolumes'].map((path) =>
    watchAsTrigger(kc, path, kick, abort.signal, log),
  );
  log.info({ node: nodeName, dataDir: opts.dataDir, volumeMode: nodeVolumes?.mode ?? 'none (no provisioner)' }, 'node agent started');

  let stopping: Promise<void> | undefined;
  return {
    nodeName,
    hostIP,
    dataDir: opts.dataDir,
    pidOf(namespace, pod, container) {
      for (const w of workers.values()) if (w.key === `${namespace}/${pod}`) return w.pidOf(container);
      return undefined;
    },
    syncNow: runPass,
    stop() {
      stopping ??= (async () => {
        abort.abort();
        await loop;
        await Promise.all(watches);
        await heartbeat.stop();
        await Promise.all([...workers.values()].map((w) => w.shutdown(Math.min(graceSeconds(w.pod) * 1000, shutdownGraceMs))));
        workers.clear();
        killAll();
        // After the pods: unmount and detach the volumes this agent mounted.
        await nodeVolumes?.stop();
        process.off('exit', killAll);
        log.info({ node: nodeName }, 'node agent stopped');
      })();
      return stopping;
    },
  };
}
