/**
 * The figures bench:operator prints: Prometheus text parsing, histogram quantiles over
 * two scrapes, and audit-log write counting.
 */
import { describe, expect, it } from 'vitest';
import { buckets, countRequests, countWrites, heapFlagsForLimit, parseProm, quantileBetween, sum } from '../../../bench/operator-figures.ts';

describe('parseProm / sum', () => {
  it('reads samples with labels and sums matching series', () => {
    const s = parseProm(
      [
        '# HELP controller_runtime_reconcile_total x',
        'controller_runtime_reconcile_total{controller="eventlog",result="success"} 3',
        'controller_runtime_reconcile_total{controller="eventlog",result="requeue_after"} 40',
        'process_resident_memory_bytes 123456',
      ].join('\n'),
    );
    expect(sum(s, 'controller_runtime_reconcile_total')).toBe(43);
    expect(sum(s, 'controller_runtime_reconcile_total', { result: 'success' })).toBe(3);
    expect(sum(s, 'process_resident_memory_bytes')).toBe(123456);
  });
});

describe('quantileBetween', () => {
  const scrape = (counts: [string, number][]) => buckets(parseProm(counts.map(([le, n]) => `h_bucket{le="${le}"} ${n}`).join('\n')), 'h', {});
  it('interpolates within the bucket holding the rank, over the difference of two scrapes', () => {
    const before = scrape([['0.1', 10], ['0.5', 10], ['1', 10], ['+Inf', 10]]);
    const after = scrape([['0.1', 60], ['0.5', 100], ['1', 110], ['+Inf', 110]]);
    // 100 new observations: 50 <= 0.1, 40 in (0.1, 0.5], 10 in (0.5, 1].
    expect(quantileBetween(0.5, before, after)).toBeCloseTo(0.1);
    expect(quantileBetween(0.9, before, after)).toBeCloseTo(0.5);
    expect(quantileBetween(0.99, before, after)).toBeCloseTo(0.95);
  });
  it('gives the highest finite bound for the +Inf bucket and undefined without observations', () => {
    const before = scrape([['1', 0], ['+Inf', 0]]);
    expect(quantileBetween(0.99, before, scrape([['1', 0], ['+Inf', 5]]))).toBe(1);
    expect(quantileBetween(0.99, before, before)).toBeUndefined();
  });
});

describe('countWrites', () => {
  const line = (user: string, verb: string, resource: string, at: string, stage = 'ResponseComplete', subresource?: string) =>
    JSON.stringify({ kind: 'Event', stage, verb, user: { username: user }, objectRef: { resource, ...(subresource ? { subresource } : {}) }, requestReceivedTimestamp: at });
  it("counts one user's completed writes inside the window, by verb and resource", () => {
    const op = 'system:serviceaccount:eventlog-system:eventlog-operator';
    const text = [
      line(op, 'update', 'leases', '2026-01-01T00:00:01.000000Z'),
      line(op, 'update', 'leases', '2026-01-01T00:00:03.000000Z'),
      line(op, 'patch', 'eventlogs', '2026-01-01T00:00:04.000000Z', 'ResponseComplete', 'status'),
      line(op, 'patch', 'eventlogs', '2026-01-01T00:00:04.000000Z', 'ResponseStarted', 'status'),
      line(op, 'get', 'pods', '2026-01-01T00:00:05.000000Z'),
      line('eventlog-admin', 'create', 'pods', '2026-01-01T00:00:05.000000Z'),
      line(op, 'update', 'leases', '2026-01-01T00:00:10.000000Z'),
      '',
    ].join('\n');
    const counts = countWrites(text, op, Date.parse('2026-01-01T00:00:00Z'), Date.parse('2026-01-01T00:00:10Z'));
    expect(Object.fromEntries(counts)).toEqual({ 'update leases': 2, 'patch eventlogs/status': 1 });
  });
});

describe('countRequests', () => {
  it("counts every request of one user once (by auditID, whatever stages were logged), reads and watches included", () => {
    const op = 'system:serviceaccount:eventlog-system:eventlog-operator';
    const ev = (id: string, verb: string, resource: string, at: string, stage: string, user = op) =>
      JSON.stringify({ kind: 'Event', auditID: id, stage, verb, user: { username: user }, objectRef: { resource }, requestReceivedTimestamp: at });
    const text = [
      ev('a', 'get', 'storageclasses', '2026-01-01T00:00:01.000000Z', 'ResponseComplete'),
      ev('b', 'watch', 'pods', '2026-01-01T00:00:02.000000Z', 'ResponseStarted'),
      ev('b', 'watch', 'pods', '2026-01-01T00:00:02.000000Z', 'ResponseComplete'),
      ev('c', 'update', 'leases', '2026-01-01T00:00:03.000000Z', 'ResponseComplete'),
      ev('d', 'get', 'pods', '2026-01-01T00:00:03.000000Z', 'ResponseComplete', 'eventlog-admin'),
      ev('e', 'get', 'leases', '2026-01-01T00:00:11.000000Z', 'ResponseComplete'),
    ].join('\n');
    const counts = countRequests(text, op, Date.parse('2026-01-01T00:00:00Z'), Date.parse('2026-01-01T00:00:10Z'));
    expect(Object.fromEntries(counts)).toEqual({ 'get storageclasses': 1, 'watch pods': 1, 'update leases': 1 });
  });
});

describe('heapFlagsForLimit', () => {
  it('sizes the V8 heap as Node does inside a memory limit (measured with docker run -m)', () => {
    expect(heapFlagsForLimit(384)).toEqual(['--max-old-space-size=256', '--max-semi-space-size=1']);
    expect(heapFlagsForLimit(1024)).toEqual(['--max-old-space-size=512', '--max-semi-space-size=16']);
    expect(heapFlagsForLimit(4096)).toEqual(['--max-old-space-size=2048', '--max-semi-space-size=64']);
  });
});
