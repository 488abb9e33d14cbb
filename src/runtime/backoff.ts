/**
 * The retry delay of a failing list/watch (client-go's reflector back-off): exponential
 * from `initialMs` to `maxMs`, plus 0-25 % jitter, reset once a watch stayed open for
 * `resetAfterMs`.
 *
 * Guarantees
 * - The n-th consecutive failure waits min(maxMs, initialMs x 2^(n-1)) x (1 + 0.25 r),
 *   r from `random` in [0, 1); the exponent is capped, so no overflow however long it fails.
 * - Only `healthyFor(ms)` with ms >= resetAfterMs resets the count.
 */
export interface BackoffOptions {
  /** First delay. Default 800 ms. */
  initialMs?: number;
  /** Cap. Default 30 s. */
  maxMs?: number;
  /** A watch that stayed open this long resets the back-off. Default 60 s. */
  resetAfterMs?: number;
}

const DEFAULTS: Required<BackoffOptions> = { initialMs: 800, maxMs: 30_000, resetAfterMs: 60_000 };

export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly resetAfterMs: number;
  readonly #random: () => number;
  #failures = 0;

  constructor(opts: BackoffOptions = {}, random: () => number = Math.random) {
    this.initialMs = opts.initialMs ?? DEFAULTS.initialMs;
    this.maxMs = opts.maxMs ?? DEFAULTS.maxMs;
    this.resetAfterMs = opts.resetAfterMs ?? DEFAULTS.resetAfterMs;
    this.#random = random;
  }

  /** Consecutive failures since the last reset. */
  get failures(): number {
    return this.#failures;
  }

  /** Counts a failure and returns how long to wait before the next attempt. */
  next(): number {
    const base = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.#failures, 30));
    this.#failures++;
    return base * (1 + 0.25 * this.#random());
  }

  /** A watch stayed open `ms`: long enough resets the count. */
  healthyFor(ms: number): void {
    if (ms >= this.resetAfterMs) this.#failures = 0;
  }
}
