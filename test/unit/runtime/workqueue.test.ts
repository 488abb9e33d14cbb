import { describe, expect, it } from 'vitest';
import { FakeClock, flushMicrotasks } from '../../../src/runtime/clock.ts';
import { ItemExponentialFailureRateLimiter } from '../../../src/runtime/ratelimiter.ts';
import { Outcome, type ReconcileOutcome, type ReconcileResult } from '../../../src/runtime/reconcile.ts';
import { runWorkers, type ControllerMetrics } from '../../../src/runtime/worker.ts';
import { WorkQueue, type WorkQueueMetrics } from '../../../src/runtime/workqueue.ts';

function newQueue(clock = new FakeClock(), metrics?: WorkQueueMetrics) {
  const q = new WorkQueue<string>({ name: 'test', clock, rateLimiter: new ItemExponentialFailureRateLimiter<string>(), ...(metrics ? { metrics } : {}) });
  return { q, clock };
}

function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** A handler whose calls the test completes by hand, recording concurrency per key. */
function controlledHandler() {
  const pending: { key: string; finish: (o: ReconcileOutcome) => void }[] = [];
  const inFlight = new Map<string, number>();
  const calls: string[] = [];
  let maxPerKey = 0;
  const handler = async (key: string): Promise<ReconcileOutcome> => {
    calls.push(key);
    const n = (inFlight.get(key) ?? 0) + 1;
    inFlight.set(key, n);
    maxPerKey = Math.max(maxPerKey, n);
    const d = deferred<ReconcileOutcome>();
    pending.push({ key, finish: d.resolve });
    const outcome = await d.promise;
    inFlight.set(key, (inFlight.get(key) ?? 1) - 1);
    return outcome;
  };
  return {
    handler,
    pending,
    calls,
    get maxPerKey() {
      return maxPerKey;
    },
    /** Finish the oldest in-flight call of `key`. */
    async finish(key: string, outcome: ReconcileOutcome = Outcome.done()) {
      const i = pending.findIndex((p) => p.key === key);
      if (i < 0) throw new Error(`no in-flight call for ${key}`);
      const [p] = pending.splice(i, 1);
      p!.finish(outcome);
      await flushMicrotasks();
    },
  };
}

describe('WorkQueue basics', () => {
  it('dedupes a key that is already queued and keeps FIFO order', () => {
    const { q } = newQueue();
    q.add('a');
    q.add('b');
    q.add('a');
    q.add('c');
    q.add('b');
    expect(q.len()).toBe(3);
    expect([q.tryGet(), q.tryGet(), q.tryGet(), q.tryGet()]).toEqual(['a', 'b', 'c', undefined]);
  });

  it('get() waits for a key and serves waiting getters in order', async () => {
    const { q } = newQueue();
    const g1 = q.get();
    const g2 = q.get();
    q.add('x');
    q.add('y');
    expect(await g1).toBe('x');
    expect(await g2).toBe('y');
  });

  it('never hands out a key that is being processed; a re-add runs again after done', () => {
    const { q } = newQueue();
    q.add('a');
    expect(q.tryGet()).toBe('a');
    expect(q.isProcessing('a')).toBe(true);
    q.add('a');
    q.add('a'); // still one pending re-run
    expect(q.len()).toBe(0);
    expect(q.stats()).toEqual({ queued: 0, processing: 1, delayed: 0, dirty: 1 });
    expect(q.tryGet()).toBeUndefined();
    q.done('a');
    expect(q.len()).toBe(1);
    expect(q.tryGet()).toBe('a');
    q.done('a');
    expect(q.stats()).toEqual({ queued: 0, processing: 0, delayed: 0, dirty: 0 });
  });

  it('done() for a key that is not processing is a no-op', () => {
    const { q } = newQueue();
    q.done('nope');
    q.add('a');
    q.done('a'); // queued, not processing
    expect(q.len()).toBe(1);
  });
});

describe('WorkQueue delays and back-off', () => {
  it('addAfter keeps the earliest pending time', () => {
    const { q, clock } = newQueue();
    q.addAfter('a', 100);
    q.addAfter('a', 50);
    q.addAfter('a', 200);
    expect(q.stats().delayed).toBe(1);
    clock.advance(49);
    expect(q.len()).toBe(0);
    clock.advance(1);
    expect(q.tryGet()).toBe('a');
    q.done('a');
    clock.advance(1000); // superseded 100/200 entries do not fire
    expect(q.len()).toBe(0);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('addAfter with a later time does not postpone, and <= 0 adds now', () => {
    const { q, clock } = newQueue();
    q.addAfter('a', 10);
    q.addAfter('b', 0);
    q.addAfter('c', -5);
    expect([q.tryGet(), q.tryGet()]).toEqual(['b', 'c']);
    clock.advance(10);
    expect(q.tryGet()).toBe('a');
  });

  it('orders delayed keys by due time', () => {
    const { q, clock } = newQueue();
    q.addAfter('late', 30);
    q.addAfter('early', 10);
    q.addAfter('mid', 20);
    clock.advance(30);
    expect([q.tryGet(), q.tryGet(), q.tryGet()]).toEqual(['early', 'mid', 'late']);
  });

  it('addRateLimited backs off 5 ms doubling to the 1000 s cap, and forget resets', () => {
    const { q, clock } = newQueue();
    const delays: number[] = [];
    for (let i = 0; i < 21; i++) {
      q.addRateLimited('k');
      const delay = clock.nextTimerAt()! - clock.now();
      delays.push(delay);
      clock.advance(delay - 1);
      expect(q.len(), `failure ${i + 1} fired early`).toBe(0);
      clock.advance(1);
      expect(q.tryGet()).toBe('k');
      q.done('k');
    }
    expect(delays.slice(0, 6)).toEqual([5, 10, 20, 40, 80, 160]);
    expect(delays.slice(18)).toEqual([1_000_000, 1_000_000, 1_000_000]);
    expect(q.numRequeues('k')).toBe(21);
    q.forget('k');
    expect(q.numRequeues('k')).toBe(0);
    q.addRateLimited('k');
    expect(clock.nextTimerAt()! - clock.now()).toBe(5);
  });

  it('back-off is per key', () => {
    const { q, clock } = newQueue();
    q.addRateLimited('a');
    q.addRateLimited('a');
    q.addRateLimited('b');
    expect(q.numRequeues('a')).toBe(2);
    expect(q.numRequeues('b')).toBe(1);
    clock.advance(5); // a's pending time is min(5, 10) = 5; b's is 5
    expect(q.len()).toBe(2);
  });
});

describe('runWorkers (the worker loop over a WorkQueue)', () => {
  it('never processes one key concurrently with n workers, and re-runs keys added meanwhile', async () => {
    const { q } = newQueue();
    const h = controlledHandler();
    const run = runWorkers(q, 4, h.handler);
    q.add('a');
    q.add('b');
    await flushMicrotasks();
    expect(h.calls).toEqual(['a', 'b']);
    q.add('a'); // while a is processing
    q.add('c');
    q.add('a');
    await flushMicrotasks();
    expect(h.calls).toEqual(['a', 'b', 'c']); // a not handed out again yet
    await h.finish('a');
    expect(h.calls).toEqual(['a', 'b', 'c', 'a']); // re-run after done
    await h.finish('b');
    await h.finish('c');
    await h.finish('a');
    expect(h.maxPerKey).toBe(1);
    expect(h.pending).toHaveLength(0);
    q.shutdown();
    await run;
  });

  it('stress: many adds of few keys with 3 workers never overlap a key and lose no add', async () => {
    const { q } = newQueue();
    const h = controlledHandler();
    let step = 0;
    const lastAdd = new Map<string, number>();
    const lastStart = new Map<string, number>();
    const run = runWorkers(q, 3, (key) => {
      lastStart.set(key, ++step);
      return h.handler(key);
    });
    const keys = ['a', 'b', 'c', 'd'];
    for (let round = 0; round < 80; round++) {
      const key = keys[(round * 7 + (round >> 2)) % keys.length]!;
      q.add(key);
      lastAdd.set(key, ++step);
      await flushMicrotasks();
      if (round % 3 !== 0 && h.pending.length > 0) await h.finish(h.pending[round % h.pending.length]!.key);
    }
    while (h.pending.length > 0) await h.finish(h.pending[0]!.key);
    expect(h.maxPerKey).toBe(1);
    // no lost update: every key's last add is followed by a reconcile that started after it
    for (const key of keys) expect(lastStart.get(key)!, key).toBeGreaterThan(lastAdd.get(key)!);
    expect(q.stats()).toEqual({ queued: 0, processing: 0, delayed: 0, dirty: 0 });
    q.shutdown();
    await run;
  });

  it('applies outcomes: error backs off, done forgets, requeueAfter re-runs later, terminal stops', async () => {
    const { q, clock } = newQueue();
    const script: Record<string, ReconcileOutcome[]> = {
      e: [Outcome.error(new Error('boom')), Outcome.error(new Error('boom')), Outcome.done()],
      r: [Outcome.requeueAfter(30_000), Outcome.done()],
      t: [Outcome.terminal(new Error('bad spec'))],
    };
    const calls: string[] = [];
    const run = runWorkers(q, 2, (key) => {
      calls.push(key);
      return script[key]!.shift() ?? Outcome.done();
    });
    q.add('e');
    q.add('r');
    q.add('t');
    await flushMicrotasks();
    expect(calls).toEqual(['e', 'r', 't']);
    expect(q.numRequeues('e')).toBe(1);

    await clock.advanceAsync(4);
    expect(calls.filter((c) => c === 'e')).toHaveLength(1);
    await clock.advanceAsync(1); // 5 ms
    expect(calls.filter((c) => c === 'e')).toHaveLength(2);
    expect(q.numRequeues('e')).toBe(2);
    await clock.advanceAsync(10); // 10 ms
    expect(calls.filter((c) => c === 'e')).toHaveLength(3);
    expect(q.numRequeues('e')).toBe(0); // done forgot

    await clock.advanceAsync(30_000);
    expect(calls.filter((c) => c === 'r')).toHaveLength(2);

    await clock.advanceAsync(10_000_000);
    expect(calls.filter((c) => c === 't')).toHaveLength(1); // terminal: not retried
    q.add('t'); // ...until the object changes
    await flushMicrotasks();
    expect(calls.filter((c) => c === 't')).toHaveLength(2);
    q.shutdown();
    await run;
  });

  it('a throwing or invalid handler counts as an error and is retried', async () => {
    const { q, clock } = newQueue();
    let n = 0;
    const run = runWorkers(q, 1, (async () => {
      n++;
      if (n === 1) throw new Error('kaboom');
      if (n === 2) return { type: 'requeueAfter' } as unknown as ReconcileOutcome;
      return Outcome.done();
    }) as (key: string) => Promise<ReconcileOutcome>);
    q.add('x');
    await flushMicrotasks();
    expect(n).toBe(1);
    await clock.advanceAsync(5);
    expect(n).toBe(2);
    await clock.advanceAsync(10);
    expect(n).toBe(3);
    expect(q.numRequeues('x')).toBe(0);
    q.shutdown();
    await run;
  });

  it('rejects a bad worker count', async () => {
    const { q } = newQueue();
    await expect(runWorkers(q, 0, () => Outcome.done())).rejects.toThrow(/positive integer/);
  });
});

describe('WorkQueue shutdown', () => {
  it('shutdown(): getters get undefined, adds are ignored, queued and delayed keys dropped', async () => {
    const { q, clock } = newQueue();
    const waiting = q.get();
    q.add('a');
    expect(await waiting).toBe('a');
    q.add('b');
    q.addAfter('c', 100);
    const waiting2 = q.get(); // gets b
    expect(await waiting2).toBe('b');
    const waiting3 = q.get(); // nothing queued: these wait
    const waiting4 = q.get();
    q.shutdown();
    expect(await waiting3).toBeUndefined();
    expect(await waiting4).toBeUndefined();
    expect(q.shuttingDown).toBe(true);
    q.add('e');
    q.addAfter('f', 1);
    q.addRateLimited('g');
    expect(await q.get()).toBeUndefined();
    expect(clock.pendingTimers()).toBe(0);
    clock.advance(1000);
    expect(q.stats()).toEqual({ queued: 0, processing: 2, delayed: 0, dirty: 0 });
    q.add('a'); // in flight, ignored after shutdown: no re-run on done
    q.done('a');
    q.done('b');
    expect(q.stats()).toEqual({ queued: 0, processing: 0, delayed: 0, dirty: 0 });
  });

  it('shutdown() drops keys that were queued but not handed out', () => {
    const { q } = newQueue();
    q.add('a');
    q.add('b');
    expect(q.tryGet()).toBe('a');
    q.add('a'); // pending re-run of an in-flight key
    q.shutdown();
    expect(q.tryGet()).toBeUndefined();
    q.done('a');
    expect(q.stats()).toEqual({ queued: 0, processing: 0, delayed: 0, dirty: 0 });
  });

  it('shutdown() lets in-flight handlers finish and runWorkers resolves', async () => {
    const { q } = newQueue();
    const h = controlledHandler();
    let finished = false;
    const run = runWorkers(q, 2, h.handler).then(() => (finished = true));
    q.add('a');
    q.add('b');
    q.add('c');
    await flushMicrotasks();
    q.shutdown();
    await flushMicrotasks();
    expect(finished).toBe(false);
    await h.finish('a');
    await h.finish('b');
    await run;
    expect(finished).toBe(true);
    expect(h.calls).toEqual(['a', 'b']); // c was dropped
  });

  it('shutdownWithDrain(): processes what was queued, ignores new adds, resolves when all done', async () => {
    const { q } = newQueue();
    const h = controlledHandler();
    const run = runWorkers(q, 2, h.handler);
    q.add('a');
    q.add('b');
    q.add('c');
    await flushMicrotasks();
    q.add('a'); // re-added while processing, before shutdown: must run again
    let drained = false;
    const drain = q.shutdownWithDrain().then(() => (drained = true));
    q.add('new'); // after shutdown: ignored
    q.addAfter('later', 10);
    await h.finish('a');
    expect(h.calls).toEqual(['a', 'b', 'c']);
    await h.finish('b');
    await flushMicrotasks();
    expect(h.calls).toEqual(['a', 'b', 'c', 'a']);
    expect(drained).toBe(false);
    await h.finish('c');
    expect(drained).toBe(false);
    await h.finish('a');
    await drain;
    await run;
    expect(drained).toBe(true);
    expect(h.calls).toEqual(['a', 'b', 'c', 'a']);
  });

  it('shutdownWithDrain() on an idle queue resolves at once; shutdown() can cut a drain short', async () => {
    const idle = newQueue().q;
    await idle.shutdownWithDrain();
    expect(await idle.get()).toBeUndefined();

    const { q } = newQueue();
    q.add('a');
    q.add('b');
    expect(q.tryGet()).toBe('a');
    const drain = q.shutdownWithDrain();
    q.shutdown(); // drain timed out: drop b
    expect(q.tryGet()).toBeUndefined();
    q.done('a');
    await drain;
  });
});

describe('WorkQueue metrics hooks', () => {
  function recordingMetrics() {
    const m = { adds: 0, retries: 0, depth: [] as number[], queue: [] as number[], work: [] as number[], bound: undefined as undefined | (() => unknown) };
    const hooks: WorkQueueMetrics = {
      add: () => m.adds++,
      depth: (n) => m.depth.push(n),
      queueDuration: (s) => m.queue.push(s),
      workDuration: (s) => m.work.push(s),
      retry: () => m.retries++,
      bindUnfinishedWork: (src) => (m.bound = src),
    };
    return { m, hooks };
  }

  it('counts adds (not deduped ones), depth, durations from the clock, retries, unfinished work', () => {
    const { m, hooks } = recordingMetrics();
    const { q, clock } = newQueue(new FakeClock(), hooks);
    q.add('a');
    q.add('a'); // deduped: not counted
    q.add('b');
    expect(m.adds).toBe(2);
    expect(m.depth).toEqual([1, 2]);
    clock.advance(250);
    expect(q.tryGet()).toBe('a');
    expect(m.queue).toEqual([0.25]);
    expect(m.depth.at(-1)).toBe(1);
    clock.advance(1500);
    expect(q.unfinishedWork()).toEqual({ unfinishedSeconds: 1.5, longestRunningSeconds: 1.5 });
    expect(m.bound).toBeTypeOf('function');
    q.done('a');
    expect(m.work).toEqual([1.5]);
    q.addAfter('c', 10);
    q.addRateLimited('d');
    expect(m.retries).toBe(2);
    expect(q.unfinishedWork()).toEqual({ unfinishedSeconds: 0, longestRunningSeconds: 0 });
  });

  it('says what queued each handed-out key: an event (add) or a requeue that came due', () => {
    const triggers: string[] = [];
    const hooks: WorkQueueMetrics = { add() {}, depth() {}, queueDuration() {}, workDuration() {}, retry() {}, handedOut: (t) => triggers.push(t) };
    const { q, clock } = newQueue(new FakeClock(), hooks);
    q.addAfter('a', 100);
    q.add('b');
    expect(q.tryGet()).toBe('b');
    clock.advance(100);
    q.add('a'); // already queued by the timer: still a requeue
    expect(q.tryGet()).toBe('a');
    q.done('a');
    q.add('a');
    expect(q.tryGet()).toBe('a');
    expect(triggers).toEqual(['event', 'requeue', 'event']);
  });

  it('runWorkers reports reconcile results, errors, time and active workers', async () => {
    const { q, clock } = newQueue();
    const results: ReconcileResult[] = [];
    const cm = { errors: 0, terminal: 0, times: [] as number[], active: 0, maxActive: 0, max: 0 };
    const controllerMetrics: ControllerMetrics = {
      reconcileResult: (r) => results.push(r),
      reconcileError: () => cm.errors++,
      terminalError: () => cm.terminal++,
      reconcileTime: (s) => cm.times.push(s),
      activeWorkers: (d) => {
        cm.active += d;
        cm.maxActive = Math.max(cm.maxActive, cm.active);
      },
      maxConcurrentReconciles: (n) => (cm.max = n),
    };
    const outcomes: Record<string, ReconcileOutcome> = {
      ok: Outcome.done(),
      err: Outcome.error(new Error('x')),
      term: Outcome.terminal(new Error('y')),
      later: Outcome.requeueAfter(1000),
    };
    const run = runWorkers(q, 
      2,
      async (key) => {
        if (key === 'ok') clock.advance(20); // this reconcile "takes" 20 ms of fake time; runs before any back-off timer exists
        return outcomes[key]!;
      },
      { controllerMetrics },
    );
    for (const k of Object.keys(outcomes)) q.add(k);
    await flushMicrotasks();
    await flushMicrotasks();
    expect(results.sort()).toEqual(['error', 'error', 'requeue_after', 'success']);
    expect(cm.errors).toBe(2);
    expect(cm.terminal).toBe(1);
    expect(cm.times).toHaveLength(4);
    expect(cm.times).toContain(0.02);
    expect(cm.active).toBe(0);
    expect(cm.maxActive).toBeGreaterThanOrEqual(1);
    expect(cm.max).toBe(2);
    q.shutdown();
    await run;
  });
});
