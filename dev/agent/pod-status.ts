/**
 * Pod status computation, a pure function of the pod and what the agent knows
 * about its containers. Follows the kubelet: phase from container states
 * (getPhase), the standard conditions with lastTransitionTime kept while a
 * condition's status does not change, and containerStatuses in spec order.
 * The output is plain JSON (times are RFC 3339 strings, second precision) so
 * it can be compared with the live status and sent as a merge patch.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { formatTime } from '../../src/kube/time.ts';

export interface Terminated {
  exitCode: number;
  signal?: number;
  reason: string;
  message?: string;
  startedAt: number;
  finishedAt: number;
  containerID?: string;
}

export type ContainerState =
  | { kind: 'waiting'; reason: string; message?: string }
  | { kind: 'running'; startedAt: number; containerID: string }
  | ({ kind: 'terminated' } & Terminated);

export interface ContainerRuntimeState {
  name: string;
  image: string;
  state: ContainerState;
  lastTerminated?: Terminated;
  restartCount: number;
  /** Startup probe passed (or none). */
  started: boolean;
  /** Readiness probe passed (or none) while running. */
  ready: boolean;
}

export interface PodRuntimeState {
  hostIP: string;
  podIP?: string;
  /** Set once the pod's IP and volumes are ready (kubelet: sandbox created). */
  sandboxReady: boolean;
  startTime?: number;
  containers: ContainerRuntimeState[];
  /** Init containers, in spec order (those known so far). */
  initContainers?: ContainerRuntimeState[];
  /** Every init container has completed (default true). */
  initialized?: boolean;
  /** The pod has reached a terminal phase (it will not be restarted again). */
  terminal?: 'Succeeded' | 'Failed';
}

/** The subset of V1PodStatus this agent writes, as JSON. */
export interface PodStatusJson {
  phase: string;
  conditions: ConditionJson[];
  hostIP: string;
  hostIPs: { ip: string }[];
  podIP?: string;
  podIPs?: { ip: string }[];
  startTime?: string;
  containerStatuses: Record<string, unknown>[];
  initContainerStatuses?: Record<string, unknown>[];
  qosClass?: string;
}

export interface ConditionJson {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime: string;
  lastProbeTime: null;
}


/** Kubelet getPhase over our container states. */
export function podPhase(restartPolicy: string | undefined, specContainers: readonly string[], containers: readonly ContainerRuntimeState[], terminal?: 'Succeeded' | 'Failed'): string {
  if (terminal) return terminal;
  let unknown = 0;
  let running = 0;
  let waiting = 0;
  let stopped = 0;
  let succeeded = 0;
  for (const name of specContainers) {
    const c = containers.find((x) => x.name === name);
    if (!c) {
      unknown++;
      continue;
    }
    switch (c.state.kind) {
      case 'running':
        running++;
        break;
      case 'terminated':
        stopped++;
        if (c.state.exitCode === 0) succeeded++;
        break;
      case 'waiting':
        if (c.lastTerminated) stopped++;
        else waiting++;
        break;
    }
  }
  const policy = restartPolicy ?? 'Always';
  if (waiting > 0) return 'Pending';
  if (running > 0 && unknown === 0) return 'Running';
  if (running === 0 && stopped > 0 && unknown === 0) {
    if (policy === 'Always') return 'Running';
    if (stopped === succeeded) return 'Succeeded';
    if (policy === 'Never') return 'Failed';
    return 'Running';
  }
  return 'Pending';
}

function terminatedJson(t: Terminated): Record<string, unknown> {
  const out: Record<string, unknown> = {
    exitCode: t.exitCode,
    reason: t.reason,
    startedAt: formatTime(t.startedAt),
    finishedAt: formatTime(t.finishedAt),
  };
  if (t.signal !== undefined) out.signal = t.signal;
  if (t.message) out.message = t.message;
  if (t.containerID) out.containerID = t.containerID;
  return out;
}

function containerStatusJson(c: ContainerRuntimeState, init = false): Record<string, unknown> {
  let state: Record<string, unknown>;
  let containerID: string | undefined;
  switch (c.state.kind) {
    case 'waiting':
      state = { waiting: c.state.message ? { reason: c.state.reason, message: c.state.message } : { reason: c.state.reason } };
      containerID = c.lastTerminated?.containerID;
      break;
    case 'running':
      state = { running: { startedAt: formatTime(c.state.startedAt) } };
      containerID = c.state.containerID;
      break;
    case 'terminated':
      state = { terminated: terminatedJson(c.state) };
      containerID = c.state.containerID;
      break;
  }
  const out: Record<string, unknown> = {
    name: c.name,
    image: c.image,
    imageID: '',
    // An init container is "ready" once it has completed successfully.
    ready: init ? c.state.kind === 'terminated' && c.state.exitCode === 0 : c.state.kind === 'running' && c.started && c.ready,
    started: c.state.kind === 'running' && c.started,
    restartCount: c.restartCount,
    state,
    lastState: c.lastTerminated ? { terminated: terminatedJson(c.lastTerminated) } : {},
  };
  if (containerID) out.containerID = containerID;
  return out;
}

function previousCondition(pod: V1Pod, type: string): { status?: string; lastTransitionTime?: unknown } | undefined {
  return pod.status?.conditions?.find((c) => c.type === type);
}

function condition(pod: V1Pod, now: number, type: string, ok: boolean, reason?: string, message?: string): ConditionJson {
  const status = ok ? 'True' : 'False';
  const prev = previousCondition(pod, type);
  const since = prev && prev.status === status && prev.lastTransitionTime ? formatTime(prev.lastTransitionTime as Date | string) : formatTime(now);
  const out: ConditionJson = { type, status, lastTransitionTime: since, lastProbeTime: null };
  if (!ok && reason) out.reason = reason;
  if (!ok && message) out.message = message;
  return out;
}

/** Condition types this agent owns; any others on the pod (readiness gates, DisruptionTarget) are kept. */
export const ownedConditionTypes = ['PodReadyToStartContainers', 'Initialized', 'Ready', 'ContainersReady', 'PodScheduled'];

export function computePodStatus(pod: V1Pod, rt: PodRuntimeState, now: number): PodStatusJson {
  const specNames = (pod.spec?.containers ?? []).map((c) => c.name);
  const initialized = rt.initialized ?? true;
  const phase = initialized ? podPhase(pod.spec?.restartPolicy, specNames, rt.containers, rt.terminal) : (rt.terminal ?? 'Pending');
  const initNames = (pod.spec?.initContainers ?? []).map((c) => c.name);
  const initByName = new Map((rt.initContainers ?? []).map((c) => [c.name, c]));
  const incomplete = initNames.filter((n) => {
    const c = initByName.get(n);
    return !(c && c.state.kind === 'terminated' && c.state.exitCode === 0);
  });
  const byName = new Map(rt.containers.map((c) => [c.name, c]));
  const statuses = specNames.map((name) => byName.get(name)).filter((c): c is ContainerRuntimeState => c !== undefined);
  const unready = specNames.filter((name) => {
    const c = byName.get(name);
    return !c || !(c.state.kind === 'running' && c.started && c.ready);
  });
  const completed = phase === 'Succeeded' || phase === 'Failed';
  const containersReady = unready.length === 0 && !completed;
  const notReadyReason = completed ? 'PodCompleted' : 'ContainersNotReady';
  const notReadyMessage = completed ? undefined : `containers with unready status: [${unready.join(' ')}]`;

  // Readiness gates: Ready also needs every gate condition True.
  const gates = (pod.spec?.readinessGates ?? []).map((g) => g.conditionType);
  const failedGates = gates.filter((t) => pod.status?.conditions?.find((c) => c.type === t)?.status !== 'True');
  const ready = containersReady && failedGates.length === 0;
  const readyReason = !containersReady ? notReadyReason : 'ReadinessGatesNotReady';
  const readyMessage = !containersReady ? notReadyMessage : `corresponding condition of pod readiness gate ${failedGates.map((g) => JSON.stringify(g)).join(', ')} does not exist or is not True.`;

  const foreign = (pod.status?.conditions ?? [])
    .filter((c) => !ownedConditionTypes.includes(c.type))
    .map((c) => JSON.parse(JSON.stringify(c)) as ConditionJson);
  const conditions: ConditionJson[] = [
    condition(pod, now, 'PodReadyToStartContainers', rt.sandboxReady && !completed),
    condition(pod, now, 'Initialized', initialized, 'ContainersNotInitialized', `containers with incomplete status: [${incomplete.join(' ')}]`),
    condition(pod, now, 'Ready', ready, readyReason, readyMessage),
    condition(pod, now, 'ContainersReady', containersReady, notReadyReason, notReadyMessage),
    condition(pod, now, 'PodScheduled', true),
    ...foreign,
  ];

  const out: PodStatusJson = {
    phase,
    conditions,
    hostIP: rt.hostIP,
    hostIPs: [{ ip: rt.hostIP }],
    containerStatuses: statuses.map((c) => containerStatusJson(c)),
  };
  if (initNames.length > 0) {
    out.initContainerStatuses = initNames
      .map((n) => initByName.get(n))
      .filter((c): c is ContainerRuntimeState => c !== undefined)
      .map((c) => containerStatusJson(c, true));
  }
  if (rt.podIP) {
    out.podIP = rt.podIP;
    out.podIPs = [{ ip: rt.podIP }];
  }
  if (rt.startTime !== undefined) out.startTime = formatTime(rt.startTime);
  if (pod.status?.qosClass) out.qosClass = pod.status.qosClass;
  return out;
}

/** Stable JSON for comparing a computed status with the live one (Dates as RFC 3339 seconds, keys sorted). */
export function canonical(value: unknown): string {
  const norm = (v: unknown): unknown => {
    if (v instanceof Date) return formatTime(v);
    if (typeof v === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(v)) return formatTime(v);
    if (Array.isArray(v)) return v.map(norm);
    if (v && typeof v === 'object') {
      const o: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) {
        const x = (v as Record<string, unknown>)[k];
        if (x === undefined || x === null) continue;
        o[k] = norm(x);
      }
      return o;
    }
    return v;
  };
  return JSON.stringify(norm(value));
}

/** The live pod status restricted to the fields `computePodStatus` produces. */
export function liveStatusSubset(pod: V1Pod): Record<string, unknown> {
  const s = (pod.status ?? {}) as Record<string, unknown>;
  const keys: (keyof PodStatusJson)[] = ['phase', 'conditions', 'hostIP', 'hostIPs', 'podIP', 'podIPs', 'startTime', 'containerStatuses', 'initContainerStatuses', 'qosClass'];
  const out: Record<string, unknown> = {};
  for (const k of keys) if (s[k] !== undefined) out[k] = s[k];
  return out;
}
