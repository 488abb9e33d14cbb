/**
 * The log server in the image, on a bind-mounted data dir: concurrent clients
 * append, `docker kill` (SIGKILL) ends the container mid-load, a new container on
 * the same dir recovers, and every acknowledged (201) event is there, byte for
 * byte, with sequences 1..n and no batch half-visible. Then `docker stop` shuts
 * the server down cleanly (exit 0: Node as PID 1 handles SIGTERM).
 *
 * Host networking with the server bound to 127.0.0.1 on a free port: the test
 * reaches it on loopback and nothing is published beyond it.
 */
import { describe, expect, it } from 'vitest';
import { containerLogs, containerState, dataDir, dockerKill, dockerStop, freePort, start, waitFor } from './helpers.ts';

const ROUNDS = 3;
const CLIENTS = 8;
/** Acknowledged events per round before the kill (the kill lands while clients still send). */
const ACKS_BEFORE_KILL = 150;

interface Status {
  state: string;
  bootId: string;
  recovery: { outcome: string; recordsRecovered: number; bytesTruncated: number } | null;
  stats: { total: number; lastSequence: number; segments: number };
}

async function startServer(dir: string, port: number) {
  const c = await start({
    network: 'host',
    entrypoint: ['eventlog-server'],
    command: ['--data-dir', '/data', '--host', '127.0.0.1', '--port', String(port), '--segment-bytes', String(64 * 1024)],
    binds: [{ source: dir, target: '/data' }],
    waitForLog: /"msg":"listening"/,
  });
  const url = `http://127.0.0.1:${port}`;
  const status = await waitFor('the server to be ready', async () => {
    const r = await fetch(`${url}/status`);
    const st = (await r.json()) as Status;
    return st.state === 'recovering' ? undefined : st;
  });
  return { id: c.getId(), url, status };
}

async function readAll(url: string): Promise<string[]> {
  const lines: string[] = [];
  for (;;) {
    const r = await fetch(`${url}/events?after=${lines.length}&limit=1000`);
    expect(r.status).toBe(200);
    const page = (await r.text()).split('\n').filter((l) => l.length > 0);
    if (page.length === 0) return lines;
    lines.push(...page);
  }
}

describe('log server container: SIGKILL under load and recovery on the same data dir', () => {
  it(`keeps every acknowledged event across ${ROUNDS} docker kills, then stops cleanly on docker stop`, async () => {
    const dir = await dataDir();
    const port = await freePort();
    const acked = new Map<string, string>(); // id -> exact text of the 201
    const sent = new Map<string, { batch?: string; size?: number }>(); // client key -> origin
    const bootIds = new Set<string>();

    for (let round = 0; ; round++) {
      const s = await startServer(dir, port);
      expect(s.status.state).toBe('ready');
      expect(s.status.recovery).not.toBeNull();
      expect(['Clean', 'TornTailTruncated']).toContain(s.status.recovery!.outcome);
      bootIds.add(s.status.bootId);
      expect(bootIds.size).toBe(round + 1);

      // Everything visible after the crash: gap-free, only what was sent, whole batches, all acks.
      const lines = await readAll(s.url);
      const byId = new Map<string, string>();
      const batchCount = new Map<string, number>();
      lines.forEach((line, i) => {
        const ev = JSON.parse(line) as { id: string; sequence: number; k: string };
        expect(ev.sequence).toBe(i + 1);
        byId.set(ev.id, line);
        const origin = sent.get(ev.k);
        expect(origin, `event ${ev.k} was never sent`).toBeDefined();
        if (origin!.batch) batchCount.set(origin!.batch, (batchCount.get(origin!.batch) ?? 0) + 1);
      });
      for (const [id, text] of acked) expect(byId.get(id), `acknowledged event ${id} lost after round ${round}`).toBe(text);
      for (const [batch, n] of batchCount) {
        const size = [...sent.values()].find((o) => o.batch === batch)!.size;
        expect(n, `batch ${batch} half-visible`).toBe(size);
      }
      expect(s.status.stats.total).toBe(lines.length);

      if (round === ROUNDS) {
        // Still writable after recovery, then a graceful stop: SIGTERM reaches Node as PID 1.
        const r = await fetch(`${s.url}/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ k: 'last' }) });
        expect(r.status).toBe(201);
        expect(await dockerStop(s.id)).toBe(0);
        expect((await containerLogs(s.id)).stderr).toContain('"msg":"closed cleanly"');
        break;
      }

      // Concurrent clients (single events and NDJSON batches) until enough acks, then SIGKILL mid-load.
      let stop = false;
      let ackedThisRound = 0;
      let n = 0;
      const client = async (c: number) => {
        while (!stop) {
          const k = `r${round}-c${c}-${n++}`;
          try {
            if (n % 5 === 0) {
              const size = 3;
              const bodies = Array.from({ length: size }, (_, j) => ({ k: `${k}-${j}`, j, text: 'Chidé 🎉'.repeat(j + 1) }));
              for (const b of bodies) sent.set(b.k, { batch: k, size });
              const r = await fetch(`${s.url}/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: bodies.map((b) => JSON.stringify(b)).join('\n') });
              if (r.status === 201) {
                // A batch's response is the JSON array of the stored events; each is stored as its compact JSON.
                for (const ev of (await r.json()) as Array<{ id: string }>) acked.set(ev.id, JSON.stringify(ev));
                ackedThisRound += size;
              }
            } else {
              sent.set(k, {});
              const r = await fetch(`${s.url}/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ k, pad: 'x'.repeat(n % 300) }) });
              if (r.status === 201) {
                const text = await r.text();
                acked.set((JSON.parse(text) as { id: string }).id, text);
                ackedThisRound++;
              }
            }
          } catch {
            // The container was killed under this request: not acknowledged, may or may not be stored.
          }
        }
      };
      const clients = Array.from({ length: CLIENTS }, (_, c) => client(c));
      await waitFor(`${ACKS_BEFORE_KILL} acknowledged appends in round ${round}`, async () => (ackedThisRound >= ACKS_BEFORE_KILL ? true : undefined), 120_000);
      await dockerKill(s.id);
      stop = true;
      await Promise.all(clients);
      const state = await containerState(s.id);
      expect(state.Running).toBe(false);
      expect(state.ExitCode).toBe(137); // SIGKILL: no shutdown code ran
    }
    expect(acked.size).toBeGreaterThanOrEqual(ROUNDS * ACKS_BEFORE_KILL);
  });
});
