/** Retry policy: exponential back-off with jitter, bounded by attempts and by time. */

export interface RetryPolicy {
  /** Attempts in total, the first included (default 6; 1 = no retry). */
  attempts: number;
  /** Delay before the first retry (default 100 ms); it doubles with each retry... */
  initialDelayMs: number;
  /** ...up to this (default 5 s). */
  maxDelayMs: number;
  /** No retry starts later than this after the first attempt (default 30 s). */
  maxElapsedMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 6, initialDelayMs: 100, maxDelayMs: 5000, maxElapsedMs: 30_000 };

export function retryPolicy(p: Partial<RetryPolicy> | undefined): RetryPolicy {
  const r = { ...DEFAULT_RETRY, ...p };
  if (!(r.attempts >= 1)) throw new RangeError(`retry.attempts must be at least 1, got ${r.attempts}`);
  if (!(r.initialDelayMs >= 0) || !(r.maxDelayMs >= r.initialDelayMs)) throw new RangeError('retry: need 0 <= initialDelayMs <= maxDelayMs');
  return r;
}

/**
 * Delay before retry number `retry` (1 = the first retry): "equal jitter", uniformly
 * between half and all of min(maxDelayMs, initialDelayMs * 2^(retry-1)), so clients that
 * failed together do not come back together, yet the delay still grows.
 */
export function backoffMs(policy: Pick<RetryPolicy, 'initialDelayMs' | 'maxDelayMs'>, retry: number, random: () => number = Math.random): number {
  const cap = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.max(0, retry - 1));
  return cap / 2 + random() * (cap / 2);
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortReason(signal));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(abortReason(signal!));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}
