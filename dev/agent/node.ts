/**
 * Node registration and heartbeat: a Node object for this machine (address
 * 127.0.0.1, capacity from the host), its status with the Ready condition
 * refreshed every `heartbeatMs`, and the node Lease in kube-node-lease — the
 * two signals the node lifecycle controller watches.
 */
import { cpus, hostname, release, totalmem, type } from 'node:os';
import type { CoordinationV1Api, CoreV1Api, V1Node } from '@kubernetes/client-node';
import type { Logger } from '../../src/common/logger.ts';
import { describeError, isAlreadyExists, isNotFound, mergePatch } from './kube.ts';
import { formatMicroTime, formatTime } from '../../src/kube/time.ts';

export const agentVersion = 'v1.35.0-eventlog-agent';

export interface NodeIdentity {
  name: string;
  hostIP: string;
  maxPods: number;
}

const arch = (): string => ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' })[process.arch as string] ?? process.arch;

export function nodeObject(id: NodeIdentity): V1Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: id.name,
      labels: {
        'kubernetes.io/hostname': id.name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': arch(),
        'beta.kubernetes.io/os': 'linux',
        'beta.kubernetes.io/arch': arch(),
        'eventlog.dev/local-agent': 'true',
      },
      annotations: { 'node.alpha.kubernetes.io/ttl': '0' },
    },
    spec: {},
  };
}

/** The node status the agent reports (JSON; times as RFC 3339). */
export function nodeStatus(id: NodeIdentity, now: number, readySince: number): Record<string, unknown> {
  const memKi = `${Math.floor(totalmem() / 1024)}Ki`;
  const resources = { cpu: String(cpus().length), memory: memKi, pods: String(id.maxPods), 'ephemeral-storage': '100Gi' };
  const hb = formatTime(now);
  const since = formatTime(readySince);
  const cond = (t: string, status: string, reason: string, message: string): Record<string, unknown> => ({
    type: t,
    status,
    reason,
    message,
    lastHeartbeatTime: hb,
    lastTransitionTime: since,
  });
  return {
    capacity: resources,
    allocatable: resources,
    addresses: [
      { type: 'InternalIP', address: id.hostIP },
      { type: 'Hostname', address: id.name },
    ],
    conditions: [
      cond('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'node agent has sufficient memory available'),
      cond('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'node agent has no disk pressure'),
      cond('PIDPressure', 'False', 'KubeletHasSufficientPID', 'node agent has sufficient PID available'),
      cond('Ready', 'True', 'KubeletReady', 'eventlog node agent is posting ready status (pods run as local processes)'),
    ],
    daemonEndpoints: { kubeletEndpoint: { Port: 0 } },
    nodeInfo: {
      machineID: hostname(),
      systemUUID: hostname(),
      bootID: `${process.pid}`,
      kernelVersion: release(),
      osImage: `${type()} (eventlog local node agent)`,
      containerRuntimeVersion: `process://node-${process.version}`,
      kubeletVersion: agentVersion,
      kubeProxyVersion: '',
      operatingSystem: 'linux',
      architecture: arch(),
    },
  };
}

export class NodeHeartbeat {
  readonly #core: CoreV1Api;
  readonly #coordination: CoordinationV1Api;
  readonly #id: NodeIdentity;
  readonly #log: Logger;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #readySince = Date.now();
  #beating: Promise<void> = Promise.resolve();

  constructor(core: CoreV1Api, coordination: CoordinationV1Api, id: NodeIdentity, log: Logger, intervalMs: number) {
    this.#core = core;
    this.#coordination = coordination;
    this.#id = id;
    this.#log = log;
    this.#intervalMs = intervalMs;
  }

  /** Create (or adopt) the Node and post the first status; throws if the API server refuses. */
  async register(): Promise<void> {
    try {
      await this.#core.createNode({ body: nodeObject(this.#id) });
      this.#log.info({ node: this.#id.name }, 'node registered');
    } catch (err) {
      if (!isAlreadyExists(err)) throw new Error(`registering node ${this.#id.name}: ${describeError(err)}`);
      const labels = nodeObject(this.#id).metadata?.labels;
      await this.#core.patchNode({ name: this.#id.name, body: { metadata: { labels } } }, mergePatch);
      this.#log.info({ node: this.#id.name }, 'node already registered; adopting it');
    }
    await this.#postStatus();
    await this.#renewLease();
  }

  start(): void {
    const tick = (): void => {
      this.#beating = this.#beat().finally(() => {
        if (this.#timer !== undefined) this.#timer = setTimeout(tick, this.#intervalMs);
      });
    };
    this.#timer = setTimeout(tick, this.#intervalMs);
  }

  async stop(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#beating;
  }

  async #beat(): Promise<void> {
    try {
      await this.#postStatus();
      await this.#renewLease();
    } catch (err) {
      this.#log.warn({ node: this.#id.name, err: describeError(err) }, 'node heartbeat failed; will retry');
    }
  }

  async #postStatus(): Promise<void> {
    try {
      await this.#core.patchNodeStatus({ name: this.#id.name, body: { status: nodeStatus(this.#id, Date.now(), this.#readySince) } }, mergePatch);
    } catch (err) {
      if (isNotFound(err)) {
        // Someone deleted our Node: register again, like a kubelet does on restart.
        this.#log.warn({ node: this.#id.name }, 'node object was deleted; registering again');
        this.#readySince = Date.now();
        await this.#core.createNode({ body: nodeObject(this.#id) });
        await this.#core.patchNodeStatus({ name: this.#id.name, body: { status: nodeStatus(this.#id, Date.now(), this.#readySince) } }, mergePatch);
        return;
      }
      throw err;
    }
  }

  async #renewLease(): Promise<void> {
    // MicroTime must carry exactly six fractional digits for the API server.
    const renewTime = formatMicroTime(new Date()) as unknown as Date;
    const namespace = 'kube-node-lease';
    const name = this.#id.name;
    const spec = { holderIdentity: name, leaseDurationSeconds: 40, renewTime };
    try {
      const lease = await this.#coordination.readNamespacedLease({ name, namespace });
      lease.spec = { ...lease.spec, ...spec };
      await this.#coordination.replaceNamespacedLease({ name, namespace, body: lease });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await this.#coordination.createNamespacedLease({
        namespace,
        body: {
          metadata: { name, namespace, ownerReferences: [] },
          spec,
        },
      });
    }
  }
}
