import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/runtime/clock.ts';
import { OwnWrites } from '../../../src/runtime/own-writes.ts';

describe('OwnWrites', () => {
  it('recognises the event of a recorded write once, and only that one', () => {
    const w = new OwnWrites(new FakeClock(), 3_000);
    w.record('ns/a', 'uid-1', '10');
    expect(w.consume('uid-1', '9')).toBeUndefined();
    expect(w.consume('uid-2', '10')).toBeUndefined();
    expect(w.consume('uid-1', '10')).toBe('ns/a');
    expect(w.consume('uid-1', '10')).toBeUndefined();
    expect(w.size).toBe(0);
  });

  it('says how long a key still waits for its writes, and forgets them after the ttl', () => {
    const clock = new FakeClock();
    const w = new OwnWrites(clock, 3_000);
    w.record('ns/a', 'uid-1', '10');
    clock.advance(1_000);
    w.record('ns/a', 'uid-2', '11');
    expect(w.outstandingMs('ns/a')).toBe(3_000);
    expect(w.outstandingMs('ns/b')).toBe(0);
    expect(w.consume('uid-2', '11')).toBe('ns/a');
    expect(w.outstandingMs('ns/a')).toBe(2_000);
    clock.advance(2_000);
    expect(w.outstandingMs('ns/a')).toBe(0);
    // An event arriving after the ttl is no longer taken for ours.
    expect(w.consume('uid-1', '10')).toBeUndefined();
  });

  it('forget drops a key\'s writes; the map stays bounded', () => {
    const clock = new FakeClock();
    const w = new OwnWrites(clock, 100);
    w.record('ns/a', 'u', '1');
    w.forget('ns/a');
    expect(w.outstandingMs('ns/a')).toBe(0);
    for (let i = 0; i < 5_000; i++) {
      w.record(`ns/k${i}`, `u${i}`, '1');
      clock.advance(1);
    }
    expect(w.size).toBeLessThan(1_200);
  });
});
