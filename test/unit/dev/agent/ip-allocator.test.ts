import { describe, expect, it } from 'vitest';
import { PodIpAllocator } from '../../../../dev/agent/ip-allocator.ts';

describe('PodIpAllocator', () => {
  it('hands out unique 127.1.x.y addresses, stable per owner', () => {
    const ips = new PodIpAllocator();
    const a = ips.allocate('pod-a');
    const b = ips.allocate('pod-b');
    expect(a).toBe('127.1.0.1');
    expect(b).toBe('127.1.0.2');
    expect(ips.allocate('pod-a')).toBe(a);
    expect(ips.size).toBe(2);
  });

  it('never uses .0 or .255 host octets and crosses into the next /24', () => {
    const ips = new PodIpAllocator();
    const all = Array.from({ length: 300 }, (_, i) => ips.allocate(`p${i}`));
    expect(new Set(all).size).toBe(300);
    expect(all[253]).toBe('127.1.0.254');
    expect(all[254]).toBe('127.1.1.1');
    for (const ip of all) expect(ip).toMatch(/^127\.1\.\d+\.([1-9]\d?|1\d\d|2[0-4]\d|25[0-4])$/);
  });

  it('releases on delete and does not hand a released address out again right away', () => {
    const ips = new PodIpAllocator();
    const a = ips.allocate('a');
    ips.allocate('b');
    ips.release('a');
    expect(ips.get('a')).toBeUndefined();
    const c = ips.allocate('c');
    expect(c).not.toBe(a);
    ips.release('not-there'); // no-op
    expect(ips.size).toBe(2);
  });

  it('reserves an address a pod already had, unless someone else holds it', () => {
    const ips = new PodIpAllocator();
    expect(ips.reserve('old-pod', '127.1.3.7')).toBe(true);
    expect(ips.get('old-pod')).toBe('127.1.3.7');
    expect(ips.reserve('old-pod', '127.1.3.7')).toBe(true);
    expect(ips.reserve('other', '127.1.3.7')).toBe(false);
    expect(ips.reserve('x', '10.0.0.1')).toBe(false);
    expect(ips.reserve('x', '127.1.0.0')).toBe(false);
    expect(ips.inRange('127.1.255.254')).toBe(true);
    expect(ips.inRange('127.2.0.1')).toBe(false);
  });

  it('reports exhaustion instead of reusing an address', () => {
    const ips = new PodIpAllocator();
    for (let i = 0; i < PodIpAllocator.capacity; i++) ips.allocate(`p${i}`);
    expect(() => ips.allocate('one-too-many')).toThrow(/exhausted/);
  });
});
