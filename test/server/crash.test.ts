import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { postJson, readAllLines, startServer, tempDir, waitState } from './helpers.ts';

const ROUNDS = 10;
const WORKERS = 16;

interface Sent {
  body: Record<string, unknown>;
  /** For batch members: the batch key and its size. */
  batch?: { key: string; size: number };
}

describe('crash safety of the real process', () => {
  it(`SIGKILL at random moments during concurrent appends (${ROUNDS} rounds): acknowledged events survive byte-identical, no gaps, nothing half-visible`, async () => {
    const dir = await tempDir();
    const data = join(dir, 'data');
    const acked = new Map<string, string>(); // id -> exact text returned with the 201
    const sent = new Map<string, Sent>(); // k -> what was sent
    const outcomes: string[] = [];
    let rnd = 12345;
    const random = () => ((rnd = (rnd * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);

    for (let round = 0; round <= ROUNDS; round++) {
      const s = await startServer(data, ['--segment-bytes', String(64 * 1024)]);
      const st = await waitState(s.url, ['ready', 'corrupt']);
      expect(st.state).toBe('ready');
      outcomes.push(st.recovery.outcome);

      // Check everything that is visible after the crash.
      const lines = await readAllLines(s.url);
      const byId = new Map<string, string>();
      const batchSeen = new Map<string, number>();
      lines.forEach((line, i) => {
        const ev = JSON.parse(line) as Record<string, unknown>;
        expect(ev.sequence).toBe(i + 1);
        expect(byId.has(ev.id as string)).toBe(false);
        byId.set(ev.id as string, line);
        const k = ev.k as string;
        const origin = sent.get(k);
        expect(origin, `event ${k} was never sent`).toBeDefined();
        const { id: _i, createdAt: _c, sequence: _s, ...fields } = ev;
        expect(fields).toEqual(origin!.body);
        if (origin!.batch) batchSeen.set(origin!.batch.key, (batchSeen.get(origin!.batch.key) ?? 0) + 1);
      });
      for (const [id, text] of acked) expect(byId.get(id), `acknowledged event ${id} lost`).toBe(text);
      for (const [key, n] of batchSeen) {
        const size = [...sent.values()].find((x) => x.batch?.key === key)!.batch!.size;
        expect(n, `batch ${key} half-visible`).toBe(size);
      }
      expect(st.stats.total).toBe(lines.length);
      if (round === ROUNDS) {
        expect((await s.kill('SIGTERM')).code).toBe(0);
        break;
      }

      // Concurrent appends, then SIGKILL at a random moment.
      let stop = false;
      let n = 0;
      const worker = async (w: number) => {
        while (!stop) {
          const isBatch = random() < 0.2;
          try {
            if (!isBatch) {
              const k = `r${round}-w${w}-${n++}`;
              const body = { k, msg: 'Chidé 🎉', pad: 'x'.repeat(Math.floor(random() * 300)) };
              sent.set(k, { body });
              const r = await postJson(s.url, body);
              if (r.status === 201) {
                const text = await r.text();
                acked.set(JSON.parse(text).id, text);
              }
            } else {
              const key = `b${round}-w${w}-${n++}`;
              const size = 2 + Math.floor(random() * 4);
              const bodies = Array.from({ length: size }, (_, j) => ({ k: `${key}-${j}`, j, s: '🎉' }));
              for (const b of bodies) sent.set(b.k, { body: b, batch: { key, size } });
              const r = await fetch(`${s.url}/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: bodies.map((b) => JSON.stringify(b)).join('\n') });
              if (r.status === 201) {
                const arr = (await r.json()) as Record<string, unknown>[];
                expect(arr).toHaveLength(size);
                for (const ev of arr) acked.set(ev.id as string, JSON.stringify(ev));
              }
            }
          } catch {
            return; // the server was killed
          }
        }
      };
      const workers = Array.from({ length: WORKERS }, (_, w) => worker(w));
      await new Promise((r) => setTimeout(r, 50 + Math.floor(random() * 350)));
      const exit = await s.kill('SIGKILL');
      stop = true;
      expect(exit.signal).toBe('SIGKILL');
      await Promise.all(workers);
    }
    expect(acked.size).toBeGreaterThan(ROUNDS);
    expect(outcomes.every((o) => o === 'Clean' || o === 'TornTailTruncated')).toBe(true);
  });

  it('/stats is one consistent snapshot while many appends run in parallel', async () => {
    const dir = await tempDir();
    const s = await startServer(join(dir, 'data'));
    await waitState(s.url, ['ready']);
    // Every event has the same size apart from the digits of its sequence.
    const first = await (await postJson(s.url, { p: 'Chidé 🎉 fixed' })).text();
    const base = Buffer.byteLength(first) - 1;
    const expectedBytes = (total: number) => {
      let b = 0;
      for (let q = 1; q <= total; q++) b += base + String(q).length;
      return b;
    };
    let done = false;
    const snapshots: { total: number; bytes: number; lastSequence: number }[] = [];
    const poller = (async () => {
      while (!done) {
        snapshots.push((await (await fetch(`${s.url}/stats`)).json()) as { total: number; bytes: number; lastSequence: number });
        const st = (await (await fetch(`${s.url}/status`)).json()) as { stats: { total: number; bytes: number } };
        snapshots.push({ ...st.stats, lastSequence: st.stats.total });
      }
    })();
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        for (let i = 0; i < 15; i++) {
          const r = await postJson(s.url, { p: 'Chidé 🎉 fixed' });
          expect(r.status).toBe(201);
        }
      }),
    );
    done = true;
    await poller;
    expect(snapshots.length).toBeGreaterThan(1);
    let prev = 0;
    for (const snap of snapshots) {
      expect(snap.lastSequence).toBe(snap.total);
      expect(snap.bytes).toBe(expectedBytes(snap.total));
      expect(snap.total).toBeGreaterThanOrEqual(prev);
      prev = snap.total;
    }
    const final = (await (await fetch(`${s.url}/stats`)).json()) as { total: number; bytes: number };
    expect(final.total).toBe(1 + 32 * 15);
    const lines = await readAllLines(s.url);
    expect(lines.reduce((n, l) => n + Buffer.byteLength(l), 0)).toBe(final.bytes);
    expect((await s.kill('SIGTERM')).code).toBe(0);
  });
});
