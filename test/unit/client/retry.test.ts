import { describe, expect, it } from 'vitest';
import { backoffMs, DEFAULT_RETRY, retryPolicy, sleep } from '../../../src/client/retry.ts';

describe('retry policy', () => {
  it('back-off doubles up to the cap, with jitter between half and all of it', () => {
    const p = { initialDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffMs(p, 1, () => 0)).toBe(50);
    expect(backoffMs(p, 1, () => 1)).toBe(100);
    expect(backoffMs(p, 2, () => 1)).toBe(200);
    expect(backoffMs(p, 4, () => 1)).toBe(800);
    expect(backoffMs(p, 5, () => 1)).toBe(1000);
    expect(backoffMs(p, 30, () => 0)).toBe(500);
    for (let i = 0; i < 100; i++) {
      const d = backoffMs(p, 3);
      expect(d).toBeGreaterThanOrEqual(200);
      expect(d).toBeLessThanOrEqual(400);
    }
  });

  it('defaults and validation', () => {
    expect(retryPolicy(undefined)).toEqual(DEFAULT_RETRY);
    expect(retryPolicy({ attempts: 1 }).attempts).toBe(1);
    expect(() => retryPolicy({ attempts: 0 })).toThrow(RangeError);
    expect(() => retryPolicy({ initialDelayMs: 10, maxDelayMs: 5 })).toThrow(RangeError);
  });

  it('sleep rejects with the signal reason on abort', async () => {
    const ac = new AbortController();
    const p = sleep(10_000, ac.signal);
    ac.abort(new Error('stop'));
    await expect(p).rejects.toThrow('stop');
  });
});
