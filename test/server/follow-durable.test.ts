// Followers hear of an event only once it is durable: the server in this process with the
// store's fault-injection `io` hook holding fdatasync, so "written but not yet synced" is a
// state the test controls (a real process cannot be paused between write and sync).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startServer, type ServerHandle, type StartOptions } from '../../src/server/app.ts';
import { openStream } from './sse.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function start(extra: Record<string, unknown> = {}, io: StartOptions['io'] = undefined): Promise<ServerHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'eventlog-follow-'));
  const h = await startServer({ dataDir: join(dir, 'data'), host: '127.0.0.1', port: 0, terminationMessagePath: join(dir, 'term'), ...extra }, io !== undefined ? { io } : {});
  cleanups.push(async () => {
    await h.close();
    await rm(dir, { recursive: true, force: true });
  });
  await h.recovered;
  return h;
}

/** A gate on fdatasync: while held, every sync waits (after the write went to the file). */
function syncGate() {
  let held = false;
  let release: () => void = () => undefined;
  let gate: Promise<void> = Promise.resolve();
  let writes = 0;
  let waiting = 0;
  return {
    io: {
      write: (fh: { fd: number }, buf: Buffer, position: number) => {
        writes++;
        return import('node:fs').then(({ writeSync }) => writeSync(fh.fd, buf, 0, buf.length, position));
      },
      datasync: async (fh: { datasync(): Promise<void> }) => {
        if (held) {
          waiting++;
          await gate;
          waiting--;
        }
        await fh.datasync();
      },
    },
    hold() {
      held = true;
      gate = new Promise<void>((r) => (release = r));
    },
    release() {
      held = false;
      release();
    },
    get writes() {
      return writes;
    },
    get waiting() {
      return waiting;
    },
  };
}

async function waitUntil(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('followers see only durable events (fsync mode, fdatasync held)', () => {
  it('a long poll and a stream stay silent while the event is written but not synced, and get it the moment the sync returns', async () => {
    const g = syncGate();
    const h = await start({ durability: 'fsync' }, g.io as never);
    const stream = await openStream(`${h.url}/events/stream?after=0`);
    expect(stream.status).toBe(200);
    let polled: string | undefined;
    const poll = fetch(`${h.url}/events?after=0&wait=30s`).then(async (r) => {
      expect(r.status).toBe(200);
      polled = await r.text();
    });
    await waitUntil('the poll and the stream are registered', () => h.followers.pollCount === 1 && h.followers.streamCount === 1);

    g.hold();
    const writesBefore = g.writes;
    let acked = false;
    const append = fetch(`${h.url}/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"durable":"soon"}' }).then(async (r) => {
      acked = true;
      expect(r.status).toBe(201);
      return r.text();
    });
    // The bytes are in the segment file, the fdatasync is waiting.
    await waitUntil('the write happened and the sync waits', () => g.writes > writesBefore && g.waiting === 1);
    // Give every other path (a publish on write, a wake-up by timer) many chances to run.
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 10));
      const stats = (await (await fetch(`${h.url}/stats`)).json()) as { lastSequence: number };
      expect(stats.lastSequence).toBe(0);
    }
    expect(polled).toBeUndefined();
    expect(acked).toBe(false);
    expect(stream.events).toHaveLength(0);
    expect(h.followers.pollCount).toBe(1);

    g.release();
    const stored = await append;
    await poll;
    expect(polled).toBe(stored + '\n');
    await stream.until((evs) => evs.length === 1);
    expect(stream.events[0]).toMatchObject({ event: 'message', id: '1', data: stored });
    stream.close();
  });

  it('one group commit wakes every waiting follower once, with the same group', async () => {
    const g = syncGate();
    const h = await start({ durability: 'fsync' }, g.io as never);
    const streams = await Promise.all(Array.from({ length: 20 }, () => openStream(`${h.url}/events/stream`)));
    const polls = Array.from({ length: 20 }, () => fetch(`${h.url}/events?after=0&wait=30s`).then((r) => r.text()));
    await waitUntil('all registered', () => h.followers.pollCount === 20 && h.followers.streamCount === 20);
    g.hold();
    // Five appends in one event-loop turn join one group commit.
    const appends = Array.from({ length: 5 }, (_, i) => fetch(`${h.url}/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ i }) }).then((r) => r.text()));
    await waitUntil('the group waits for its sync', () => g.waiting === 1);
    g.release();
    const stored = await Promise.all(appends);
    const pages = await Promise.all(polls);
    const expected = [...stored].sort((a, b) => JSON.parse(a).sequence - JSON.parse(b).sequence);
    // Every poll got the whole group (or its first part, if the group was split): in order, from sequence 1.
    for (const p of pages) {
      const lines = p.split('\n').filter(Boolean);
      expect(lines.length).toBeGreaterThan(0);
      expect(lines).toEqual(expected.slice(0, lines.length));
    }
    for (const s of streams) {
      await s.until((evs) => evs.length === 5);
      expect(s.events.map((e) => e.data)).toEqual(expected);
      expect(s.events.map((e) => e.id)).toEqual(['1', '2', '3', '4', '5']);
      s.close();
    }
    expect(h.followers.eventsStreamed).toBe(100);
  });
});

describe('a slow stream reader (backpressure) and retention', () => {
  it('a stream that does not read is paused, not buffered; when retention removes what it has not read it gets event: gone and ends', async () => {
    const h = await start({ durability: 'none', segmentBytes: 64 * 1024, retentionMaxBytes: 256 * 1024, maxBodyBytes: 1024 * 1024 });
    const stream = await openStream(`${h.url}/events/stream?after=0`);
    stream.res.pause(); // the client stops reading: the server's socket fills up
    const pad = 'p'.repeat(4000);
    let n = 0;
    // About 16 MB: more than the socket buffers of loopback hold for a reader that does not read.
    for (let b = 0; b < 40; b++) {
      const body = Array.from({ length: 100 }, () => JSON.stringify({ n: ++n, pad })).join('\n');
      const r = await fetch(`${h.url}/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
      expect(r.status).toBe(201);
      await r.arrayBuffer();
    }
    await waitUntil('the stream is blocked by backpressure', () => h.followers.blockedCount === 1);
    // Blocked: the server reads nothing more for it, however much is appended.
    const sent = h.followers.eventsStreamed;
    expect(sent).toBeLessThan(n / 2);
    for (let b = 0; b < 5; b++) {
      const body = Array.from({ length: 100 }, () => JSON.stringify({ n: ++n, pad })).join('\n');
      expect((await fetch(`${h.url}/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body })).status).toBe(201);
    }
    expect(h.followers.eventsStreamed).toBe(sent);
    expect(h.followers.blockedCount).toBe(1);
    const r = await h.store.runRetention();
    expect(r?.firstSequence).toBeGreaterThan(1000);
    const first = h.store.firstSequence;
    stream.res.resume();
    await stream.ended;
    const msgs = stream.events.filter((e) => e.event === 'message');
    // Contiguous from 1, each once, then the notice: never a silent skip.
    expect(msgs.map((e) => Number(e.id))).toEqual(msgs.map((_, i) => i + 1));
    expect(msgs.length).toBeLessThan(first - 1);
    const last = stream.events.at(-1)!;
    expect(last.event).toBe('gone');
    expect(JSON.parse(last.data)).toMatchObject({ error: 'gone', firstSequence: first });
    await waitUntil('the stream is dropped', () => h.followers.streamCount === 0);
  });
});
