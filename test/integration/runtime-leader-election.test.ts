/**
 * Leader election on a real coordination.k8s.io/v1 Lease of the shared control plane:
 * two candidates in this process, each with its own HTTP client and lock, with short
 * timings (lease 6 s, renew deadline 4.5 s, retry 1 s) so failover takes seconds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoordinationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { createLogger } from '../../src/common/logger.ts';
import { LeaderElector } from '../../src/runtime/leader-election.ts';
import { KubeLeaseLock } from '../../src/runtime/lease-lock.ts';
import { freshNamespace, kubeConfigFromInject, waitFor, type FreshNamespace } from './helpers.ts';

interface Candidate {
  elector: LeaderElector;
  log: string[];
  done: Promise<void>;
}

// Shorter than the 15 s / 10 s / 2 s defaults so failover takes seconds, with enough slack
// (renewDeadline - retryPeriod = 3.5 s) that a loaded 2-core machine does not lose leadership.
const TIMING = { leaseDurationMs: 6_000, renewDeadlineMs: 4_500, retryPeriodMs: 1_000 };

describe('leader election against a real Lease', () => {
  let kc: KubeConfig;
  let ns: FreshNamespace;
  let leases: CoordinationV1Api;
  const started: LeaderElector[] = [];

  const lease = () => leases.readNamespacedLease({ name: 'eventlog-operator', namespace: ns.name });

  function candidate(identity: string): Candidate {
    const log: string[] = [];
    const elector = new LeaderElector({
      ...TIMING,
      identity,
      lock: new KubeLeaseLock(kc, ns.name, 'eventlog-operator'),
      logger: createLogger(`le-${identity}`, process.env.LOG_LEVEL ?? 'warn'),
      callbacks: {
        onStartedLeading: () => log.push('started'),
        onStoppedLeading: () => log.push('stopped'),
        onNewLeader: (id) => log.push(`leader ${id}`),
      },
    });
    started.push(elector);
    return { elector, log, done: elector.run() };
  }

  beforeAll(async () => {
    kc = kubeConfigFromInject();
    leases = kc.makeApiClient(CoordinationV1Api);
    ns = await freshNamespace('rt-leader', kc);
  });

  afterAll(async () => {
    for (const e of started) await e.stop();
    await ns?.cleanup();
  });

  it('one of two candidates leads; a release hands over at once; a vanished leader is replaced after expiry', async () => {
    const a = candidate('candidate-a');
    const b = candidate('candidate-b');
    const leaderOf = () => [a, b].filter((c) => c.elector.isLeader());
    const first = (await waitFor(() => (leaderOf().length === 1 ? leaderOf()[0] : undefined), { message: 'one leader', timeoutMs: 30_000 }))!;
    const second = first === a ? b : a;

    // Over several renewals there is exactly one leader, and the Lease names it.
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 1_000));
      expect(leaderOf()).toEqual([first]);
    }
    let l = await lease();
    expect(l.spec?.holderIdentity).toBe(first.elector.identity);
    expect(l.spec?.leaseDurationSeconds).toBe(6);
    expect(l.spec?.leaseTransitions).toBe(0);
    expect(second.log).toEqual([`leader ${first.elector.identity}`]);
    await waitFor(async () => (await lease()).metadata?.resourceVersion !== l.metadata?.resourceVersion, { message: 'a renewal' });

    // Graceful stop: the leader releases, the other takes over (well within a lease duration).
    await first.elector.stop();
    await first.done;
    expect(first.log).toEqual([`leader ${first.elector.identity}`, 'started', 'stopped']);
    await waitFor(() => second.elector.isLeader(), { message: 'the second candidate to take over after the release', timeoutMs: 15_000 });
    l = await lease();
    expect(l.spec?.holderIdentity).toBe(second.elector.identity);
    expect(l.spec?.leaseTransitions).toBe(1);
    expect(String(l.spec?.renewTime)).toMatch(/\.\d{6}Z$/); // MicroTime as written; client-node returns it as a string

    // A leader that vanishes without releasing (like a killed process) is replaced by a
    // new candidate once the Lease expires by that candidate's own clock.
    const c = candidate('candidate-c');
    await waitFor(() => c.log.includes(`leader ${second.elector.identity}`), { message: 'c to observe the leader' });
    await second.elector.stop({ release: false });
    expect((await lease()).spec?.holderIdentity).toBe(second.elector.identity); // not released
    await waitFor(() => c.elector.isLeader(), { message: 'c to take over after the lease expired', timeoutMs: 20_000 });
    l = await lease();
    expect(l.spec?.holderIdentity).toBe('candidate-c');
    expect(l.spec?.leaseTransitions).toBe(2);
    expect(c.log).toEqual([`leader ${second.elector.identity}`, 'leader candidate-c', 'started']);
  });
});
