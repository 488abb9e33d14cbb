import { describe, expect, it } from 'vitest';
import { parseQuantity, quantityGreater } from '../../../src/agent/quantity.ts';

describe('quantities', () => {
  it('parses binary, decimal and exponent forms', () => {
    expect(parseQuantity('1Gi')).toBe(2 ** 30);
    expect(parseQuantity('64Mi')).toBe(64 * 2 ** 20);
    expect(parseQuantity('1G')).toBe(1e9);
    expect(parseQuantity('1.5Ki')).toBe(1536);
    expect(parseQuantity('100m')).toBeCloseTo(0.1);
    expect(parseQuantity('2e3')).toBe(2000);
    expect(parseQuantity('42')).toBe(42);
    expect(parseQuantity('1Gb')).toBeNaN();
    expect(parseQuantity(undefined)).toBeNaN();
  });

  it('compares sizes across units', () => {
    expect(quantityGreater('2Gi', '1Gi')).toBe(true);
    expect(quantityGreater('1Gi', '1024Mi')).toBe(false);
    expect(quantityGreater('1Gi', '1G')).toBe(true);
    expect(quantityGreater('junk', '1Gi')).toBe(false);
  });
});
