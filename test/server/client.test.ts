// The client library against the log server as a real process, with faults injected by a
// TCP proxy that loses answers after the server processed the request.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventLogClient, EventLogUnavailableError, UnauthorizedError, BadRequestError, type StoredEvent } from '../../src/client/index.ts';
import { metric, readAllLines, startServer, tempDir, waitState, type Server } from './helpers.ts';
import { startProxy, type FaultProxy } from './proxy.ts';

const FAST_RETRY = { attempts: 5, initialDelayMs: 10, maxDelayMs: 50, maxElapsedMs: 10_000 };

let s: Server;
let proxy: FaultProxy;

beforeAll(async () => {
  s = await startServer(join(await tempDir(), 'data'));
  await waitState(s.url, ['ready']);
  proxy = await startProxy(s.port);
});
afterAll(async () => {
  await proxy.close();
  expect((await s.kill('SIGTERM')).code).toBe(0);
});

async function countMarked(marker: string): Promise<StoredEvent[]> {
  return (await readAllLines(s.url)).map((l) => JSON.parse(l) as StoredEvent).filter((e) => e.marker === marker);
}

describe('append retries never duplicate', () => {
  it('the answer is lost after the server stored the event: the retry is a replay, the log holds it once', async () => {
    const client = new EventLogClient({ url: proxy.url, retry: FAST_RETRY });
    const before = proxy.requests.length;
    proxy.loseAnswers(2);
    const stored = await client.append({ marker: 'lost-answer', n: 1 });
    expect(proxy.cut).toBeGreaterThanOrEqual(2);
    // Three POSTs reached the server (two answers lost), one event is in the log.
    expect(proxy.requests.slice(before).filter((r) => r.startsWith('POST /events'))).toHaveLength(3);
    const inLog = await countMarked('lost-answer');
    expect(inLog).toHaveLength(1);
    expect(inLog[0]).toEqual(stored);
  });

  it('a batch whose answer is lost is retried with its key: every event once, in order', async () => {
    const client = new EventLogClient({ url: proxy.url, retry: FAST_RETRY });
    proxy.loseAnswers(1);
    const stored = await client.appendBatch([1, 2, 3].map((i) => ({ marker: 'lost-batch', i })));
    expect(stored.map((e) => e.i)).toEqual([1, 2, 3]);
    const inLog = await countMarked('lost-batch');
    expect(inLog).toEqual(stored);
  });

  it('4xx is never retried: one request, a typed error', async () => {
    const client = new EventLogClient({ url: proxy.url, retry: FAST_RETRY });
    const before = proxy.requests.length;
    // 400: a read with a bad limit.
    await expect(client.read(0, 0)).rejects.toBeInstanceOf(BadRequestError);
    expect(proxy.requests.length - before).toBe(1);
    // 401 from a server with a token.
    const dir = await tempDir();
    const t = await startServer(join(dir, 'data'), [], { EVENTLOG_AUTH_TOKEN: 'right' });
    await waitState(t.url, ['ready'], { authorization: 'Bearer right' });
    const p2 = await startProxy(t.port);
    const wrong = new EventLogClient({ url: p2.url, token: 'wrong', retry: FAST_RETRY });
    const err = await wrong.append({ marker: 'unauthorized' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnauthorizedError);
    expect((err as UnauthorizedError).status).toBe(401);
    expect(p2.requests).toHaveLength(1);
    const right = new EventLogClient({ url: p2.url, token: 'right' });
    expect((await right.append({ marker: 'authorized' })).sequence).toBe(1);
    await p2.close();
    expect((await t.kill('SIGTERM')).code).toBe(0);
  });

  it('no server: bounded retries, then EventLogUnavailableError with the attempts', async () => {
    const p = await startProxy(1); // nothing listens on port 1: every connection is cut
    const client = new EventLogClient({ url: p.url, retry: { attempts: 3, initialDelayMs: 5, maxDelayMs: 10, maxElapsedMs: 5000 } });
    const err = await client.append({ marker: 'nowhere' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EventLogUnavailableError);
    expect((err as EventLogUnavailableError).attempts).toBe(3);
    await p.close();
  });
});

describe('batching producer', () => {
  it('64 concurrent appends become few batch requests; each caller gets its own stored event', async () => {
    const client = new EventLogClient({ url: proxy.url, retry: FAST_RETRY });
    const producer = client.producer({ lingerMs: 20, maxBatchEvents: 1000 });
    const before = proxy.requests.length;
    const postsBefore = (await metric(s.url, 'eventlog_http_requests_total{route="/events",method="POST",status="201"}')) ?? 0;
    const results = await Promise.all(Array.from({ length: 64 }, (_, i) => producer.append({ marker: 'producer', caller: i })));
    const posts = proxy.requests.slice(before).filter((r) => r.startsWith('POST /events'));
    expect(posts.length).toBeGreaterThanOrEqual(1);
    expect(posts.length).toBeLessThanOrEqual(4);
    expect(producer.stats).toMatchObject({ events: 64, failedBatches: 0 });
    expect(producer.stats.batches).toBe(posts.length);
    results.forEach((e, i) => expect(e.caller).toBe(i));
    // Stored once each, in call order (maxInFlight 1), as the server confirms.
    const inLog = await countMarked('producer');
    expect(inLog.map((e) => e.caller)).toEqual(results.map((_, i) => i));
    expect(inLog).toEqual(results);
    expect(((await metric(s.url, 'eventlog_http_requests_total{route="/events",method="POST",status="201"}')) ?? 0) - postsBefore).toBe(posts.length);
    await producer.close();
  });

  it('maxBatchEvents splits; a lost batch answer is retried without duplicates; a bad value fails only its caller', async () => {
    const client = new EventLogClient({ url: proxy.url, retry: FAST_RETRY });
    const producer = client.producer({ lingerMs: 50, maxBatchEvents: 10 });
    proxy.loseAnswers(1);
    const circular: Record<string, unknown> = { marker: 'split' };
    circular.self = circular;
    const calls = [
      ...Array.from({ length: 25 }, (_, i) => producer.append({ marker: 'split', caller: i })),
      producer.append(circular),
      producer.append([1, 2] as unknown as Record<string, unknown>),
    ];
    const settled = await Promise.allSettled(calls);
    expect(settled.slice(0, 25).every((r) => r.status === 'fulfilled')).toBe(true);
    expect(settled.slice(25).map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(producer.stats.batches).toBe(3);
    const inLog = await countMarked('split');
    expect(inLog.map((e) => e.caller)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    await producer.close();
    await expect(producer.append({ marker: 'late' })).rejects.toThrow(/after close/);
  });

  it('a batch that fails rejects every caller in it', async () => {
    const p = await startProxy(1);
    const client = new EventLogClient({ url: p.url, retry: { attempts: 2, initialDelayMs: 5, maxDelayMs: 5, maxElapsedMs: 1000 } });
    const producer = client.producer({ lingerMs: 5 });
    const settled = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => producer.append({ i })));
    expect(settled.every((r) => r.status === 'rejected' && r.reason instanceof EventLogUnavailableError)).toBe(true);
    expect(producer.stats).toMatchObject({ failedBatches: 1, events: 0 });
    await p.close();
  });
});

describe('read and poll', () => {
  it('read pages in order; poll waits for the next durable event', async () => {
    const client = new EventLogClient({ url: s.url });
    const all = await readAllLines(s.url);
    const page = await client.read(0, 5);
    expect(page.map((e) => JSON.stringify(e))).toEqual(all.slice(0, 5));
    const last = all.length;
    expect(await client.read(last)).toEqual([]);
    const polled = client.poll(last, { waitMs: 20_000 });
    await new Promise((r) => setTimeout(r, 100));
    const e = await client.append({ marker: 'polled' });
    expect(await polled).toEqual([e]);
    expect(await client.poll(e.sequence, { waitMs: 100 })).toEqual([]);
  });
});
