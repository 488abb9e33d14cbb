// Long polls and event streams against the log server as a real process.
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventLogClient, GoneError } from '../../src/client/index.ts';
import { freePort, metric, postJson, readAllLines, rssBytes, startServer, tempDir, until, waitState, type Server } from './helpers.ts';
import { openStream } from './sse.ts';

const HEARTBEAT_MS = 200;

async function expectJsonError(r: Response, status: number): Promise<Record<string, unknown>> {
  expect(r.status).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await r.json()) as Record<string, unknown>;
  expect(typeof body.error).toBe('string');
  return body;
}

describe('long poll: GET /events?after=SEQ&wait=DURATION', () => {
  let s: Server;
  beforeAll(async () => {
    s = await startServer(join(await tempDir(), 'data'), ['--stream-heartbeat-ms', String(HEARTBEAT_MS)]);
    await waitState(s.url, ['ready']);
  });
  afterAll(async () => {
    expect((await s.kill('SIGTERM')).code).toBe(0);
  });

  it('answers at once when events are there; else waits and is woken by the commit of the next event', async () => {
    const first = await (await postJson(s.url, { n: 1 })).text();
    const now = await fetch(`${s.url}/events?after=0&wait=30s`);
    expect(now.status).toBe(200);
    expect(await now.text()).toBe(first + '\n');

    let answered: string | undefined;
    const poll = fetch(`${s.url}/events?after=1&wait=30s`).then(async (r) => {
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
      answered = await r.text();
    });
    await until('the poll waits', async () => (await metric(s.url, 'eventlog_followers{kind="poll"}')) === 1);
    expect(answered).toBeUndefined();
    const second = await (await postJson(s.url, { n: 2 })).text();
    await poll;
    // A timeout would have answered an empty page: this is the commit waking it.
    expect(answered).toBe(second + '\n');
    expect(await metric(s.url, 'eventlog_followers{kind="poll"}')).toBe(0);
  });

  it('limit applies to the woken page too; plain milliseconds work', async () => {
    const last = ((await (await fetch(`${s.url}/stats`)).json()) as { lastSequence: number }).lastSequence;
    const poll = fetch(`${s.url}/events?after=${last}&wait=20000&limit=2`).then((r) => r.text());
    await until('the poll waits', async () => (await metric(s.url, 'eventlog_followers{kind="poll"}')) === 1);
    const batch = await fetch(`${s.url}/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: '{"b":1}\n{"b":2}\n{"b":3}\n' });
    const stored = (await batch.json()) as unknown[];
    const lines = (await poll).split('\n').filter(Boolean);
    expect(lines).toEqual(stored.slice(0, 2).map((e) => JSON.stringify(e)));
  });

  it('an empty page (200, no body) when the wait ends without an event', async () => {
    const last = ((await (await fetch(`${s.url}/stats`)).json()) as { lastSequence: number }).lastSequence;
    for (const wait of ['300ms', '0.3s', '250']) {
      const r = await fetch(`${s.url}/events?after=${last}&wait=${wait}`);
      expect(r.status).toBe(200);
      expect(await r.text()).toBe('');
    }
    const zero = await fetch(`${s.url}/events?after=${last}&wait=0`);
    expect(await zero.text()).toBe('');
  });

  it('400 for a bad or too long wait, with the other read errors unchanged', async () => {
    for (const wait of ['61s', '60001', '2m', '1h', 'soon', '-1', '1.5', '10 s', '']) {
      const body = await expectJsonError(await fetch(`${s.url}/events?after=0&wait=${encodeURIComponent(wait)}`), 400);
      expect(body.error).toBe('bad_request');
      if (wait !== '') expect(body.message).toContain('wait');
    }
    // The maximum is accepted (answered at once: there are events after 0).
    expect((await fetch(`${s.url}/events?after=0&wait=60s`)).status).toBe(200);
    expect((await fetch(`${s.url}/events?after=0&wait=1m`)).status).toBe(200);
    await expectJsonError(await fetch(`${s.url}/events?after=-1&wait=1s`), 400);
    await expectJsonError(await fetch(`${s.url}/events?after=0&limit=0&wait=1s`), 400);
  });

  it('a poll whose client went away is forgotten (the gauge drops)', async () => {
    const last = ((await (await fetch(`${s.url}/stats`)).json()) as { lastSequence: number }).lastSequence;
    const ac = new AbortController();
    const p = fetch(`${s.url}/events?after=${last}&wait=30s`, { signal: ac.signal }).catch(() => 'aborted');
    await until('the poll waits', async () => (await metric(s.url, 'eventlog_followers{kind="poll"}')) === 1);
    ac.abort();
    expect(await p).toBe('aborted');
    await until('the poll is forgotten', async () => (await metric(s.url, 'eventlog_followers{kind="poll"}')) === 0);
  });
});

describe('event stream: GET /events/stream', () => {
  let s: Server;
  beforeAll(async () => {
    s = await startServer(join(await tempDir(), 'data'), ['--stream-heartbeat-ms', String(HEARTBEAT_MS)]);
    await waitState(s.url, ['ready']);
    for (let i = 1; i <= 5; i++) expect((await postJson(s.url, { i, s: 'Chidé 🎉' })).status).toBe(201);
  });
  afterAll(async () => {
    expect((await s.kill('SIGTERM')).code).toBe(0);
  });

  it('text/event-stream; one event per record, id = sequence, data = the stored JSON byte for byte; live events follow', async () => {
    const st = await openStream(`${s.url}/events/stream?after=0`);
    expect(st.status).toBe(200);
    expect(st.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(st.headers['cache-control']).toContain('no-cache');
    await st.until((evs) => evs.length === 5);
    const lines = await readAllLines(s.url);
    expect(st.events.map((e) => e.data)).toEqual(lines);
    expect(st.events.map((e) => e.id)).toEqual(['1', '2', '3', '4', '5']);
    expect(st.events.every((e) => e.event === 'message')).toBe(true);
    const live = await (await postJson(s.url, { live: true })).text();
    await st.until((evs) => evs.length === 6);
    expect(st.events[5]).toEqual({ event: 'message', id: '6', data: live });
    // The raw framing: `id:` then `data:` then a blank line.
    expect(st.text()).toContain(`id: 6\ndata: ${live}\n\n`);
    st.close();
  });

  it('after= starts later; Last-Event-ID resumes and wins over after (an EventSource reconnects to its first URL)', async () => {
    const a = await openStream(`${s.url}/events/stream?after=3`);
    await a.until((evs) => evs.length >= 3);
    expect(a.events.map((e) => e.id).slice(0, 3)).toEqual(['4', '5', '6']);
    a.close();
    const b = await openStream(`${s.url}/events/stream?after=1`, { 'last-event-id': '4' });
    await b.until((evs) => evs.length >= 2);
    expect(b.events.map((e) => e.id).slice(0, 2)).toEqual(['5', '6']);
    b.close();
    for (const bad of ['x', '-1', '1.5']) {
      const r = await openStream(`${s.url}/events/stream`, { 'last-event-id': bad });
      expect(r.status).toBe(400);
      await r.ended;
      expect(JSON.parse(r.text())).toMatchObject({ error: 'bad_request' });
    }
    const q = await openStream(`${s.url}/events/stream?after=abc`);
    expect(q.status).toBe(400);
    await q.ended;
  });

  it('heartbeat comments keep an idle stream alive; metrics count followers and streamed events', async () => {
    const streamedBefore = (await metric(s.url, 'eventlog_events_streamed_total')) ?? 0;
    const st = await openStream(`${s.url}/events/stream?after=6`);
    await st.until((_e, text) => text.split(': heartbeat\n\n').length - 1 >= 2, 10_000);
    expect(st.events).toHaveLength(0);
    expect(await metric(s.url, 'eventlog_followers{kind="stream"}')).toBe(1);
    await postJson(s.url, { hb: 1 });
    await st.until((evs) => evs.length === 1);
    expect(await metric(s.url, 'eventlog_events_streamed_total')).toBe(streamedBefore + 1);
    st.close();
    await until('the stream is gone from the gauge', async () => (await metric(s.url, 'eventlog_followers{kind="stream"}')) === 0);
  });
});

describe('streams across shutdown, restart and SIGKILL', () => {
  it('SIGTERM: the stream gets event: shutdown and ends, long polls are answered, the server exits 0 within its grace period', async () => {
    const s = await startServer(join(await tempDir(), 'data'), ['--stream-heartbeat-ms', String(HEARTBEAT_MS)]);
    await waitState(s.url, ['ready']);
    await postJson(s.url, { before: 'shutdown' });
    const streams = await Promise.all(Array.from({ length: 10 }, () => openStream(`${s.url}/events/stream`)));
    for (const st of streams) await st.until((evs) => evs.length === 1);
    const poll = fetch(`${s.url}/events?after=1&wait=60s`).then(async (r) => ({ status: r.status, text: await r.text() }));
    await until('the poll waits', async () => (await metric(s.url, 'eventlog_followers{kind="poll"}')) === 1);
    const exit = await s.kill('SIGTERM');
    // 0: closed cleanly. Had the 60 s poll or a stream held the shutdown, the 20 s limit
    // would have ended the process with 1.
    expect(exit.code).toBe(0);
    expect(await poll).toEqual({ status: 200, text: '' });
    for (const st of streams) {
      await st.ended;
      const last = st.events.at(-1)!;
      expect(last.event).toBe('shutdown');
      expect(JSON.parse(last.data)).toHaveProperty('reason');
    }
  });

  it('follow() resumes across a clean restart and across SIGKILL: every acknowledged event exactly once, in order', async () => {
    const data = join(await tempDir(), 'data');
    const port = await freePort();
    let s = await startServer(data, ['--stream-heartbeat-ms', String(HEARTBEAT_MS)], {}, { port });
    await waitState(s.url, ['ready']);
    const client = new EventLogClient({ url: s.url, retry: { attempts: 50, initialDelayMs: 20, maxDelayMs: 200, maxElapsedMs: 60_000 } });
    const seen: { sequence: number; id: string; k: string }[] = [];
    const ac = new AbortController();
    let reconnects = 0;
    const following = (async () => {
      for await (const e of client.follow<{ k: string }>(0, { signal: ac.signal, reconnect: { initialDelayMs: 20, maxDelayMs: 200 }, onReconnect: () => reconnects++ })) {
        seen.push({ sequence: e.sequence, id: e.id, k: e.k });
      }
    })();
    const acked = new Map<string, number>(); // id -> sequence
    let stop = false;
    let n = 0;
    const producer = async (w: number) => {
      while (!stop) {
        const k = `w${w}-${n++}`;
        try {
          const e = await client.append({ k });
          acked.set(e.id, e.sequence);
        } catch {
          // retries used up while the server is down: the next loop tries again
        }
      }
    };
    const workers = Array.from({ length: 4 }, (_, w) => producer(w));
    const restart = async (signal: 'SIGTERM' | 'SIGKILL') => {
      const target = acked.size + 20;
      await until('some appends', () => acked.size >= target);
      const exit = await s.kill(signal);
      if (signal === 'SIGTERM') expect(exit.code).toBe(0);
      else expect(exit.signal).toBe('SIGKILL');
      s = await startServer(data, ['--stream-heartbeat-ms', String(HEARTBEAT_MS)], {}, { port });
    };
    await restart('SIGTERM');
    await restart('SIGKILL');
    await restart('SIGKILL');
    const target = acked.size + 20;
    await until('more appends after the last restart', () => acked.size >= target);
    stop = true;
    await Promise.all(workers);
    const lastAcked = Math.max(...acked.values());
    await until('the follower caught up', () => (seen.at(-1)?.sequence ?? 0) >= lastAcked, 30_000);
    ac.abort();
    await following;
    expect(reconnects).toBeGreaterThanOrEqual(3);
    // Exactly once, in order, no gaps (the log has no gaps either).
    expect(seen.map((e) => e.sequence)).toEqual(seen.map((_, i) => i + 1));
    const bySeq = new Map(seen.map((e) => [e.sequence, e.id]));
    for (const [id, seq] of acked) expect(bySeq.get(seq), `acknowledged event ${seq} not followed`).toBe(id);
    // What the follower saw is what the log holds.
    const lines = await readAllLines(s.url);
    expect(lines.map((l) => JSON.parse(l).id)).toEqual(seen.slice(0, lines.length).map((e) => e.id));
    expect(lines.length).toBe(seen.length);
    expect((await s.kill('SIGTERM')).code).toBe(0);
  });
});

describe('retention and many followers', () => {
  it('410 with firstSequence for a long poll and a stream behind retention; follow() ends with GoneError', async () => {
    const s = await startServer(join(await tempDir(), 'data'), ['--segment-bytes', '65536', '--retention-max-bytes', '131072']);
    await waitState(s.url, ['ready']);
    const pad = 'r'.repeat(2000);
    for (let b = 0; b < 10; b++) {
      const body = Array.from({ length: 50 }, (_, i) => JSON.stringify({ b, i, pad })).join('\n');
      expect((await fetch(`${s.url}/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body })).status).toBe(201);
    }
    // Retention runs after a segment roll; wait until it is done (no pass would remove more).
    await until('retention brought the log within its limit', async () => {
      const st = (await (await fetch(`${s.url}/status`)).json()) as { retention: { firstSequence: number }; storage?: { logBytes: number } };
      return st.retention.firstSequence > 1 && st.storage !== undefined && st.storage.logBytes <= 131072;
    }, 30_000);
    const first = ((await (await fetch(`${s.url}/status`)).json()) as { retention: { firstSequence: number } }).retention.firstSequence;
    const poll = await expectJsonError(await fetch(`${s.url}/events?after=0&wait=5s`), 410);
    expect(poll).toMatchObject({ error: 'gone', firstSequence: first });
    const st = await openStream(`${s.url}/events/stream?after=${first - 2}`);
    expect(st.status).toBe(410);
    await st.ended;
    expect(JSON.parse(st.text())).toMatchObject({ error: 'gone', firstSequence: first });
    // Right at the first retained sequence is fine.
    const ok = await openStream(`${s.url}/events/stream?after=${first - 1}`);
    expect(ok.status).toBe(200);
    await ok.until((evs) => evs.length > 0);
    expect(ok.events[0]!.id).toBe(String(first));
    ok.close();
    const client = new EventLogClient({ url: s.url });
    const err = await (async () => {
      try {
        for await (const _e of client.follow(0)) throw new Error('an event behind retention was delivered');
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(GoneError);
    expect((err as GoneError).firstSequence).toBe(first);
    await expect(client.read(0)).rejects.toBeInstanceOf(GoneError);
    expect((await s.kill('SIGTERM')).code).toBe(0);
  });

  it('500 idle streams: the server RSS stays bounded, one append reaches every stream once', async () => {
    const N = 500;
    const s = await startServer(join(await tempDir(), 'data'), ['--stream-heartbeat-ms', '1000']);
    await waitState(s.url, ['ready']);
    await postJson(s.url, { warm: true });
    const rss0 = rssBytes(s.pid);
    const sockets: Socket[] = [];
    const got = new Array<string>(N).fill('');
    const port = s.port;
    for (let i = 0; i < N; i++) {
      const sock = connect({ host: '127.0.0.1', port });
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => (got[i] += d));
      sock.on('error', () => undefined);
      sock.write(`GET /events/stream?after=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`);
      sockets.push(sock);
    }
    await until('all streams open', async () => (await metric(s.url, 'eventlog_followers{kind="stream"}')) === N, 60_000);
    const rss1 = rssBytes(s.pid);
    // Generous (RSS includes garbage not yet collected): well under 100 KiB per idle
    // connection (the benchmark measures it: about 35 KiB).
    expect(rss1 - rss0).toBeLessThan(N * 96 * 1024);
    const streamed0 = (await metric(s.url, 'eventlog_events_streamed_total')) ?? 0;
    const ev = await (await postJson(s.url, { to: 'all' })).text();
    const frame = `id: 2\ndata: ${ev}\n\n`;
    await until('every stream got the event', () => got.every((g) => g.includes(frame)), 60_000);
    for (const g of got) expect(g.split(frame).length - 1).toBe(1);
    expect(await metric(s.url, 'eventlog_events_streamed_total')).toBe(streamed0 + N);
    for (const sock of sockets) sock.destroy();
    await until('all streams closed', async () => (await metric(s.url, 'eventlog_followers{kind="stream"}')) === 0, 30_000);
    expect((await s.kill('SIGTERM')).code).toBe(0);
  });
});
