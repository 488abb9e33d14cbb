/**
 * Kubernetes resource quantities ("10Gi", "500m", "1e3", 1073741824) for the EventLog API.
 *
 * Guarantees:
 * - `QUANTITY_PATTERN` is the same regular expression Kubernetes publishes for
 *   `resource.Quantity` in its OpenAPI (and controller-gen emits), so zod and the CRD
 *   accept exactly the same spellings.
 * - `parseQuantity` is exact: the value is kept as a rational number of two bigints, so
 *   "1Gi" vs "1073741824" vs "1.073741824G" compare correctly without floating point.
 * - Exponents are bounded (|e| <= 64) so a hostile "1e999999999" cannot make us build a
 *   gigantic bigint; such strings parse to `undefined`. The API server would reject them
 *   too (Kubernetes caps quantities far below that).
 *
 * Caveats: this is a comparison/conversion helper, not a re-implementation of
 * `resource.Quantity` canonicalisation; `formatQuantity` is not provided on purpose
 * (we pass the user's spelling through to the PVC unchanged). `bytesToQuantity` spells
 * sizes we compute ourselves (a grown PVC, a loop volume's capacity).
 */

/** Kubernetes' published pattern for resource.Quantity (string form). */
export const QUANTITY_PATTERN =
  /^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$/;

const MAX_ABS_EXPONENT = 64;

/** An exact rational value: num / den, den > 0. */
export interface QuantityValue {
  readonly num: bigint;
  readonly den: bigint;
}

const BINARY: Record<string, bigint> = {
  Ki: 1n << 10n,
  Mi: 1n << 20n,
  Gi: 1n << 30n,
  Ti: 1n << 40n,
  Pi: 1n << 50n,
  Ei: 1n << 60n,
};
const DECIMAL_EXP: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };

/** Parse a quantity; `undefined` if it is not a valid Kubernetes quantity. */
export function parseQuantity(input: string | number): QuantityValue | undefined {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input)) return undefined;
    return { num: BigInt(input), den: 1n };
  }
  if (!QUANTITY_PATTERN.test(input)) return undefined;
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(.*)$/.exec(input);
  if (!m) return undefined;
  const sign = m[1] === '-' ? -1n : 1n;
  const intPart = m[2] ?? '';
  const fracPart = m[3] ?? '';
  const suffix = m[4] ?? '';
  const mantissa = BigInt((intPart + fracPart) || '0') * sign;
  let exp10 = -fracPart.length;
  let mult2 = 1n;
  if (suffix in BINARY) {
    mult2 = BINARY[suffix] as bigint;
  } else if (suffix in DECIMAL_EXP) {
    exp10 += DECIMAL_EXP[suffix] as number;
  } else {
    // decimal exponent: e<signedNumber>; Kubernetes only accepts integer exponents in practice
    const e = Number(suffix.slice(1));
    if (!Number.isInteger(e) || Math.abs(e) > MAX_ABS_EXPONENT) return undefined;
    exp10 += e;
  }
  let num = mantissa * mult2;
  let den = 1n;
  if (exp10 >= 0) num *= 10n ** BigInt(exp10);
  else den = 10n ** BigInt(-exp10);
  return { num, den };
}

/** Whether `input` is a valid Kubernetes quantity. */
export function isQuantity(input: string | number): boolean {
  return parseQuantity(input) !== undefined;
}

/**
 * Compare two quantities: negative if a < b, 0 if equal, positive if a > b.
 * Throws if either is not a valid quantity (callers validate first).
 */
export function compareQuantities(a: string | number, b: string | number): number {
  const qa = parseQuantity(a);
  const qb = parseQuantity(b);
  if (!qa) throw new Error(`compareQuantities: "${String(a)}" is not a valid quantity`);
  if (!qb) throw new Error(`compareQuantities: "${String(b)}" is not a valid quantity`);
  const l = qa.num * qb.den;
  const r = qb.num * qa.den;
  return l < r ? -1 : l > r ? 1 : 0;
}

/**
 * The quantity as a whole number of base units, rounded up (Kubernetes rounds storage
 * requests up to whole bytes). Returns a bigint so exabyte values stay exact.
 */
export function quantityToUnits(input: string | number): bigint {
  const q = parseQuantity(input);
  if (!q) throw new Error(`quantityToUnits: "${String(input)}" is not a valid quantity`);
  const whole = q.num / q.den;
  return q.num % q.den === 0n || q.num < 0n ? whole : whole + 1n;
}

/** a > b for two quantities; false when either is missing or not a quantity. */
export function quantityGreater(a: string | number | undefined, b: string | number | undefined): boolean {
  if (a === undefined || b === undefined || !isQuantity(a) || !isQuantity(b)) return false;
  return compareQuantities(a, b) > 0;
}

/** An exact byte count in the largest binary suffix that divides it ("64Mi", "1536Mi", "97660Ki", "1000"). */
export function bytesToQuantity(bytes: bigint): string {
  const units: Array<[string, bigint]> = [
    ['Ti', 1n << 40n],
    ['Gi', 1n << 30n],
    ['Mi', 1n << 20n],
    ['Ki', 1n << 10n],
  ];
  for (const [suffix, size] of units) if (bytes >= size && bytes % size === 0n) return `${bytes / size}${suffix}`;
  return String(bytes);
}
