import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { canonical, computePodStatus, liveStatusSubset, podPhase, type ContainerRuntimeState, type PodRuntimeState } from '../../../../dev/agent/pod-status.ts';
import { formatTime } from '../../../../src/kube/time.ts';

const t0 = Date.parse('2026-01-01T10:00:00Z');
const pod = (over: Partial<V1Pod['spec']> = {}, status?: V1Pod['status']): V1Pod => ({
  metadata: { name: 'p', namespace: 'n', uid: 'u' },
  spec: { containers: [{ name: 'server', image: 'eventlog:dev' }], ...over },
  ...(status ? { status } : {}),
});

const running = (over: Partial<ContainerRuntimeState> = {}): ContainerRuntimeState => ({
  name: 'server',
  image: 'eventlog:dev',
  state: { kind: 'running', startedAt: t0, containerID: 'process://42' },
  restartCount: 0,
  started: true,
  ready: true,
  ...over,
});

const rt = (containers: ContainerRuntimeState[], over: Partial<PodRuntimeState> = {}): PodRuntimeState => ({
  hostIP: '127.0.0.1',
  podIP: '127.1.0.5',
  sandboxReady: true,
  startTime: t0,
  containers,
  ...over,
});

const lastCrash = { exitCode: 1, reason: 'Error', message: 'boom', startedAt: t0, finishedAt: t0 + 1000, containerID: 'process://41' };

describe('podPhase (kubelet getPhase)', () => {
  const waitingNew: ContainerRuntimeState = { ...running(), state: { kind: 'waiting', reason: 'ContainerCreating' } };
  const crashLoop: ContainerRuntimeState = { ...running(), state: { kind: 'waiting', reason: 'CrashLoopBackOff' }, lastTerminated: lastCrash };
  const done = (exitCode: number): ContainerRuntimeState => ({ ...running(), state: { kind: 'terminated', ...lastCrash, exitCode } });
  it.each([
    ['Always', [waitingNew], 'Pending'],
    ['Always', [running()], 'Running'],
    ['Always', [crashLoop], 'Running'],
    ['Always', [done(1)], 'Running'],
    ['Never', [done(0)], 'Succeeded'],
    ['Never', [done(1)], 'Failed'],
    ['OnFailure', [done(1)], 'Running'],
    ['OnFailure', [done(0)], 'Succeeded'],
    ['Always', [], 'Pending'],
  ] as const)('%s with %j -> %s', (policy, containers, want) => {
    expect(podPhase(policy, ['server'], [...containers])).toBe(want);
  });

  it('keeps a terminal phase', () => {
    expect(podPhase('Never', ['server'], [running()], 'Failed')).toBe('Failed');
  });
});

describe('computePodStatus', () => {
  it('reports a ready running pod like a kubelet', () => {
    const s = computePodStatus(pod(), rt([running()]), t0 + 5000);
    expect(s.phase).toBe('Running');
    expect(s.podIP).toBe('127.1.0.5');
    expect(s.podIPs).toEqual([{ ip: '127.1.0.5' }]);
    expect(s.hostIP).toBe('127.0.0.1');
    expect(s.startTime).toBe('2026-01-01T10:00:00Z');
    expect(s.conditions.map((c) => [c.type, c.status])).toEqual([
      ['PodReadyToStartContainers', 'True'],
      ['Initialized', 'True'],
      ['Ready', 'True'],
      ['ContainersReady', 'True'],
      ['PodScheduled', 'True'],
    ]);
    expect(s.containerStatuses).toEqual([
      {
        name: 'server',
        image: 'eventlog:dev',
        imageID: '',
        containerID: 'process://42',
        ready: true,
        started: true,
        restartCount: 0,
        state: { running: { startedAt: '2026-01-01T10:00:00Z' } },
        lastState: {},
      },
    ]);
  });

  it('reports a crash loop with the last termination', () => {
    const c: ContainerRuntimeState = {
      ...running(),
      state: { kind: 'waiting', reason: 'CrashLoopBackOff', message: 'back-off 10s restarting failed container=server pod=p_n(u)' },
      lastTerminated: lastCrash,
      restartCount: 3,
      ready: false,
      started: false,
    };
    const s = computePodStatus(pod(), rt([c]), t0 + 5000);
    expect(s.phase).toBe('Running');
    const ready = s.conditions.find((x) => x.type === 'Ready');
    expect(ready).toMatchObject({ status: 'False', reason: 'ContainersNotReady', message: 'containers with unready status: [server]' });
    expect(s.containerStatuses[0]).toMatchObject({
      ready: false,
      started: false,
      restartCount: 3,
      containerID: 'process://41',
      state: { waiting: { reason: 'CrashLoopBackOff', message: expect.stringContaining('back-off 10s') } },
      lastState: { terminated: { exitCode: 1, reason: 'Error', message: 'boom', startedAt: '2026-01-01T10:00:00Z', finishedAt: '2026-01-01T10:00:01Z' } },
    });
  });

  it('is not ready while the readiness probe has not passed', () => {
    const s = computePodStatus(pod(), rt([running({ ready: false })]), t0);
    expect(s.containerStatuses[0]?.ready).toBe(false);
    expect(s.containerStatuses[0]?.started).toBe(true);
    expect(s.conditions.find((c) => c.type === 'ContainersReady')?.status).toBe('False');
  });

  it('keeps lastTransitionTime while a condition holds and moves it on a change', () => {
    const earlier = new Date(t0 - 60_000);
    const live = pod({}, {
      conditions: [
        { type: 'Ready', status: 'True', lastTransitionTime: earlier },
        { type: 'ContainersReady', status: 'False', lastTransitionTime: earlier },
        { type: 'example.com/gate', status: 'True' },
      ],
    });
    const s = computePodStatus(live, rt([running()]), t0);
    expect(s.conditions.find((c) => c.type === 'Ready')?.lastTransitionTime).toBe(formatTime(earlier));
    expect(s.conditions.find((c) => c.type === 'ContainersReady')?.lastTransitionTime).toBe(formatTime(t0));
    expect(s.conditions.find((c) => c.type === 'example.com/gate')).toBeDefined(); // not ours: kept
  });

  it('honours readiness gates', () => {
    const gated = pod({ readinessGates: [{ conditionType: 'example.com/lb' }] });
    const s = computePodStatus(gated, rt([running()]), t0);
    expect(s.conditions.find((c) => c.type === 'ContainersReady')?.status).toBe('True');
    expect(s.conditions.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'ReadinessGatesNotReady' });
  });

  it('marks a foreign-image pod Pending with the waiting reason', () => {
    const c: ContainerRuntimeState = { name: 'server', image: 'nginx', state: { kind: 'waiting', reason: 'ErrImageNeverPull', message: 'not here' }, restartCount: 0, started: false, ready: false };
    const s = computePodStatus(pod(), rt([c]), t0);
    expect(s.phase).toBe('Pending');
    expect(s.containerStatuses[0]).toMatchObject({ state: { waiting: { reason: 'ErrImageNeverPull', message: 'not here' } } });
  });

  it('reports init containers: Pending and not Initialized until they complete', () => {
    const withInit = pod({ initContainers: [{ name: 'verify', image: 'eventlog:dev' }] });
    const initRunning: ContainerRuntimeState = { ...running(), name: 'verify' };
    const appWaiting: ContainerRuntimeState = { ...running(), state: { kind: 'waiting', reason: 'PodInitializing' }, ready: false, started: false };
    const s = computePodStatus(withInit, rt([appWaiting], { initContainers: [initRunning], initialized: false }), t0);
    expect(s.phase).toBe('Pending');
    expect(s.conditions.find((c) => c.type === 'Initialized')).toMatchObject({ status: 'False', reason: 'ContainersNotInitialized', message: 'containers with incomplete status: [verify]' });
    expect(s.initContainerStatuses?.[0]).toMatchObject({ name: 'verify', ready: false, started: true });

    const initDone: ContainerRuntimeState = { ...initRunning, state: { kind: 'terminated', exitCode: 0, reason: 'Completed', startedAt: t0, finishedAt: t0 }, started: false };
    const done = computePodStatus(withInit, rt([running()], { initContainers: [initDone], initialized: true }), t0);
    expect(done.phase).toBe('Running');
    expect(done.conditions.find((c) => c.type === 'Initialized')?.status).toBe('True');
    expect(done.initContainerStatuses?.[0]).toMatchObject({ ready: true, started: false, state: { terminated: { exitCode: 0, reason: 'Completed' } } });

    const failed = computePodStatus(withInit, rt([appWaiting], { initContainers: [{ ...initDone, state: { ...initDone.state, exitCode: 1, reason: 'Error' } as ContainerRuntimeState['state'] }], initialized: false, terminal: 'Failed' }), t0);
    expect(failed.phase).toBe('Failed');
  });

  it('compares equal to the same status read back from the API (Dates, nulls, key order)', () => {
    const s = computePodStatus(pod(), rt([running()]), t0);
    const readBack = JSON.parse(JSON.stringify(s), (_k, v: unknown) =>
      typeof v === 'string' && /^\d{4}-\d\d-\d\dT/.test(v) ? new Date(v) : v,
    ) as V1Pod['status'];
    const live = pod({}, { ...readBack, nominatedNodeName: undefined });
    expect(canonical(liveStatusSubset(live))).toBe(canonical(s));
    const changed = pod({}, { ...readBack, phase: 'Pending' });
    expect(canonical(liveStatusSubset(changed))).not.toBe(canonical(s));
  });
});
