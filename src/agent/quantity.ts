/**
 * Kubernetes resource quantities ("1Gi", "500M", "1.5e3", "100m") to numbers,
 * enough to compare storage sizes. Returns NaN for what it cannot parse.
 */
const binary: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const decimal: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

export function parseQuantity(q: string | number | undefined | null): number {
  if (q === undefined || q === null) return Number.NaN;
  if (typeof q === 'number') return q;
  const m = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$/.exec(q.trim());
  if (!m) return Number.NaN;
  const base = Number(m[1]);
  if (m[2]) return base * 10 ** Number(m[2].slice(1));
  const suffix = m[3] ?? '';
  return base * (binary[suffix] ?? decimal[suffix] ?? Number.NaN);
}

/** a > b for two quantities (false when either cannot be parsed). */
export function quantityGreater(a: string | undefined, b: string | undefined): boolean {
  const x = parseQuantity(a);
  const y = parseQuantity(b);
  return Number.isFinite(x) && Number.isFinite(y) && x > y;
}
