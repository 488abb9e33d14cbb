import { describe, expect, it } from 'vitest';
import { backoffPolicy, formatDuration, kubeletBackoff, nextCrashCount, restartDelayMs } from '../../../../dev/agent/backoff.ts';

describe('crash-loop back-off', () => {
  it('follows the kubelet schedule: immediate, then 10s doubling to 5m', () => {
    const delays = [1, 2, 3, 4, 5, 6, 7, 8, 20].map((n) => restartDelayMs(n, kubeletBackoff));
    expect(delays).toEqual([0, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000]);
  });

  it('scales the same shape to a configurable base', () => {
    const p = backoffPolicy(500);
    expect(p).toEqual({ baseMs: 500, maxMs: 15_000, resetAfterMs: 30_000 });
    expect([1, 2, 3, 4].map((n) => restartDelayMs(n, p))).toEqual([0, 500, 1000, 2000]);
    expect(() => backoffPolicy(0)).toThrow(/> 0/);
  });

  it('resets after a long healthy run', () => {
    expect(nextCrashCount(4, 1_000, kubeletBackoff)).toBe(5);
    expect(nextCrashCount(4, 600_000, kubeletBackoff)).toBe(1);
    expect(nextCrashCount(0, 5, kubeletBackoff)).toBe(1);
  });

  it('formats delays like the kubelet message', () => {
    expect(formatDuration(10_000)).toBe('10s');
    expect(formatDuration(500)).toBe('500ms');
    expect(formatDuration(1_500)).toBe('1.5s');
    expect(formatDuration(80_000)).toBe('1m20s');
    expect(formatDuration(300_000)).toBe('5m0s');
  });
});
