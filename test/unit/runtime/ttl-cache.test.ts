import { describe, expect, it } from 'vitest';
import { TtlCache } from '../../../src/runtime/ttl-cache.ts';

describe('TtlCache', () => {
  it('reuses a value for ttl, shares concurrent loads and reloads after the ttl', async () => {
    let now = 0;
    let loads = 0;
    const c = new TtlCache<number>(1_000, { now: () => now });
    const load = async () => ++loads;
    expect(await Promise.all([c.get('a', load), c.get('a', load)])).toEqual([1, 1]);
    now = 999;
    expect(await c.get('a', load)).toBe(1);
    now = 1_000;
    expect(await c.get('a', load)).toBe(2);
    expect(await c.get('b', load)).toBe(3);
  });

  it('does not keep a failed load, and stays bounded', async () => {
    const c = new TtlCache<number>(60_000, { maxEntries: 2, now: () => 0 });
    await expect(c.get('x', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await c.get('x', async () => 7)).toBe(7);
    await c.get('y', async () => 8);
    await c.get('z', async () => 9);
    expect(await c.get('x', async () => 70)).toBe(70); // evicted (oldest)
  });
});
