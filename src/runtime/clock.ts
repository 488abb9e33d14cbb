/**
 * Clocks: the only way the runtime reads time or schedules a timer, so tests can drive
 * time by hand and never sleep or assert on wall-clock speed.
 *
 * Guarantees:
 * - `realClock.now()` is monotonic (performance.now(), milliseconds); it is for
 *   durations and deadlines, not for timestamps written to the API (use `new Date()`).
 * - `FakeClock` fires timers only inside `advance()`/`runAll()`, in due-time order (ties in
 *   scheduling order), with `now()` set to each timer's due time while it runs. Timers
 *   scheduled by a callback for a time within the advanced window fire in the same call.
 *
 * Caveats:
 * - Fake timer callbacks run synchronously inside `advance()`; promise continuations they
 *   trigger run only after the caller yields (`await clock.advanceAsync(ms)` does that).
 * - Real timers are not unref'd: a queue with a pending `addAfter` keeps the process alive
 *   until it is shut down, on purpose.
 */

export interface TimerHandle {
  readonly id: number;
}

export interface Clock {
  /** Monotonic milliseconds. */
  now(): number;
  /** Run `fn` after `ms` milliseconds (ms <= 0: on the next timer turn). */
  setTimer(fn: () => void, ms: number): TimerHandle;
  /** Cancel a timer; no-op if it already fired or was cancelled. */
  clearTimer(handle: TimerHandle): void;
}

class RealClock implements Clock {
  #timers = new Map<number, NodeJS.Timeout>();
  #next = 1;

  now(): number {
    return performance.now();
  }

  setTimer(fn: () => void, ms: number): TimerHandle {
    const id = this.#next++;
    const t = setTimeout(
      () => {
        this.#timers.delete(id);
        fn();
      },
      Math.max(0, ms),
    );
    this.#timers.set(id, t);
    return { id };
  }

  clearTimer(handle: TimerHandle): void {
    const t = this.#timers.get(handle.id);
    if (t !== undefined) {
      clearTimeout(t);
      this.#timers.delete(handle.id);
    }
  }
}

/** The process-wide real clock. */
export const realClock: Clock = new RealClock();

interface FakeTimer {
  id: number;
  at: number;
  seq: number;
  fn: () => void;
}

/** A manually driven clock for tests. */
export class FakeClock implements Clock {
  #now: number;
  #timers = new Map<number, FakeTimer>();
  #next = 1;
  #seq = 0;

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimer(fn: () => void, ms: number): TimerHandle {
    const id = this.#next++;
    this.#timers.set(id, { id, at: this.#now + Math.max(0, ms), seq: this.#seq++, fn });
    return { id };
  }

  clearTimer(handle: TimerHandle): void {
    this.#timers.delete(handle.id);
  }

  /** Number of timers not yet fired or cancelled. */
  pendingTimers(): number {
    return this.#timers.size;
  }

  /** Due time of the earliest pending timer, if any. */
  nextTimerAt(): number | undefined {
    return this.#earliest()?.at;
  }

  /** Move time forward by `ms`, firing every timer that becomes due, in order. */
  advance(ms: number): void {
    if (ms < 0) throw new Error(`FakeClock.advance: negative duration ${ms}`);
    const target = this.#now + ms;
    for (;;) {
      const t = this.#earliest();
      if (!t || t.at > target) break;
      this.#timers.delete(t.id);
      this.#now = Math.max(this.#now, t.at);
      t.fn();
    }
    this.#now = target;
  }

  /** `advance(ms)`, then let promise continuations triggered by the timers run. */
  async advanceAsync(ms: number): Promise<void> {
    this.advance(ms);
    await flushMicrotasks();
  }

  /** Fire every pending timer (including ones they schedule), up to `limit` timers. */
  runAll(limit = 10_000): void {
    for (let i = 0; i < limit; i++) {
      const t = this.#earliest();
      if (!t) return;
      this.advance(Math.max(0, t.at - this.#now));
    }
    throw new Error(`FakeClock.runAll: more than ${limit} timers; is something rescheduling forever?`);
  }

  #earliest(): FakeTimer | undefined {
    let best: FakeTimer | undefined;
    for (const t of this.#timers.values()) {
      if (!best || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t;
    }
    return best;
  }
}

/**
 * Let queued promise continuations run (a macrotask turn). Use in tests after an action
 * whose effects are asynchronous; it does not depend on wall-clock time.
 */
export function flushMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
