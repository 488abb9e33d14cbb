import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/runtime/clock.ts';

describe('FakeClock', () => {
  it('fires due timers in order, with now() at each due time', () => {
    const clock = new FakeClock(1000);
    const fired: [string, number][] = [];
    clock.setTimer(() => fired.push(['b', clock.now()]), 20);
    clock.setTimer(() => fired.push(['a', clock.now()]), 10);
    clock.setTimer(() => fired.push(['a2', clock.now()]), 10);
    clock.setTimer(() => fired.push(['late', clock.now()]), 100);
    clock.advance(50);
    expect(fired).toEqual([
      ['a', 1010],
      ['a2', 1010],
      ['b', 1020],
    ]);
    expect(clock.now()).toBe(1050);
    expect(clock.pendingTimers()).toBe(1);
    expect(clock.nextTimerAt()).toBe(1100);
  });

  it('fires timers scheduled by timers within the window, and honours clearTimer', () => {
    const clock = new FakeClock();
    const fired: number[] = [];
    const cancelled = clock.setTimer(() => fired.push(-1), 5);
    clock.setTimer(() => {
      fired.push(clock.now());
      clock.setTimer(() => fired.push(clock.now()), 10);
    }, 10);
    clock.clearTimer(cancelled);
    clock.advance(25);
    expect(fired).toEqual([10, 20]);
  });

  it('runAll fires everything and refuses a negative advance', () => {
    const clock = new FakeClock();
    let n = 0;
    clock.setTimer(() => n++, 1_000_000);
    clock.runAll();
    expect(n).toBe(1);
    expect(clock.now()).toBe(1_000_000);
    expect(() => clock.advance(-1)).toThrow(/negative/);
  });
});
