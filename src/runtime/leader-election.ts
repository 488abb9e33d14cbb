/**
 * Leader election on a `coordination.k8s.io/v1` Lease, after client-go's
 * `leaderelection` package (the one every controller-runtime manager uses).
 *
 * How it works (defaults: leaseDuration 15 s, renewDeadline 10 s, retryPeriod 2 s):
 * - Candidates try to acquire every retryPeriod (jittered up to +120 %, like client-go).
 *   A candidate takes the Lease when it does not exist (create), when its holder is
 *   empty (released), or when it has expired.
 * - Expiry is judged by the OBSERVER's own monotonic clock, never by comparing wall
 *   clocks: a candidate records when it last saw the Lease record change (holder,
 *   renewTime, ...) and considers it expired when it has not changed for
 *   `spec.leaseDurationSeconds` since. Clock skew between machines does not matter;
 *   renewTime/acquireTime are written for humans (`kubectl get lease -o yaml`).
 * - Writes are optimistic: every update carries the resourceVersion that was read, so
 *   when two candidates race, the API server accepts exactly one (the other gets 409
 *   Conflict and stays a follower).
 * - Taking over from another holder (or from a released Lease) increments
 *   `spec.leaseTransitions`; renewals keep it and `acquireTime`.
 * - The leader renews every retryPeriod. If no renewal succeeds for renewDeadline, or
 *   it sees another holder in the Lease, it stops leading: the signal passed to
 *   `onStartedLeading` aborts and `onStoppedLeading` is called. Because renewDeadline <
 *   leaseDuration, a leader that cannot renew gives up before anyone else may take over.
 * - On `stop()` (or the `run(signal)` abort) a leader releases the Lease (holder "",
 *   leaseDurationSeconds 1, renewTime now — client-go's ReleaseOnCancel) so a follower
 *   takes over at its next retry instead of waiting for expiry.
 *
 * Guarantees:
 * - `onStartedLeading` is called at most once per `run()`; `onStoppedLeading` is called
 *   exactly once after it (on loss or stop), never without it.
 * - `onNewLeader(identity)` is called whenever the observed holder changes to a
 *   non-empty identity (including this candidate).
 * - `run()` resolves after leadership ended (lost or stopped) or after a stop while
 *   still a candidate. It does not campaign again: like client-go, the process is
 *   expected to exit (and be restarted) when it loses leadership.
 *
 * Caveats:
 * - Leader election bounds, it does not exclude, overlap: a leader that is paused (GC,
 *   SIGSTOP) longer than leaseDuration - renewDeadline may still act briefly after
 *   another candidate took over. Controllers must stay idempotent and use optimistic
 *   concurrency on their own writes.
 * - Unlike client-go, a leader that observes another valid holder stops at once instead
 *   of retrying until renewDeadline, and `onStoppedLeading` is not called for a
 *   candidate that never led.
 * - Stop your controllers (drain the work queue) before calling `stop()`: the release
 *   lets another instance start at once.
 * - Callbacks run synchronously; `onStartedLeading` should start work and return (a
 *   returned promise is not awaited; its rejection is logged).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { KubeAccess } from './kubeconfig.ts';
import { z } from 'zod';
import { silentLogger, type Logger } from '../common/logger.ts';
import { realClock, type Clock, type TimerHandle } from './clock.ts';
import { KubeHttp, statusCodeOf } from './kube-http.ts';
import { Resource, resourcePath } from './resources.ts';
import { formatMicroTime } from '../kube/time.ts';

// ---------------------------------------------------------------------------
// The lock
// ---------------------------------------------------------------------------

/** The leader-election fields of a Lease spec. Times are MicroTime strings. */
export interface LeaseRecord {
  /** '' when released. */
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions: number;
}

/** A Lease as read: its record and the resourceVersion to update against. */
export interface LeaseSnapshot {
  record: LeaseRecord;
  resourceVersion: string;
}

/**
 * Storage of the record. `KubeLeaseLock` is the real one; unit tests use an in-memory
 * fake. Errors carry `statusCode` (409 for create-exists / update-conflict).
 */
export interface LeaseLock {
  /** "namespace/name", for logs. */
  readonly description: string;
  /** The current Lease, or undefined if it does not exist. */
  get(signal: AbortSignal): Promise<LeaseSnapshot | undefined>;
  create(record: LeaseRecord, signal: AbortSignal): Promise<LeaseSnapshot>;
  /** Replace the record if the Lease is still at `prev.resourceVersion` (else 409). */
  update(prev: LeaseSnapshot, record: LeaseRecord, signal: AbortSignal): Promise<LeaseSnapshot>;
}

export { formatMicroTime };

interface LeaseObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; [k: string]: unknown };
  spec?: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number | null;
    acquireTime?: string | null;
    renewTime?: string | null;
    leaseTransitions?: number | null;
    [k: string]: unknown;
  };
}

function toSnapshot(obj: LeaseObject): LeaseSnapshot {
  const s = obj.spec ?? {};
  const record: LeaseRecord = {
    holderIdentity: s.holderIdentity ?? '',
    leaseDurationSeconds: s.leaseDurationSeconds ?? 0,
    leaseTransitions: s.leaseTransitions ?? 0,
  };
  if (s.acquireTime) record.acquireTime = s.acquireTime;
  if (s.renewTime) record.renewTime = s.renewTime;
  return { record, resourceVersion: obj.metadata?.resourceVersion ?? '' };
}

/** A Lease in the cluster, through raw JSON requests (so MicroTime keeps its format). */
export class KubeLeaseLock implements LeaseLock {
  readonly description: string;
  readonly #http: KubeHttp;
  readonly #namespace: string;
  readonly #name: string;
  /** The last object read or written, so an update keeps labels/annotations/other spec fields. */
  #last: LeaseObject | undefined;

  constructor(kc: KubeAccess | KubeHttp, namespace: string, name: string) {
    this.#http = kc instanceof KubeHttp ? kc : new KubeHttp(kc, { requestTimeoutMs: 30_000 });
    this.#namespace = namespace;
    this.#name = name;
    this.description = `${namespace}/${name}`;
  }

  #path(withName: boolean): string {
    return resourcePath(Resource.leases, this.#namespace, withName ? this.#name : undefined);
  }

  async get(signal: AbortSignal): Promise<LeaseSnapshot | undefined> {
    try {
      const obj = await this.#http.json<LeaseObject>('GET', this.#path(true), { signal });
      this.#last = obj;
      return toSnapshot(obj);
    } catch (err) {
      if (statusCodeOf(err) === 404) {
        this.#last = undefined;
        return undefined;
      }
      throw err;
    }
  }

  async create(record: LeaseRecord, signal: AbortSignal): Promise<LeaseSnapshot> {
    const body: LeaseObject = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.#name, namespace: this.#namespace },
      spec: { ...record },
    };
    const obj = await this.#http.json<LeaseObject>('POST', this.#path(false), { body, signal });
    this.#last = obj;
    return toSnapshot(obj);
  }

  async update(prev: LeaseSnapshot, record: LeaseRecord, signal: AbortSignal): Promise<LeaseSnapshot> {
    const base = this.#last && this.#last.metadata?.resourceVersion === prev.resourceVersion ? this.#last : undefined;
    const body: LeaseObject = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      ...base,
      metadata: { ...base?.metadata, name: this.#name, namespace: this.#namespace, resourceVersion: prev.resourceVersion },
      spec: {
        ...base?.spec,
        holderIdentity: record.holderIdentity,
        leaseDurationSeconds: record.leaseDurationSeconds,
        acquireTime: record.acquireTime ?? null,
        renewTime: record.renewTime ?? null,
        leaseTransitions: record.leaseTransitions,
      },
    };
    const obj = await this.#http.json<LeaseObject>('PUT', this.#path(true), { body, signal });
    this.#last = obj;
    return toSnapshot(obj);
  }
}

// ---------------------------------------------------------------------------
// The elector
// ---------------------------------------------------------------------------

export interface LeaderCallbacks {
  /** Start the controllers. `signal` aborts when leadership ends. */
  onStartedLeading(signal: AbortSignal): unknown;
  /** Leadership ended (lost or stopped): stop the controllers / exit. */
  onStoppedLeading(): void;
  /** The observed leader changed (also called when this candidate becomes leader). */
  onNewLeader?(identity: string): void;
}

const TimingSchema = z
  .object({
    leaseDurationMs: z.number().int().min(1000),
    renewDeadlineMs: z.number().int().positive(),
    retryPeriodMs: z.number().int().positive(),
  })
  .refine((t) => t.leaseDurationMs > t.renewDeadlineMs, { message: 'leaseDurationMs must be greater than renewDeadlineMs' })
  .refine((t) => t.renewDeadlineMs > JITTER_FACTOR * t.retryPeriodMs, {
    message: 'renewDeadlineMs must be greater than 1.2 x retryPeriodMs',
  });

/** client-go's JitterFactor for acquire retries. */
const JITTER_FACTOR = 1.2;

export interface LeaderElectionOptions {
  lock: LeaseLock;
  callbacks: LeaderCallbacks;
  /** Default: `defaultIdentity()` (hostname + random suffix). */
  identity?: string;
  /** Default 15 000. Written to the Lease rounded up to whole seconds. */
  leaseDurationMs?: number;
  /** Default 10 000. */
  renewDeadlineMs?: number;
  /** Default 2 000. */
  retryPeriodMs?: number;
  /** Release the Lease when stopped. Default true. */
  releaseOnCancel?: boolean;
  logger?: Logger;
  clock?: Clock;
  /** Wall clock for renewTime/acquireTime. Default `() => new Date()`. */
  now?: () => Date;
  random?: () => number;
}

/** `hostname_xxxxxxxx`: unique per process even for two candidates on one host. */
export function defaultIdentity(): string {
  return `${hostname()}_${randomBytes(4).toString('hex')}`;
}

type Attempt = 'ok' | 'held' | 'conflict' | 'error';

function sameRecord(a: LeaseRecord, b: LeaseRecord | undefined): boolean {
  return (
    b !== undefined
    && a.holderIdentity === b.holderIdentity
    && a.leaseDurationSeconds === b.leaseDurationSeconds
    && a.acquireTime === b.acquireTime
    && a.renewTime === b.renewTime
    && a.leaseTransitions === b.leaseTransitions
  );
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class LeaderElector {
  readonly identity: string;
  readonly #lock: LeaseLock;
  readonly #cb: LeaderCallbacks;
  readonly #leaseDurationMs: number;
  readonly #renewDeadlineMs: number;
  readonly #retryPeriodMs: number;
  #releaseOnStop: boolean;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #now: () => Date;
  readonly #random: () => number;

  #observed: LeaseSnapshot | undefined;
  #observedAt = 0;
  #reportedLeader = '';
  #leading = false;
  #stopped = false;
  #stopCtl = new AbortController();
  #sleepTimer: { handle: TimerHandle; wake: () => void } | undefined;
  #running: Promise<void> | undefined;

  constructor(opts: LeaderElectionOptions) {
    const timing = TimingSchema.safeParse({
      leaseDurationMs: opts.leaseDurationMs ?? 15_000,
      renewDeadlineMs: opts.renewDeadlineMs ?? 10_000,
      retryPeriodMs: opts.retryPeriodMs ?? 2_000,
    });
    if (!timing.success) {
      throw new Error(`leader election for ${opts.lock.description}: invalid timing: ${timing.error.issues.map((i) => i.message).join('; ')}`);
    }
    this.identity = opts.identity ?? defaultIdentity();
    if (!this.identity) throw new Error(`leader election for ${opts.lock.description}: identity must not be empty`);
    this.#lock = opts.lock;
    this.#cb = opts.callbacks;
    this.#leaseDurationMs = timing.data.leaseDurationMs;
    this.#renewDeadlineMs = timing.data.renewDeadlineMs;
    this.#retryPeriodMs = timing.data.retryPeriodMs;
    this.#releaseOnStop = opts.releaseOnCancel ?? true;
    this.#log = (opts.logger ?? silentLogger).child({ lease: opts.lock.description, identity: this.identity });
    this.#clock = opts.clock ?? realClock;
    this.#now = opts.now ?? (() => new Date());
    this.#random = opts.random ?? Math.random;
  }

  /** True while this candidate leads (between onStartedLeading and onStoppedLeading). */
  isLeader(): boolean {
    return this.#leading;
  }

  /** The last observed holder ('' if none / released / not observed yet). */
  getLeader(): string {
    return this.#observed?.record.holderIdentity ?? '';
  }

  /**
   * Campaign, lead, and return when leadership ends (lost, or stopped through `stop()`
   * or `signal`). Call once.
   */
  run(signal?: AbortSignal): Promise<void> {
    if (this.#running) throw new Error(`leader election for ${this.#lock.description}: run() called twice`);
    if (signal) {
      if (signal.aborted) this.#requestStop();
      else signal.addEventListener('abort', () => this.#requestStop(), { once: true });
    }
    this.#running = this.#run();
    return this.#running;
  }

  /**
   * Stop campaigning or leading and resolve when done. A leader releases the Lease unless
   * `release` (default: the releaseOnCancel option) is false — then the Lease expires on
   * its own, as after a crash.
   */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    if (opts.release !== undefined && !this.#stopped) this.#releaseOnStop = opts.release;
    this.#requestStop();
    await this.#running;
  }

  #requestStop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#stopCtl.abort();
    if (this.#sleepTimer) {
      this.#clock.clearTimer(this.#sleepTimer.handle);
      this.#sleepTimer.wake();
    }
  }

  async #run(): Promise<void> {
    const leaseSeconds = Math.ceil(this.#leaseDurationMs / 1000);
    this.#log.info(
      { leaseDurationMs: this.#leaseDurationMs, renewDeadlineMs: this.#renewDeadlineMs, retryPeriodMs: this.#retryPeriodMs },
      'leader election: campaigning',
    );

    // 1. Acquire.
    for (;;) {
      if (this.#stopped) {
        this.#log.info('leader election: stopped before acquiring');
        return;
      }
      const r = await this.#attempt(leaseSeconds, this.#leaseDurationMs);
      if (r === 'ok') break;
      await this.#sleep(this.#retryPeriodMs * (1 + JITTER_FACTOR * this.#random()));
    }
    if (this.#stopped) {
      // Acquired in the same turn as a stop: hand it back at once.
      if (this.#releaseOnStop) await this.#release(leaseSeconds);
      return;
    }

    // 2. Lead.
    this.#leading = true;
    const leadCtl = new AbortController();
    this.#log.info('leader election: became leader');
    try {
      const p = this.#cb.onStartedLeading(leadCtl.signal);
      if (p instanceof Promise) {
        p.catch((err: unknown) => this.#log.error({ err }, 'leader election: onStartedLeading rejected'));
      }
    } catch (err) {
      this.#log.error({ err }, 'leader election: onStartedLeading threw');
    }

    let lastRenew = this.#clock.now();
    let why = 'stopped';
    for (;;) {
      await this.#sleep(this.#retryPeriodMs);
      if (this.#stopped) break;
      const remaining = this.#renewDeadlineMs - (this.#clock.now() - lastRenew);
      const r = remaining > 0 ? await this.#attempt(leaseSeconds, remaining) : 'error';
      if (this.#stopped) {
        if (r === 'held') why = `lost to ${this.getLeader()}`;
        break;
      }
      if (r === 'ok') {
        lastRenew = this.#clock.now();
        continue;
      }
      if (r === 'held') {
        why = `another candidate holds the lease: ${this.getLeader()}`;
        break;
      }
      if (this.#clock.now() - lastRenew >= this.#renewDeadlineMs) {
        why = `no successful renewal for ${this.#renewDeadlineMs} ms (renewDeadline)`;
        break;
      }
    }

    this.#leading = false;
    leadCtl.abort();
    if (why === 'stopped') {
      this.#log.info('leader election: stopping as leader');
      if (this.#releaseOnStop) await this.#release(leaseSeconds);
    } else {
      this.#log.error({ reason: why }, 'leader election: lost leadership');
    }
    try {
      this.#cb.onStoppedLeading();
    } catch (err) {
      this.#log.error({ err }, 'leader election: onStoppedLeading threw');
    }
  }

  /** A signal that aborts on stop or after `ms` on the election clock. */
  #attemptSignal(ms: number): { signal: AbortSignal; done: () => void } {
    const ctl = new AbortController();
    const onStop = () => ctl.abort(new Error('leader election stopped'));
    this.#stopCtl.signal.addEventListener('abort', onStop, { once: true });
    const t = this.#clock.setTimer(() => ctl.abort(new Error(`lease request timed out after ${Math.round(ms)} ms`)), ms);
    return {
      signal: ctl.signal,
      done: () => {
        this.#clock.clearTimer(t);
        this.#stopCtl.signal.removeEventListener('abort', onStop);
      },
    };
  }

  /** client-go's tryAcquireOrRenew. */
  async #attempt(leaseSeconds: number, timeoutMs: number): Promise<Attempt> {
    const { signal, done } = this.#attemptSignal(timeoutMs);
    try {
      const now = this.#clock.now();
      const wall = formatMicroTime(this.#now());
      let snap: LeaseSnapshot | undefined;
      try {
        snap = await this.#withSignal(this.#lock.get(signal), signal);
      } catch (err) {
        this.#log.warn({ err: describe(err), statusCode: statusCodeOf(err) }, 'leader election: cannot read the lease');
        return 'error';
      }

      if (!snap) {
        const record: LeaseRecord = { holderIdentity: this.identity, leaseDurationSeconds: leaseSeconds, acquireTime: wall, renewTime: wall, leaseTransitions: 0 };
        try {
          this.#observe(await this.#withSignal(this.#lock.create(record, signal), signal));
          return 'ok';
        } catch (err) {
          if (statusCodeOf(err) === 409) return 'conflict';
          this.#log.warn({ err: describe(err), statusCode: statusCodeOf(err) }, 'leader election: cannot create the lease');
          return 'error';
        }
      }

      this.#observe(snap);
      const old = snap.record;
      if (old.holderIdentity && old.holderIdentity !== this.identity && this.#observedAt + old.leaseDurationSeconds * 1000 > now) {
        return 'held';
      }
      const renewing = old.holderIdentity === this.identity;
      const record: LeaseRecord = {
        holderIdentity: this.identity,
        leaseDurationSeconds: leaseSeconds,
        acquireTime: renewing && old.acquireTime ? old.acquireTime : wall,
        renewTime: wall,
        leaseTransitions: renewing ? old.leaseTransitions : old.leaseTransitions + 1,
      };
      try {
        this.#observe(await this.#withSignal(this.#lock.update(snap, record, signal), signal));
        if (!renewing) this.#log.info({ previous: old.holderIdentity || '(released)', transitions: record.leaseTransitions }, 'leader election: took over the lease');
        return 'ok';
      } catch (err) {
        if (statusCodeOf(err) === 409) {
          this.#log.debug('leader election: update conflict, someone else wrote the lease first');
          return 'conflict';
        }
        this.#log.warn({ err: describe(err), statusCode: statusCodeOf(err) }, 'leader election: cannot update the lease');
        return 'error';
      }
    } finally {
      done();
    }
  }

  /** Rejects when `signal` aborts even if the lock ignores it (a fake, or a stuck socket). */
  #withSignal<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(signal.reason as Error);
      signal.addEventListener('abort', onAbort, { once: true });
      p.then(
        (v) => {
          signal.removeEventListener('abort', onAbort);
          resolve(v);
        },
        (e: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(e as Error);
        },
      );
    });
  }

  #observe(snap: LeaseSnapshot): void {
    if (!sameRecord(snap.record, this.#observed?.record)) this.#observedAt = this.#clock.now();
    this.#observed = snap;
    const holder = snap.record.holderIdentity;
    if (holder && holder !== this.#reportedLeader) {
      this.#reportedLeader = holder;
      this.#log.info({ leader: holder }, 'leader election: new leader observed');
      try {
        this.#cb.onNewLeader?.(holder);
      } catch (err) {
        this.#log.error({ err }, 'leader election: onNewLeader threw');
      }
    }
  }

  /** ReleaseOnCancel: hand the lease back so a follower takes over at its next retry. */
  async #release(leaseSeconds: number): Promise<void> {
    // Not through #attemptSignal: the stop signal is already aborted.
    const ctl = new AbortController();
    const t = this.#clock.setTimer(() => ctl.abort(new Error('lease release timed out')), this.#renewDeadlineMs);
    try {
      const snap = await this.#withSignal(this.#lock.get(ctl.signal), ctl.signal);
      if (!snap || snap.record.holderIdentity !== this.identity) {
        this.#log.info({ holder: snap?.record.holderIdentity }, 'leader election: not the holder any more, nothing to release');
        return;
      }
      const wall = formatMicroTime(this.#now());
      const record: LeaseRecord = {
        holderIdentity: '',
        leaseDurationSeconds: 1,
        acquireTime: wall,
        renewTime: wall,
        leaseTransitions: snap.record.leaseTransitions,
      };
      this.#observe(await this.#withSignal(this.#lock.update(snap, record, ctl.signal), ctl.signal));
      this.#log.info('leader election: released the lease');
    } catch (err) {
      this.#log.warn(
        { err: describe(err), statusCode: statusCodeOf(err) },
        `leader election: release failed; another candidate takes over after the lease expires (${leaseSeconds} s)`,
      );
    } finally {
      this.#clock.clearTimer(t);
    }
  }

  #sleep(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const wake = () => {
        this.#sleepTimer = undefined;
        resolve();
      };
      this.#sleepTimer = { handle: this.#clock.setTimer(wake, ms), wake };
    });
  }
}
