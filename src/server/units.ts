/**
 * Parsers for the storage flags: byte sizes (plain bytes or Kubernetes quantities), the
 * reserve (bytes, quantity or a percentage of the filesystem) and durations (Go style,
 * plus days).
 *
 * Guarantees: each returns undefined for anything it does not accept exactly (the config
 * layer turns that into a one-line usage error); results are safe integers.
 */
import { parseQuantity, quantityToUnits } from '../kube/quantity.ts';
import type { ReserveSpec } from '../storage/space.ts';

/** "1048576", "8Mi", "1G", "1.5Gi" -> bytes (rounded up to a whole byte). */
export function parseByteSize(input: string): number | undefined {
  const s = input.trim();
  if (s === '' || s.startsWith('-') || s.startsWith('+')) return undefined;
  if (parseQuantity(s) === undefined) return undefined;
  const n = quantityToUnits(s);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  return Number(n);
}

/** "2%", "0.5%" (0 to 50 percent of the filesystem) or a byte size. */
export function parseReserve(input: string): ReserveSpec | undefined {
  const s = input.trim();
  const m = /^(\d+(?:\.\d+)?)%$/.exec(s);
  if (m !== null) {
    const percent = Number(m[1]);
    return percent <= 50 ? { percent } : undefined;
  }
  const bytes = parseByteSize(s);
  return bytes === undefined ? undefined : { bytes };
}

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of a Go-style duration ("1h30m", "1.5s", "500ms"; "7d" when `days`), or undefined if it is not one. */
function durationMs(s: string, days: boolean): number | undefined {
  if (s === '') return undefined;
  const re = days ? /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d)/y : /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let ms = 0;
  let at = 0;
  while (at < s.length) {
    re.lastIndex = at;
    const m = re.exec(s);
    if (m === null) return undefined;
    ms += Number(m[1]) * UNIT_MS[m[2]!]!;
    at = re.lastIndex;
  }
  return ms;
}

/**
 * A positive Go-style duration of whole seconds: "168h", "30m", "90s", "1h30m", "1.5h",
 * and "7d" (days) -> seconds. At most 100 years.
 */
export function parseDurationSeconds(input: string): number | undefined {
  const ms = durationMs(input.trim(), true);
  if (ms === undefined) return undefined;
  const seconds = ms / 1000;
  const whole = Math.round(seconds);
  if (whole < 1 || Math.abs(seconds - whole) > 1e-6 || whole > 100 * 366 * 86_400) return undefined;
  return whole;
}

/** Longest long poll (`GET /events?wait=`): 60 s. */
export const MAX_WAIT_MS = 60_000;

/**
 * A long-poll wait: a plain integer of milliseconds ("1500") or a Go-style duration
 * ("30s", "500ms", "1m", "1.5s") -> milliseconds (rounded), 0 to `max`. Undefined for
 * anything else, a negative value or more than `max`.
 */
export function parseWaitMs(input: string, max: number = MAX_WAIT_MS): number | undefined {
  const s = input.trim();
  if (/^\d{1,9}$/.test(s)) {
    const ms = Number(s);
    return ms <= max ? ms : undefined;
  }
  const ms = durationMs(s, false);
  if (ms === undefined) return undefined;
  const whole = Math.round(ms);
  return whole <= max ? whole : undefined;
}
