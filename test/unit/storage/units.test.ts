import { describe, expect, it } from 'vitest';
import { parseByteSize, parseDurationSeconds, parseReserve } from '../../../src/server/units.ts';

describe('storage flag values', () => {
  it('durations: Go style plus days, whole seconds, positive', () => {
    expect(parseDurationSeconds('168h')).toBe(604_800);
    expect(parseDurationSeconds('7d')).toBe(604_800);
    expect(parseDurationSeconds('30m')).toBe(1800);
    expect(parseDurationSeconds('90s')).toBe(90);
    expect(parseDurationSeconds('1h30m')).toBe(5400);
    expect(parseDurationSeconds('1.5h')).toBe(5400);
    expect(parseDurationSeconds('2000ms')).toBe(2);
    for (const bad of ['', '0s', '0', '10', '1500ms', 'abc', '-1h', '1y', '7 d', 'h', '1e3s']) expect(parseDurationSeconds(bad), bad).toBeUndefined();
  });

  it('byte sizes: plain bytes or Kubernetes quantities, whole and non-negative', () => {
    expect(parseByteSize('1048576')).toBe(1048576);
    expect(parseByteSize('8Mi')).toBe(8 * 1024 * 1024);
    expect(parseByteSize('1G')).toBe(1e9);
    expect(parseByteSize('1.5Ki')).toBe(1536);
    for (const bad of ['', '-1', '+5', 'abc', '8MB', '1Ei', '10 Mi']) expect(parseByteSize(bad), bad).toBeUndefined();
  });

  it('reserve: a byte size or a percentage of the filesystem up to 50%', () => {
    expect(parseReserve('2%')).toEqual({ percent: 2 });
    expect(parseReserve('0.5%')).toEqual({ percent: 0.5 });
    expect(parseReserve('8Mi')).toEqual({ bytes: 8 * 1024 * 1024 });
    expect(parseReserve('0')).toEqual({ bytes: 0 });
    for (const bad of ['51%', '%', '-2%', 'two%', 'abc']) expect(parseReserve(bad), bad).toBeUndefined();
  });
});
