/**
 * Crash-loop back-off, as the kubelet does it: the first restart after a crash
 * is immediate; every further consecutive crash waits twice as long as the one
 * before, starting at `baseMs` (kubelet: 10 s) and capped at `maxMs` (5 min).
 * A container that ran for at least `resetAfterMs` (kubelet: 10 min) before it
 * exited starts the count again.
 */

export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
  resetAfterMs: number;
}

export const kubeletBackoff: BackoffPolicy = { baseMs: 10_000, maxMs: 300_000, resetAfterMs: 600_000 };

/** A policy with the kubelet's shape scaled to another base (tests use ~0.5 s). */
export function backoffPolicy(baseMs: number = kubeletBackoff.baseMs): BackoffPolicy {
  if (!(baseMs > 0)) throw new Error(`crash-loop back-off base must be > 0 ms, got ${baseMs}`);
  const maxMs = baseMs * 30;
  return { baseMs, maxMs, resetAfterMs: maxMs * 2 };
}

/**
 * Delay before the restart that follows the `crashes`-th consecutive crash
 * (1-based): 1 -> 0, 2 -> base, 3 -> 2*base, ... capped at max.
 */
export function restartDelayMs(crashes: number, policy: BackoffPolicy): number {
  if (crashes <= 1) return 0;
  const exp = Math.min(crashes - 2, 30);
  return Math.min(policy.baseMs * 2 ** exp, policy.maxMs);
}

/**
 * The consecutive-crash count after a container that ran for `ranForMs` exited.
 * A long healthy run resets the count, so the next restart is immediate again.
 */
export function nextCrashCount(previous: number, ranForMs: number, policy: BackoffPolicy): number {
  return ranForMs >= policy.resetAfterMs ? 1 : previous + 1;
}

/** "10s", "1m20s", "500ms": the kubelet's style in "back-off 20s restarting failed container". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const totalSeconds = ms / 1000;
  const minutes = Math.floor(totalSeconds / 60);
  const seconds = totalSeconds - minutes * 60;
  const secText = Number.isInteger(seconds) ? `${seconds}` : seconds.toFixed(1).replace(/\.0$/, '');
  if (minutes === 0) return `${secText}s`;
  return seconds === 0 ? `${minutes}m0s` : `${minutes}m${secText}s`;
}
