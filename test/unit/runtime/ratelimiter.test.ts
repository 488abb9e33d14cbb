import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/runtime/clock.ts';
import {
  BucketRateLimiter,
  ItemExponentialFailureRateLimiter,
  MaxOfRateLimiter,
  defaultControllerRateLimiter,
} from '../../../src/runtime/ratelimiter.ts';

describe('ItemExponentialFailureRateLimiter', () => {
  it('doubles from 5 ms and caps at 1000 s, like client-go', () => {
    const rl = new ItemExponentialFailureRateLimiter<string>();
    const delays = Array.from({ length: 22 }, () => rl.when('a'));
    expect(delays.slice(0, 5)).toEqual([5, 10, 20, 40, 80]);
    expect(delays[17]).toBe(5 * 2 ** 17); // 655.36 s
    expect(delays.slice(18)).toEqual([1_000_000, 1_000_000, 1_000_000, 1_000_000]);
    expect(rl.numRequeues('a')).toBe(22);
  });

  it('never overflows past the cap', () => {
    const rl = new ItemExponentialFailureRateLimiter<string>(5, 1000);
    let last = 0;
    for (let i = 0; i < 2000; i++) last = rl.when('a');
    expect(last).toBe(1000);
  });

  it('keeps keys independent and forget resets one key', () => {
    const rl = new ItemExponentialFailureRateLimiter<string>();
    rl.when('a');
    rl.when('a');
    expect(rl.when('b')).toBe(5);
    expect(rl.when('a')).toBe(20);
    rl.forget('a');
    expect(rl.numRequeues('a')).toBe(0);
    expect(rl.when('a')).toBe(5);
    expect(rl.when('b')).toBe(10);
  });

  it('validates its parameters', () => {
    expect(() => new ItemExponentialFailureRateLimiter(0, 10)).toThrow(/0 < base/);
    expect(() => new ItemExponentialFailureRateLimiter(10, 5)).toThrow(/base \(10\) <= max \(5\)/);
  });
});

describe('BucketRateLimiter', () => {
  it('allows a burst, then spaces requests at 1/qps and refills over time', () => {
    const clock = new FakeClock();
    const rl = new BucketRateLimiter<string>(10, 3, clock);
    expect([rl.when('a'), rl.when('b'), rl.when('c')]).toEqual([0, 0, 0]);
    expect(rl.when('d')).toBeCloseTo(100);
    expect(rl.when('e')).toBeCloseTo(200);
    clock.advance(1000); // refills to the burst
    expect(rl.when('f')).toBe(0);
  });
});

describe('MaxOfRateLimiter / default', () => {
  it('takes the longest delay and forgets in all members', () => {
    const clock = new FakeClock();
    const exp = new ItemExponentialFailureRateLimiter<string>(5, 1_000_000);
    const rl = new MaxOfRateLimiter<string>(exp, new BucketRateLimiter<string>(1, 1, clock));
    expect(rl.when('a')).toBe(5); // bucket had a token
    expect(rl.when('a')).toBe(1000); // bucket empty: 1 s beats 10 ms
    rl.forget('a');
    expect(exp.numRequeues('a')).toBe(0);
  });

  it('default controller limiter starts at 5 ms', () => {
    const rl = defaultControllerRateLimiter<string>(new FakeClock());
    expect(rl.when('x')).toBe(5);
    expect(rl.when('x')).toBe(10);
    expect(rl.numRequeues('x')).toBe(2);
  });
});
