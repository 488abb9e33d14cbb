import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock, flushMicrotasks } from '../../../src/runtime/clock.ts';
import { KubeApiError } from '../../../src/runtime/kube-http.ts';
import { LeaderElector, defaultIdentity } from '../../../src/runtime/leader-election.ts';
import type { LeaseLock, LeaseRecord, LeaseSnapshot } from '../../../src/runtime/lease-lock.ts';
import { formatMicroTime } from '../../../src/kube/time.ts';

/** The API server's copy of one Lease, shared by the candidates' locks. */
class LeaseServer {
  current: LeaseSnapshot | undefined;
  #rv = 1;
  writes = 0;

  lockFor(name: string): FakeLock {
    return new FakeLock(this, name);
  }

  get(): LeaseSnapshot | undefined {
    return this.current && structuredClone(this.current);
  }
  create(record: LeaseRecord): LeaseSnapshot {
    if (this.current) throw new KubeApiError('POST leases', 409, { reason: 'AlreadyExists' });
    this.writes++;
    this.current = { record: structuredClone(record), resourceVersion: String(++this.#rv) };
    return structuredClone(this.current);
  }
  update(prev: LeaseSnapshot, record: LeaseRecord): LeaseSnapshot {
    if (!this.current) throw new KubeApiError('PUT leases', 404, { reason: 'NotFound' });
    if (this.current.resourceVersion !== prev.resourceVersion) throw new KubeApiError('PUT leases', 409, { reason: 'Conflict' });
    this.writes++;
    this.current = { record: structuredClone(record), resourceVersion: String(++this.#rv) };
    return structuredClone(this.current);
  }
}

/** One candidate's view of the server, with fault injection. */
class FakeLock implements LeaseLock {
  readonly description: string;
  readonly #server: LeaseServer;
  /** Every call rejects with 503. */
  down = false;
  /** Every call hangs until its signal aborts. */
  hang = false;
  calls = 0;

  constructor(server: LeaseServer, name: string) {
    this.#server = server;
    this.description = `ns/lease (${name})`;
  }

  async #call<T>(signal: AbortSignal, fn: () => T): Promise<T> {
    this.calls++;
    await Promise.resolve();
    if (this.hang) {
      return new Promise<T>((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true }));
    }
    if (this.down) throw new KubeApiError('lease', 503, { message: 'unavailable' });
    return fn();
  }

  get(signal: AbortSignal) {
    return this.#call(signal, () => this.#server.get());
  }
  create(record: LeaseRecord, signal: AbortSignal) {
    return this.#call(signal, () => this.#server.create(record));
  }
  update(prev: LeaseSnapshot, record: LeaseRecord, signal: AbortSignal) {
    return this.#call(signal, () => this.#server.update(prev, record));
  }
}

interface Candidate {
  elector: LeaderElector;
  lock: FakeLock;
  log: string[];
  leadSignal?: AbortSignal;
  done: Promise<void>;
}

const electors: LeaderElector[] = [];
afterEach(async () => {
  for (const e of electors.splice(0)) await e.stop();
});

function candidate(server: LeaseServer, clock: FakeClock, identity: string, wall: () => Date = () => new Date(Date.UTC(2026, 0, 1))): Candidate {
  const lock = server.lockFor(identity);
  const c: Partial<Candidate> & { log: string[] } = { log: [], lock };
  c.elector = new LeaderElector({
    lock,
    identity,
    clock,
    now: wall,
    random: () => 0,
    callbacks: {
      onStartedLeading: (signal) => {
        c.log.push('started');
        c.leadSignal = signal;
      },
      onStoppedLeading: () => c.log.push('stopped'),
      onNewLeader: (id) => c.log.push(`leader ${id}`),
    },
  });
  electors.push(c.elector);
  c.done = c.elector.run();
  return c as Candidate;
}

/** Advance the fake clock in small steps so request promises settle between timers. */
async function advance(clock: FakeClock, ms: number, step = 100): Promise<void> {
  for (let t = 0; t < ms; t += step) await clock.advanceAsync(Math.min(step, ms - t));
  await flushMicrotasks();
}

describe('formatMicroTime / defaultIdentity', () => {
  it('writes six fractional digits as metav1.MicroTime requires', () => {
    expect(formatMicroTime(new Date(Date.UTC(2026, 10, 22, 4, 5, 6, 7)))).toBe('2026-11-22T04:05:06.007000Z');
  });
  it('makes distinct identities on one host', () => {
    const a = defaultIdentity();
    expect(a).toMatch(/^.+_[0-9a-f]{8}$/);
    expect(defaultIdentity()).not.toBe(a);
  });
});

describe('LeaderElector', () => {
  it('rejects timings client-go would reject', () => {
    const lock = new LeaseServer().lockFor('x');
    const callbacks = { onStartedLeading: () => {}, onStoppedLeading: () => {} };
    expect(() => new LeaderElector({ lock, callbacks, leaseDurationMs: 10_000, renewDeadlineMs: 10_000 })).toThrow(/leaseDurationMs must be greater/);
    expect(() => new LeaderElector({ lock, callbacks, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 })).toThrow(/1.2 x retryPeriodMs/);
  });

  it('creates an absent lease and leads; renewals keep acquireTime and leaseTransitions', async () => {
    const server = new LeaseServer();
    const clock = new FakeClock();
    let wallMs = Date.UTC(2026, 0, 1);
    const a = candidate(server, clock, 'a', () => new Date(wallMs));
    await flushMicrotasks();
    expect(a.log).toEqual(['leader a', 'started']);
    expect(a.elector.isLeader()).toBe(true);
    expect(server.current?.record).toMatchObject({ holderIdentity: 'a', leaseDurationSeconds: 15, leaseTransitions: 0 });
    const acquired = server.current!.record.acquireTime;
    expect(acquired).toBe('2026-01-01T00:00:00.000000Z');

    wallMs += 2_000;
    await advance(clock, 2_000);
    expect(server.current?.record.renewTime).toBe('2026-01-01T00:00:02.000000Z');
    expect(server.current?.record.acquireTime).toBe(acquired);
    expect(server.current?.record.leaseTransitions).toBe(0);
    expect(server.writes).toBe(2);
    expect(a.log).toEqual(['leader a', 'started']);
  });

  it('a follower waits while the leader renews, and takes over leaseDuration after renewals stop (by its own clock)', async () => {
    const server = new LeaseServer();
    const clock = new FakeClock();
    const a = candidate(server, clock, 'a', () => new Date(Date.UTC(2026, 0, 1) + clock.now()));
    await flushMicrotasks();
    const b = candidate(server, clock, 'b', () => new Date(Date.UTC(2026, 0, 1) + clock.now()));
    await advance(clock, 30_000);
    expect(a.elector.isLeader()).toBe(true);
    expect(b.elector.isLeader()).toBe(false);
    expect(b.log).toEqual(['leader a']);
    expect(b.elector.getLeader()).toBe('a');

    // a's API access fails from now on: it gives up after renewDeadline (10 s) ...
    a.lock.down = true;
    const lastRenewal = clock.now();
    await advance(clock, 9_000);
    expect(a.elector.isLeader()).toBe(true);
    await advance(clock, 2_200);
    expect(a.elector.isLeader()).toBe(false);
    expect(a.log).toEqual(['leader a', 'started', 'stopped']);
    expect(a.leadSignal?.aborted).toBe(true);
    await a.done;

    // ... and b takes over once the record has not changed for 15 s (plus one retry period).
    expect(b.elector.isLeader()).toBe(false);
    await advance(clock, lastRenewal + 15_000 - clock.now() - 500);
    expect(b.elector.isLeader()).toBe(false);
    await advance(clock, 3_000);
    expect(b.elector.isLeader()).toBe(true);
    expect(b.log).toEqual(['leader a', 'leader b', 'started']);
    expect(server.current?.record).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
  });

  it('judges expiry by when it observed the record, not by the renewTime written in it', async () => {
    const server = new LeaseServer();
    const clock = new FakeClock();
    // A lease last renewed (by wall clock) a year ago by a holder that is gone.
    server.create({
      holderIdentity: 'ghost',
      leaseDurationSeconds: 15,
      acquireTime: '2025-01-01T00:00:00.000000Z',
      renewTime: '2025-01-01T00:00:00.000000Z',
      leaseTransitions: 4,
    });
    const b = candidate(server, clock, 'b');
    await advance(clock, 14_000);
    expect(b.elector.isLeader()).toBe(false); // not before 15 s of observation
    await advance(clock, 4_000);
    expect(b.elector.isLeader()).toBe(true);
    expect(server.current?.record).toMatchObject({ holderIdentity: 'b', leaseTransitions: 5 });
  });

  it('exactly one of two simultaneous candidates wins an absent lease (409 for the other)', async () => {
    const server = new LeaseServer();
    const clock = new FakeClock();
    const a = candidate(server, clock, 'a');
    const b = candidate(server, clock, 'b');
    await advance(clock, 10_000);
    expect([a.elector.isLeader(), b.elector.isLeader()].filter(Boolean).length).toBe(1);
    expect(server.current?.record.holderIdentity).toBe('a');
    expect(b.log).toEqual(['leader a']);
  });

  it('stop() releases the lease; the follower takes over at its next retry and increments leaseTransitions', async () => {
    const server = new LeaseServer();
    const clock = new FakeClock();
    const a = candidate(server, clock, 'a');
    await flushMicrotasks();
    const b = candidate(server, clock, 'b');
    await advance(clock, 4_000);
    expect(a.elector.isLeader()).toBe(true);

    await a.elector.stop();
    expect(a.log).toEqual(['leader a', 'started', 'stopped']);
    expect(a.leadSignal?.aborted).toBe(true);
    expect(server.current?.record).toMatchObject({ holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 0 });

    await advance(clock, 2_100); // one retry period: no waiting for expiry
    expect(b.elector.isLeader()).toBe(true);
    expect(server.current?.record).toMatchObject({ holderIdentity: 'b', leaseDurationSeconds: 15, leaseTransitions: 1 });
  });

  it('a leader that sees another holder in the lease stops at once', async () => {
    const server = new LeaseServer();
    const clock = new FakeClock();
    const a = candidate(server, clock, 'a');
    await flushMicrotasks();
    server.update(server.current!, { ...server.current!.record, holderIdentity: 'intruder', leaseTransitions: 1 });
    await advance(clock, 2_000);
    expect(a.elector.isLeader()).toBe(false);
    expect(a.log).toEqual(['leader a', 'started', 'leader intruder', 'stopped']);
    await a.done;
    expect(server.current?.record.holderIdentity).toBe('intruder'); // not released: not ours
  });

  it('a leader whose renewals hang loses leadership after renewDeadline', async () => {
    const server = new LeaseServer();
    const clock = new FakeClock();
    const a = candidate(server, clock, 'a');
    await flushMicrotasks();
    a.lock.hang = true;
    await advance(clock, 11_000);
    expect(a.elector.isLeader()).toBe(false);
    expect(a.log.at(-1)).toBe('stopped');
    await a.done;
    expect(clock.pendingTimers()).toBe(0);
  });

  it('stopping a candidate that never led calls no leading callbacks', async () => {
    const server = new LeaseServer();
    const clock = new FakeClock();
    const a = candidate(server, clock, 'a');
    await flushMicrotasks();
    const b = candidate(server, clock, 'b');
    await advance(clock, 3_000);
    await b.elector.stop();
    await b.done;
    expect(b.log).toEqual(['leader a']);
    expect(a.elector.isLeader()).toBe(true);
    expect(server.current?.record.holderIdentity).toBe('a');
  });

  it('run(signal): aborting the signal stops and releases', async () => {
    const server = new LeaseServer();
    const clock = new FakeClock();
    const ctl = new AbortController();
    const log: string[] = [];
    const e = new LeaderElector({
      lock: server.lockFor('a'),
      identity: 'a',
      clock,
      callbacks: { onStartedLeading: () => log.push('started'), onStoppedLeading: () => log.push('stopped') },
    });
    const done = e.run(ctl.signal);
    await flushMicrotasks();
    expect(e.isLeader()).toBe(true);
    ctl.abort();
    await done;
    expect(log).toEqual(['started', 'stopped']);
    expect(server.current?.record.holderIdentity).toBe('');
  });
});
