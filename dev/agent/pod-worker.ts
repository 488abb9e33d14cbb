/**
 * One pod on this node, from binding to removal: allocate its IP, prepare its
 * volumes, run each container (ContainerRunner), write its status whenever
 * something observable changes, and on deletion stop the processes (SIGTERM,
 * grace period, SIGKILL) and remove the pod object with gracePeriodSeconds 0.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { CoreV1Api, V1Container, V1Pod } from '@kubernetes/client-node';
import type { Logger } from '../../src/common/logger.ts';
import type { BackoffPolicy } from './backoff.ts';
import { ContainerRunner, foreignContainerState, type ContainerLaunch } from './container.ts';
import { ContainerConfigError, envReferences, resolveEnv, type PathMapping, type RefData } from './container-spec.ts';
import type { EventRecorder } from './events.ts';
import { foreignImageMessage, isOurImage, type ProgramPaths } from './images.ts';
import type { PodIpAllocator } from './ip-allocator.ts';
import { describeError, isNotFound, mergePatch, sleep } from './kube.ts';
import { podDir, podLogDir, type AgentPaths } from './paths.ts';
import { canonical, computePodStatus, liveStatusSubset, podPhase, type ContainerRuntimeState, type PodRuntimeState } from './pod-status.ts';
import { preparePodVolumes, VolumeNotReadyError, type VolumeContext } from './volumes.ts';

export interface PodWorkerDeps {
  core: CoreV1Api;
  paths: AgentPaths;
  programs: ProgramPaths;
  backoff: BackoffPolicy;
  events: EventRecorder;
  log: Logger;
  nodeName: string;
  hostIP: string;
  ips: PodIpAllocator;
  images: readonly string[];
  registry: Map<number, ChildProcess>;
  /** Environment every container starts with (PATH, KUBERNETES_SERVICE_*), before its own env. */
  baseEnv: Readonly<Record<string, string>>;
  /** How long to wait before retrying volumes / container config that is not ready. */
  retryMs: number;
  /** Stage a PV this node provisioned for the pod (see volumes.ts); absent without a provisioner. */
  stageClaim?: VolumeContext['stageClaim'];
  /** The pod's processes are gone: it no longer uses its volumes. */
  releaseVolumes?: (podUid: string) => void;
}

function newerResourceVersion(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b) return true;
  try {
    return BigInt(a) >= BigInt(b);
  } catch {
    return true;
  }
}

export class PodWorker {
  readonly uid: string;
  readonly key: string;
  #pod: V1Pod;
  readonly #d: PodWorkerDeps;
  readonly #log: Logger;
  readonly #runners = new Map<string, ContainerRunner>();
  /** Containers without a runner yet (creating, config error) or never runnable (foreign image). */
  readonly #waiting = new Map<string, ContainerRuntimeState>();
  #podIP: string | undefined;
  #sandboxReady = false;
  #startTime: number | undefined;
  #terminal: 'Succeeded' | 'Failed' | undefined;
  #stopping = false;
  #terminating: Promise<void> | undefined;
  #dirty = false;
  #writing: Promise<void> | undefined;
  #gone = false;
  #running: Promise<void> | undefined;
  #stopped = false;
  #volumes: Map<string, string> | undefined;
  /** Containers being replaced because their image changed. */
  readonly #replacing = new Set<string>();
  /** Init containers: run one after another, each to successful completion, before the app containers. */
  readonly #initRunners = new Map<string, ContainerRunner>();
  readonly #initWaiting = new Map<string, ContainerRuntimeState>();
  #initialized = false;

  constructor(pod: V1Pod, deps: PodWorkerDeps) {
    this.#pod = pod;
    this.#d = deps;
    this.uid = pod.metadata?.uid ?? '';
    this.key = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
    this.#log = deps.log.child({ pod: this.key, uid: this.uid });
  }

  get pod(): V1Pod {
    return this.#pod;
  }

  get podIP(): string | undefined {
    return this.#podIP;
  }

  get terminating(): boolean {
    return this.#terminating !== undefined;
  }

  /** pid of a container's current process. */
  pidOf(container: string): number | undefined {
    return this.#runners.get(container)?.pid;
  }

  /** A newer copy of the pod from the API server. */
  update(pod: V1Pod): void {
    if (!newerResourceVersion(pod.metadata?.resourceVersion, this.#pod.metadata?.resourceVersion)) return;
    this.#pod = pod;
    if (this.#volumes && !this.#stopping && !pod.metadata?.deletionTimestamp) {
      for (const c of pod.spec?.containers ?? []) {
        const current = this.#runners.get(c.name)?.state.image ?? this.#waiting.get(c.name)?.image;
        if (current !== undefined && current !== (c.image ?? '') && !this.#replacing.has(c.name)) void this.#replaceContainer(c);
      }
    }
  }

  /** The container's image changed (pod images are mutable): kill it and start it again from the new image, like the kubelet. */
  async #replaceContainer(c: V1Container): Promise<void> {
    this.#replacing.add(c.name);
    try {
      const runner = this.#runners.get(c.name);
      this.#log.info({ container: c.name, image: c.image }, 'container image changed; replacing the container');
      this.#d.events.pod(this.#pod, 'Normal', 'Killing', `Container ${c.name} definition changed, will be restarted`, `spec.containers{${c.name}}`);
      let restartCount = this.#waiting.get(c.name)?.restartCount ?? 0;
      let lastTerminated = this.#waiting.get(c.name)?.lastTerminated;
      if (runner) {
        await runner.stop(Math.max(0, this.#pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000);
        this.#runners.delete(c.name);
        const st = runner.state;
        restartCount = st.restartCount + 1;
        lastTerminated = st.state.kind === 'terminated' ? { ...st.state } : st.lastTerminated;
        if (lastTerminated && 'kind' in lastTerminated) delete (lastTerminated as { kind?: string }).kind;
      }
      if (this.#stopping || !this.#volumes) return;
      if (isOurImage(c.image, this.#d.images)) {
        const waiting: ContainerRuntimeState = { name: c.name, image: c.image ?? '', state: { kind: 'waiting', reason: 'ContainerCreating' }, restartCount, started: false, ready: false };
        if (lastTerminated) waiting.lastTerminated = lastTerminated;
        this.#waiting.set(c.name, waiting);
        this.markDirty();
        await this.#startContainer(c, this.#volumes);
      } else {
        const message = foreignImageMessage(c.image, this.#d.images);
        const foreign = foreignContainerState(c, message, restartCount);
        if (lastTerminated) foreign.lastTerminated = lastTerminated;
        this.#waiting.set(c.name, foreign);
        this.#d.events.pod(this.#pod, 'Warning', 'ErrImageNeverPull', message, `spec.containers{${c.name}}`);
        this.markDirty();
      }
    } catch (err) {
      this.#log.error({ container: c.name, err: describeError(err) }, 'replacing the container failed');
    } finally {
      this.#replacing.delete(c.name);
    }
  }

  start(): void {
    this.#running = this.#run().catch((err: unknown) => {
      this.#log.error({ err: describeError(err) }, 'pod worker failed');
    });
  }

  #runtime(): PodRuntimeState {
    const containers: ContainerRuntimeState[] = [];
    for (const c of this.#pod.spec?.containers ?? []) {
      const s = this.#runners.get(c.name)?.state ?? this.#waiting.get(c.name);
      if (s) containers.push(s);
    }
    const initContainers: ContainerRuntimeState[] = [];
    for (const c of this.#pod.spec?.initContainers ?? []) {
      const s = this.#initRunners.get(c.name)?.state ?? this.#initWaiting.get(c.name);
      if (s) initContainers.push(s);
    }
    const rt: PodRuntimeState = { hostIP: this.#d.hostIP, sandboxReady: this.#sandboxReady, containers, initContainers, initialized: this.#initialized };
    if (this.#podIP) rt.podIP = this.#podIP;
    if (this.#startTime !== undefined) rt.startTime = this.#startTime;
    if (this.#terminal) rt.terminal = this.#terminal;
    return rt;
  }

  #initialState(c: V1Container, init = false): ContainerRuntimeState {
    const prev = (init ? this.#pod.status?.initContainerStatuses : this.#pod.status?.containerStatuses)?.find((s) => s.name === c.name);
    // After an agent restart the processes are new: count it as a restart, like a kubelet after a reboot.
    const wasStarted = !!(prev?.state?.running || prev?.state?.terminated || prev?.lastState?.terminated);
    const restartCount = (prev?.restartCount ?? 0) + (wasStarted ? 1 : 0);
    return { name: c.name, image: c.image ?? '', state: { kind: 'waiting', reason: 'ContainerCreating' }, restartCount, started: false, ready: false };
  }

  async #run(): Promise<void> {
    const pod = this.#pod;
    const prevIP = pod.status?.podIP;
    this.#podIP = prevIP && this.#d.ips.reserve(this.uid, prevIP) ? prevIP : this.#d.ips.allocate(this.uid);
    this.#startTime = pod.status?.startTime ? new Date(pod.status.startTime).getTime() : Date.now();
    const containers = pod.spec?.containers ?? [];
    const initContainers = pod.spec?.initContainers ?? [];
    this.#initialized = initContainers.length === 0;
    for (const c of initContainers) {
      this.#initWaiting.set(c.name, { ...this.#initialState(c, true), state: { kind: 'waiting', reason: 'PodInitializing' } });
    }
    for (const c of containers) {
      if (isOurImage(c.image, this.#d.images)) {
        const initial = this.#initialState(c);
        if (!this.#initialized) initial.state = { kind: 'waiting', reason: 'PodInitializing' };
        this.#waiting.set(c.name, initial);
      } else {
        const message = foreignImageMessage(c.image, this.#d.images);
        this.#waiting.set(c.name, foreignContainerState(c, message));
        this.#d.events.pod(pod, 'Warning', 'ErrImageNeverPull', message, `spec.containers{${c.name}}`);
        this.#log.warn({ container: c.name, image: c.image }, 'image not runnable on this node');
      }
    }
    this.markDirty();

    // Volumes: retry until ready (kubelet: ContainerCreating + FailedMount events).
    let volumes: Map<string, string> | undefined;
    let lastProblem = '';
    while (!this.#stopping) {
      try {
        await mkdir(podDir(this.#d.paths, this.uid), { recursive: true });
        volumes = await preparePodVolumes({ core: this.#d.core, paths: this.#d.paths, facts: this.#facts(), ...(this.#d.stageClaim ? { stageClaim: this.#d.stageClaim } : {}) }, this.#pod);
        break;
      } catch (err) {
        const problem = err instanceof VolumeNotReadyError ? err.message : `preparing volumes: ${describeError(err)}`;
        if (problem !== lastProblem) {
          this.#d.events.pod(this.#pod, 'Warning', 'FailedMount', `MountVolume.SetUp failed: ${problem}`);
          this.#log.warn({ problem }, 'volumes not ready; will retry');
          lastProblem = problem;
          this.#setWaiting('ContainerCreating', `waiting for volumes: ${problem}`);
        }
        await sleep(this.#d.retryMs);
      }
    }
    if (this.#stopping || !volumes) return;
    this.#volumes = volumes;
    this.#sandboxReady = true;
    this.markDirty();

    if (!(await this.#runInitContainers(volumes))) return;
    this.#initialized = true;
    for (const [name, st] of this.#waiting) {
      if (st.state.kind === 'waiting' && st.state.reason === 'PodInitializing') this.#waiting.set(name, { ...st, state: { kind: 'waiting', reason: 'ContainerCreating' } });
    }
    this.markDirty();

    await Promise.all(
      containers.filter((c) => isOurImage(c.image, this.#d.images)).map((c) => this.#startContainer(c, volumes)),
    );
  }

  #facts(): { podIP: string; hostIP: string; nodeName: string } {
    return { podIP: this.#podIP ?? '', hostIP: this.#d.hostIP, nodeName: this.#d.nodeName };
  }

  #setWaiting(reason: string, message: string): void {
    for (const [name, s] of this.#waiting) {
      if (s.state.kind === 'waiting' && s.state.reason === 'ErrImageNeverPull') continue;
      this.#waiting.set(name, { ...s, state: { kind: 'waiting', reason, message } });
    }
    this.markDirty();
  }

  async #refData(c: V1Container): Promise<RefData> {
    const namespace = this.#pod.metadata?.namespace ?? 'default';
    const refs = envReferences(c);
    const secrets = new Map<string, Record<string, string>>();
    const configMaps = new Map<string, Record<string, string>>();
    for (const name of refs.secrets) {
      try {
        const s = await this.#d.core.readNamespacedSecret({ name, namespace });
        const data: Record<string, string> = {};
        for (const [k, v] of Object.entries(s.data ?? {})) data[k] = Buffer.from(v, 'base64').toString('utf8');
        secrets.set(name, data);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    for (const name of refs.configMaps) {
      try {
        const cm = await this.#d.core.readNamespacedConfigMap({ name, namespace });
        configMaps.set(name, { ...(cm.data ?? {}) });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    return { secrets, configMaps };
  }

  /**
   * Run the init containers in order, each until it exits 0 (retried with back-off on
   * failure unless the pod's restartPolicy is Never, which fails the pod). Returns
   * false when the pod cannot get past them (stopping, failed, not runnable here).
   */
  async #runInitContainers(volumes: Map<string, string>): Promise<boolean> {
    for (const c of this.#pod.spec?.initContainers ?? []) {
      if (this.#stopping) return false;
      const fail = (reason: string, message: string): false => {
        const prev = this.#initWaiting.get(c.name) ?? this.#initialState(c, true);
        this.#initWaiting.set(c.name, { ...prev, state: { kind: 'waiting', reason, message } });
        this.#d.events.pod(this.#pod, 'Warning', reason, message, `spec.initContainers{${c.name}}`);
        this.#log.warn({ initContainer: c.name, reason }, message);
        this.markDirty();
        return false;
      };
      if (!isOurImage(c.image, this.#d.images)) return fail('ErrImageNeverPull', foreignImageMessage(c.image, this.#d.images));
      if (c.restartPolicy === 'Always') return fail('CreateContainerError', 'sidecar init containers (restartPolicy: Always) are not supported by the local node agent');
      await this.#startContainer(c, volumes, true);
      const runner = this.#initRunners.get(c.name);
      if (!runner) return false;
      await runner.whenFinished();
      if (this.#stopping) return false;
      const st = runner.state.state;
      if (st.kind !== 'terminated' || st.exitCode !== 0) {
        // Only reachable with restartPolicy Never: the pod has failed.
        this.#terminal = 'Failed';
        this.#log.info({ initContainer: c.name }, 'init container failed; pod failed');
        this.markDirty();
        return false;
      }
    }
    return true;
  }

  async #startContainer(c: V1Container, volumes: Map<string, string>, init = false): Promise<void> {
    const runners = init ? this.#initRunners : this.#runners;
    const waiting = init ? this.#initWaiting : this.#waiting;
    const specList = (): V1Container[] => (init ? this.#pod.spec?.initContainers : this.#pod.spec?.containers) ?? [];
    let lastProblem = '';
    while (!this.#stopping) {
      // The image changed meanwhile: #replaceContainer starts the new one.
      if ((specList().find((x) => x.name === c.name)?.image ?? '') !== (c.image ?? '')) return;
      try {
        const mounts: PathMapping[] = [];
        for (const vm of c.volumeMounts ?? []) {
          const base = volumes.get(vm.name);
          if (base === undefined) throw new ContainerConfigError(`volumeMount ${JSON.stringify(vm.name)} refers to no volume of the pod`);
          const hostPath = vm.subPath ? join(base, vm.subPath) : base;
          if (vm.subPath) await mkdir(hostPath, { recursive: true });
          mounts.push({ containerPath: vm.mountPath, hostPath });
        }
        const base = { ...this.#d.baseEnv, HOSTNAME: this.#pod.metadata?.name ?? '' };
        const env = resolveEnv(this.#pod, c, this.#facts(), await this.#refData(c), base);
        const initial = waiting.get(c.name) ?? this.#initialState(c, init);
        const launch: ContainerLaunch = { pod: this.#pod, container: c, podIP: this.#podIP ?? '', env, mounts };
        if (init) launch.restartPolicy = this.#pod.spec?.restartPolicy === 'Never' ? 'Never' : 'OnFailure';
        const runner = new ContainerRunner(
          launch,
          {
            paths: this.#d.paths,
            programs: this.#d.programs,
            backoff: this.#d.backoff,
            events: this.#d.events,
            log: this.#d.log,
            registry: this.#d.registry,
            onChange: () => this.#onContainerChange(),
          },
          initial.lastTerminated ? { restartCount: initial.restartCount, lastTerminated: initial.lastTerminated } : { restartCount: initial.restartCount },
        );
        if (this.#stopping || runners.has(c.name)) return;
        runners.set(c.name, runner);
        waiting.delete(c.name);
        await runner.start();
        return;
      } catch (err) {
        const configError = err instanceof ContainerConfigError;
        const problem = configError ? err.message : describeError(err);
        if (problem !== lastProblem) {
          lastProblem = problem;
          this.#log.warn({ container: c.name, problem }, 'container cannot start yet; will retry');
          this.#d.events.pod(this.#pod, 'Warning', 'Failed', `Error: ${problem}`, `spec.${init ? 'initContainers' : 'containers'}{${c.name}}`);
          const prev = waiting.get(c.name) ?? this.#initialState(c, init);
          waiting.set(c.name, { ...prev, state: { kind: 'waiting', reason: configError ? 'CreateContainerConfigError' : 'CreateContainerError', message: problem } });
          this.markDirty();
        }
        await sleep(this.#d.retryMs);
      }
    }
  }

  #onContainerChange(): void {
    if (!this.#stopping && !this.#terminal) {
      const policy = this.#pod.spec?.restartPolicy ?? 'Always';
      const specNames = (this.#pod.spec?.containers ?? []).map((c) => c.name);
      const allFinished = specNames.length > 0 && specNames.every((n) => this.#runners.get(n)?.finished === true);
      if (policy !== 'Always' && allFinished) {
        const phase = podPhase(policy, specNames, this.#runtime().containers);
        if (phase === 'Succeeded' || phase === 'Failed') {
          this.#terminal = phase;
          this.#log.info({ phase }, 'pod reached a terminal phase');
        }
      }
    }
    this.markDirty();
  }

  /** Ask for a status write (coalesced; one write in flight per pod). */
  markDirty(): void {
    this.#dirty = true;
    if (this.#writing || this.#gone) return;
    this.#writing = this.#writeLoop().finally(() => {
      this.#writing = undefined;
    });
  }

  async #writeLoop(): Promise<void> {
    let failures = 0;
    while (this.#dirty && !this.#gone) {
      this.#dirty = false;
      try {
        await this.#writeStatus();
        failures = 0;
      } catch (err) {
        if (isNotFound(err)) {
          this.#gone = true;
          return;
        }
        failures++;
        this.#log.warn({ err: describeError(err) }, 'pod status update failed; will retry');
        this.#dirty = true;
        await sleep(Math.min(200 * 2 ** failures, 5000));
      }
    }
  }

  async #writeStatus(): Promise<void> {
    const desired = computePodStatus(this.#pod, this.#runtime(), Date.now());
    if (canonical(desired) === canonical(liveStatusSubset(this.#pod))) return;
    const name = this.#pod.metadata?.name ?? '';
    const namespace = this.#pod.metadata?.namespace ?? 'default';
    const updated = await this.#d.core.patchNamespacedPodStatus({ name, namespace, body: { status: desired } }, mergePatch);
    this.update(updated);
  }

  /**
   * Stop the pod's processes (SIGTERM, `graceMs`, SIGKILL), then — when the pod
   * object is being deleted — write the final status and remove the object with
   * gracePeriodSeconds 0, and clean up the pod's directories and IP.
   */
  terminate(graceMs: number, opts: { deleteObject: boolean }): Promise<void> {
    this.#terminating ??= this.#terminate(graceMs, opts).catch((err: unknown) => {
      this.#log.error({ err: describeError(err) }, 'stopping the pod failed');
    });
    return this.#terminating;
  }

  async #terminate(graceMs: number, opts: { deleteObject: boolean }): Promise<void> {
    this.#stopping = true;
    await Promise.all([...this.#initRunners.values(), ...this.#runners.values()].map((r) => r.stop(graceMs)));
    await this.#running;
    if (opts.deleteObject && !this.#gone) {
      this.markDirty();
      await this.#writing;
      const name = this.#pod.metadata?.name ?? '';
      const namespace = this.#pod.metadata?.namespace ?? 'default';
      try {
        await this.#d.core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0, body: { gracePeriodSeconds: 0, preconditions: { uid: this.uid } } });
        this.#log.info('pod stopped and deleted');
      } catch (err) {
        if (!isNotFound(err) && !(describeError(err).includes('Precondition failed'))) {
          this.#log.warn({ err: describeError(err) }, 'could not delete the pod object');
        }
      }
    }
    this.#gone = true;
    await this.#writing;
    await rm(podDir(this.#d.paths, this.uid), { recursive: true, force: true });
    if (opts.deleteObject) {
      await rm(podLogDir(this.#d.paths, this.#pod.metadata?.namespace ?? '', this.#pod.metadata?.name ?? '', this.uid), { recursive: true, force: true });
    }
    this.#d.ips.release(this.uid);
    this.#d.releaseVolumes?.(this.uid);
    this.#stopped = true;
  }

  /** Processes stopped and cleaned up after `terminate` (the object may still exist, e.g. finalizers). */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Stop the processes only (agent shutdown): the pod object and its data stay. */
  async shutdown(graceMs: number): Promise<void> {
    this.#stopping = true;
    this.#gone = true;
    await Promise.all([...this.#initRunners.values(), ...this.#runners.values()].map((r) => r.stop(graceMs)));
    await this.#running;
    await this.#writing;
    await this.#terminating;
    this.#d.releaseVolumes?.(this.uid);
  }
}
