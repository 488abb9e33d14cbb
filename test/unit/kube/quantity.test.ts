import { describe, expect, it } from 'vitest';
import { bytesToQuantity, compareQuantities, isQuantity, parseQuantity, quantityGreater, quantityToUnits } from '../../../src/kube/quantity.ts';

describe('quantity', () => {
  it.each(['1', '1Gi', '500m', '1.5Gi', '.5', '1e3', '1E-3', '+2Ki', '-1', '100M', 1024])('accepts %j', (q) => {
    expect(isQuantity(q)).toBe(true);
  });

  it.each(['', 'Gi', '1GiB', '1 Gi', '1.2.3', 'abc', '1e999', 1.5])('rejects %j', (q) => {
    expect(isQuantity(q)).toBe(false);
  });

  it('compares across suffixes exactly', () => {
    expect(compareQuantities('1Gi', '1024Mi')).toBe(0);
    expect(compareQuantities('1Gi', 1073741824)).toBe(0);
    expect(compareQuantities('1G', '1Gi')).toBe(-1);
    expect(compareQuantities('1000m', '1')).toBe(0);
    expect(compareQuantities('1.5', '1500m')).toBe(0);
    expect(compareQuantities('2e3', '2k')).toBe(0);
    expect(compareQuantities('10Gi', '9Gi')).toBe(1);
    expect(() => compareQuantities('x', '1')).toThrow(/"x" is not a valid quantity/);
  });

  it('converts to whole units, rounding up', () => {
    expect(quantityToUnits('1Ki')).toBe(1024n);
    expect(quantityToUnits('1500m')).toBe(2n);
    expect(quantityToUnits('8Ei')).toBe(8n << 60n);
  });

  it('keeps the exact rational value', () => {
    expect(parseQuantity('1.25')).toEqual({ num: 125n, den: 100n });
  });
});

describe('quantityGreater (storage expansion checks)', () => {
  it('compares sizes across units and is false for anything it cannot read', () => {
    expect(quantityGreater('2Gi', '1Gi')).toBe(true);
    expect(quantityGreater('1Gi', '1024Mi')).toBe(false);
    expect(quantityGreater('1Gi', '1G')).toBe(true);
    expect(quantityGreater('junk', '1Gi')).toBe(false);
    expect(quantityGreater(undefined, '1Gi')).toBe(false);
  });
});

describe('bytesToQuantity', () => {
  const Mi = 1n << 20n;
  it('spells an exact byte count in the largest binary suffix that divides it', () => {
    expect(bytesToQuantity(64n * Mi)).toBe('64Mi');
    expect(bytesToQuantity(1n << 30n)).toBe('1Gi');
    expect(bytesToQuantity(1536n * Mi)).toBe('1536Mi');
    expect(bytesToQuantity(100_003_840n)).toBe('97660Ki');
    expect(bytesToQuantity(1000n)).toBe('1000');
    expect(quantityToUnits(bytesToQuantity(100_003_840n))).toBe(100_003_840n);
  });
});
