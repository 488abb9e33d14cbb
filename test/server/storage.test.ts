// The log server as a real process on tiny real filesystems (tmpfs; root only, never skipped).
import { mountTmpfs, fillFilesystem } from '../support/tmpfs.ts';
import { appendFile, lstat, open, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { postJson, runCli, startServer, waitState, type Server } from './helpers.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const FLAGS = ['--max-body-bytes', '65536', '--storage-reserve', '256Ki', '--segment-bytes', '131072'];

/** Every retained event after `after`, following sequences. */
async function readFrom(url: string, after = 0): Promise<string[]> {
  const out: string[] = [];
  for (;;) {
    const r = await fetch(`${url}/events?after=${after}&limit=5000`);
    if (r.status !== 200) throw new Error(`GET /events?after=${after}: ${r.status} ${await r.text()}`);
    const lines = (await r.text()).split('\n').filter((l) => l !== '');
    if (lines.length === 0) return out;
    out.push(...lines);
    after = JSON.parse(lines.at(-1)!).sequence;
  }
}


/** Takes (nearly) all free space in one write, the way a fast other writer would. */
async function grab(path: string, bytes: number): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.write(Buffer.alloc(bytes, 0x74)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOSPC') throw err;
    });
  } finally {
    await fh.close();
  }
  await fillFilesystem(path); // whatever one write left
}

async function status(url: string): Promise<Record<string, any>> {
  return (await (await fetch(`${url}/status`)).json()) as Record<string, any>;
}

/** Concurrent appends until each worker got a 507 (or `stop` says so); acknowledged events go into `acked`. */
async function appendUntilFull(url: string, acked: Map<string, string>, tag: string, stop = () => false): Promise<Response | undefined> {
  let first507: Response | undefined;
  await Promise.all(
    Array.from({ length: 6 }, async (_, w) => {
      for (let i = 0; !stop(); i++) {
        let r: Response;
        try {
          r = await postJson(url, { tag, w, i, pad: 'é'.repeat(1500) });
        } catch {
          return; // the server was killed
        }
        if (r.status === 201) {
          const text = await r.text();
          acked.set(JSON.parse(text).id, text);
        } else if (r.status === 507) {
          first507 ??= r;
          return;
        } else throw new Error(`unexpected ${r.status}: ${await r.text()}`);
      }
    }),
  );
  return first507;
}

/** Every acknowledged event is there, byte for byte, and sequences have no gaps. */
async function expectAllAcked(url: string, acked: Map<string, string>): Promise<string[]> {
  const lines = await readFrom(url);
  const byId = new Map(lines.map((l) => [JSON.parse(l).id as string, l]));
  lines.forEach((l, i) => expect(JSON.parse(l).sequence).toBe(i + 1));
  for (const [id, text] of acked) expect(byId.get(id), `acknowledged event ${id} lost`).toBe(text);
  return lines;
}

async function waitFor(what: string, ms: number, cond: () => Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - t0;
}

describe('a full volume (tmpfs)', () => {
  it('fill until 507; reads, /status, probes and metrics go on; SIGKILL while full; restart on a completely full volume; resume without restart; SIGKILL near full', async () => {
    const fs = await mountTmpfs(3 * MiB);
    const data = join(fs.dir, 'data');
    const acked = new Map<string, string>();
    let s: Server = await startServer(data, FLAGS);
    await waitState(s.url, ['ready']);

    // 1. Fill until refused.
    const refused = await appendUntilFull(s.url, acked, 'fill');
    expect(refused).toBeDefined();
    expect(refused!.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await refused!.json()) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['error', 'freeBytes', 'message', 'reserveBytes']);
    expect(body).toMatchObject({ error: 'storage_full', reserveBytes: 256 * KiB });
    expect(Number.isInteger(body.freeBytes)).toBe(true);
    expect(acked.size).toBeGreaterThan(300);
    await waitState(s.url, ['full']);
    // A /status kicks off a statfs when its figure is older than 200 ms: the next one is fresh.
    await new Promise((r) => setTimeout(r, 300));
    await status(s.url);
    await new Promise((r) => setTimeout(r, 100));
    let st = await status(s.url);
    expect(st.state).toBe('full');
    expect(st.storage).toMatchObject({ filesystemBytes: 3 * MiB, reserveBytes: 256 * KiB, logBytes: st.stats.diskBytes, sideFileBytes: 0 });
    expect(st.storage.appendsRefused).toBeGreaterThanOrEqual(1);
    expect(st.storage.freeBytes).toBeLessThan(256 * KiB + 128 * KiB);
    expect(st.storage.usedBytes).toBeGreaterThan(st.storage.logBytes - 64 * KiB);
    const ready = await fetch(`${s.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true, state: 'full' });
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
    await expectAllAcked(s.url, acked);
    const [anId, anEvent] = [...acked][0]!;
    expect(await (await fetch(`${s.url}/events/${anId}`)).text()).toBe(anEvent);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    for (const line of [
      'eventlog_state{state="full"} 1',
      'eventlog_state{state="ready"} 0',
      `eventlog_filesystem_size_bytes ${3 * MiB}`,
      `eventlog_storage_reserve_bytes ${256 * KiB}`,
      'eventlog_first_sequence 1',
      'eventlog_retention_removed_bytes_total 0',
      'eventlog_retention_removed_segments_total 0',
    ]) {
      expect(metrics).toContain(line);
    }
    expect(Number(/^eventlog_appends_refused_total\{reason="storage_full"\} (\d+)$/m.exec(metrics)![1])).toBeGreaterThanOrEqual(1);
    expect(metrics).toMatch(/^eventlog_filesystem_free_bytes \d+$/m);

    // 2. SIGKILL while full: nothing acknowledged is lost.
    expect((await s.kill('SIGKILL')).signal).toBe('SIGKILL');
    s = await startServer(data, FLAGS);
    st = await waitState(s.url, ['ready', 'full']);
    expect(st.recovery.outcome).toBe('Clean');
    await expectAllAcked(s.url, acked);
    expect((await s.kill('SIGTERM')).code).toBe(0);

    // 3. A completely full volume, a torn tail, no lock file: the server still starts, full.
    const segs = (await readdir(join(data, 'segments'))).sort();
    await appendFile(join(data, 'segments', segs.at(-1)!), Buffer.from('half of a write that never was acknowledged'));
    fs.resize(4 * MiB);
    await fillFilesystem(join(fs.dir, 'filler'));
    s = await startServer(data, FLAGS);
    st = await waitState(s.url, ['full']);
    expect(st.recovery).toMatchObject({ outcome: 'TornTailTruncated', bytesTruncated: 43 });
    expect(st.recovery.tornCopySkipped).toMatch(/no space/);
    expect(st.recovery.truncatedTo).toBeUndefined();
    expect(st.storage.freeBytes).toBe(0);
    expect((await lstat(join(data, 'LOCK'))).isSymbolicLink()).toBe(true);
    expect((await fetch(`${s.url}/readyz`)).status).toBe(200);
    await expectAllAcked(s.url, acked);
    expect((await postJson(s.url, { no: 'space' })).status).toBe(507);

    // 4. Files deleted: appends resume by themselves within a few seconds.
    await rm(join(fs.dir, 'filler'));
    await waitFor('resume after deleting the filler', 5000, async () => (await status(s.url)).state === 'ready');
    const after = await postJson(s.url, { space: 'back' });
    expect(after.status).toBe(201);
    const ev = await after.text();
    acked.set(JSON.parse(ev).id, ev);
    expect(JSON.parse(ev).sequence).toBe(acked.size);

    // 5. SIGKILL at random moments while appending near full.
    let rnd = 4242;
    const random = () => ((rnd = (rnd * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let round = 0; round < 3; round++) {
      fs.resize((4 + (round + 1) * 0.5) * MiB);
      st = await waitState(s.url, ['ready']);
      let killed = false;
      const appending = appendUntilFull(s.url, acked, `near-full-${round}`, () => killed);
      await waitFor('close to full', 20_000, async () => {
        const x = await status(s.url);
        return x.state === 'full' || x.storage.freeBytes < 512 * KiB;
      });
      await new Promise((r) => setTimeout(r, Math.floor(random() * 60)));
      expect((await s.kill('SIGKILL')).signal).toBe('SIGKILL');
      killed = true;
      await appending;
      s = await startServer(data, FLAGS);
      st = await waitState(s.url, ['ready', 'full']);
      expect(['Clean', 'TornTailTruncated']).toContain(st.recovery.outcome);
      await expectAllAcked(s.url, acked);
    }

    // 6. Another writer takes the space while the server appends: the kernel's ENOSPC is
    //    refused as 507 and cut back, the process stays up, nothing acknowledged is lost.
    //    The guard may see the space go first (then it refuses by itself): race again, a few times.
    let size = 5.5 * MiB;
    for (let attempt = 0; !s.stderr().includes('the filesystem refused a write: ENOSPC'); attempt++) {
      expect(attempt, 'the kernel never refused a write in 8 races').toBeLessThan(8);
      size += MiB;
      fs.resize(size);
      await waitFor('ready before the race', 5000, async () => (await status(s.url)).state === 'ready');
      let stopped = false;
      const racing = appendUntilFull(s.url, acked, `race-${attempt}`, () => stopped);
      await new Promise((r) => setTimeout(r, 20));
      await grab(join(fs.dir, `thief-${attempt}`), size);
      await racing;
      stopped = true;
      st = await waitState(s.url, ['full']);
      expect(s.child.exitCode).toBeNull();
      await expectAllAcked(s.url, acked);
    }
    expect(st.stats.diskBytes).toBe(st.storage.logBytes);
    for (const n of await readdir(fs.dir)) if (n.startsWith('thief-')) await rm(join(fs.dir, n));

    // 7. The volume grows (remount larger): appends resume without a restart.
    await waitFor('ready after the other writer left', 5000, async () => (await status(s.url)).state === 'ready');
    await appendUntilFull(s.url, acked, 'before-grow');
    await waitState(s.url, ['full']);
    fs.resize(size + 2 * MiB);
    await waitFor('resume after growing the volume', 5000, async () => (await status(s.url)).state === 'ready');
    expect((await postJson(s.url, { grown: true })).status).toBe(201);
    expect((await s.kill('SIGTERM')).code).toBe(0);
    await fs.unmount();
  });

  it('retention frees a full volume by itself: appends resume, a reader behind the first retained sequence gets 410, restart is Clean', async () => {
    const fs = await mountTmpfs(3 * MiB);
    const data = join(fs.dir, 'data');
    const acked = new Map<string, string>();
    let s = await startServer(data, FLAGS);
    await waitState(s.url, ['ready']);
    await appendUntilFull(s.url, acked, 'fill');
    expect((await s.kill('SIGTERM')).code).toBe(0);
    await fillFilesystem(join(fs.dir, 'filler'));
    const withRetention = [...FLAGS, '--retention-max-bytes', '1Mi'];
    s = await startServer(data, withRetention);
    await waitState(s.url, ['full', 'ready']);
    await waitFor('retention frees the volume', 8000, async () => (await status(s.url)).state === 'ready');
    const st = await status(s.url);
    const r = st.retention;
    expect(r).toMatchObject({ maxBytes: MiB, maxAgeSeconds: null });
    expect(r.removedSegments).toBeGreaterThan(0);
    expect(r.firstSequence).toBeGreaterThan(1);
    expect(r.removedEvents).toBe(r.firstSequence - 1);
    expect(r.removedBytes).toBeGreaterThan(MiB);
    expect(new Date(r.lastRemovedAt).toISOString()).toBe(r.lastRemovedAt);
    expect(st.storage.logBytes).toBeLessThanOrEqual(MiB);
    expect(st.stats).toMatchObject({ lastSequence: acked.size, total: acked.size - r.firstSequence + 1 });
    // Behind the first retained sequence: 410 with it, never a silent skip.
    for (const after of [0, r.firstSequence - 2]) {
      const gone = await fetch(`${s.url}/events?after=${after}`);
      expect(gone.status).toBe(410);
      expect(gone.headers.get('content-type')).toMatch(/^application\/json/);
      const g = (await gone.json()) as Record<string, unknown>;
      expect(Object.keys(g).sort()).toEqual(['error', 'firstSequence', 'message']);
      expect(g).toMatchObject({ error: 'gone', firstSequence: r.firstSequence });
    }
    const lines = await readFrom(s.url, r.firstSequence - 1);
    expect(JSON.parse(lines[0]!).sequence).toBe(r.firstSequence);
    const bySeq = [...acked.values()].sort((a, b) => JSON.parse(a).sequence - JSON.parse(b).sequence);
    expect(lines).toEqual(bySeq.slice(r.firstSequence - 1));
    // A deleted event is unknown by id (404, its id is forgotten).
    const deleted = JSON.parse(bySeq[0]!).id as string;
    const nf = await fetch(`${s.url}/events/${deleted}`);
    expect(nf.status).toBe(404);
    expect(((await nf.json()) as { message: string }).message).toContain(`before sequence ${r.firstSequence}`);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    expect(metrics).toContain(`eventlog_first_sequence ${r.firstSequence}`);
    expect(metrics).toContain(`eventlog_retention_removed_segments_total ${r.removedSegments}`);
    expect(metrics).toContain(`eventlog_retention_removed_bytes_total ${r.removedBytes}`);
    const added = await postJson(s.url, { after: 'retention' });
    expect(added.status).toBe(201);
    expect(JSON.parse(await added.text()).sequence).toBe(acked.size + 1);
    expect((await s.kill('SIGTERM')).code).toBe(0);
    s = await startServer(data, withRetention);
    const again = await waitState(s.url, ['ready']);
    expect(again.recovery.outcome).toBe('Clean');
    expect(again.retention.firstSequence).toBe(r.firstSequence);
    expect((await readFrom(s.url, r.firstSequence - 1)).length).toBe(lines.length + 1);
    expect((await s.kill('SIGTERM')).code).toBe(0);
    await fs.unmount();
  });
});

function oneLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l !== '');
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

describe('storage flags', () => {
  it('bad --storage-reserve / --retention-* values exit 2 with one line', async () => {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [['--storage-reserve', 'lots'], {}, /^eventlog-server: --storage-reserve: expected bytes, a quantity such as 8Mi, or a percentage of the filesystem up to 50% such as 2%, got "lots"$/],
      [['--storage-reserve', '60%'], {}, /^eventlog-server: --storage-reserve: expected .*, got "60%"$/],
      [['--storage-reserve=-1Mi'], {}, /^eventlog-server: --storage-reserve: expected .*, got "-1Mi"$/],
      [[], { EVENTLOG_STORAGE_RESERVE: '2 percent' }, /^eventlog-server: EVENTLOG_STORAGE_RESERVE: expected .*, got "2 percent"$/],
      [['--retention-max-age', '10'], {}, /^eventlog-server: --retention-max-age: expected a duration of whole seconds such as 168h, 30m, 90s or 7d, got "10"$/],
      [['--retention-max-age', '0s'], {}, /^eventlog-server: --retention-max-age: expected .*, got "0s"$/],
      [['--retention-max-age', '1500ms'], {}, /^eventlog-server: --retention-max-age: expected .*, got "1500ms"$/],
      [[], { EVENTLOG_RETENTION_MAX_AGE: 'a week' }, /^eventlog-server: EVENTLOG_RETENTION_MAX_AGE: expected .*, got "a week"$/],
      [['--retention-max-bytes', '0'], {}, /^eventlog-server: --retention-max-bytes: expected a positive number of bytes or a quantity such as 512Mi, got "0"$/],
      [['--retention-max-bytes', '1GB'], {}, /^eventlog-server: --retention-max-bytes: expected .*, got "1GB"$/],
      [[], { EVENTLOG_RETENTION_MAX_BYTES: 'x' }, /^eventlog-server: EVENTLOG_RETENTION_MAX_BYTES: expected .*, got "x"$/],
    ];
    for (const [args, env, re] of cases) {
      const r = await runCli(['--data-dir', '/tmp/eventlog-never-created', ...args], env);
      expect(r.code, args.join(' ') + JSON.stringify(env)).toBe(2);
      expect(oneLine(r.stderr)).toMatch(re);
    }
  });

  it('good values are accepted and reported in /status', async () => {
    const fs = await mountTmpfs(64 * MiB);
    const s = await startServer(join(fs.dir, 'data'), ['--retention-max-age', '7d', '--retention-max-bytes', '32Mi'], { EVENTLOG_STORAGE_RESERVE: '5%' });
    const st = await waitState(s.url, ['ready']);
    expect(st.retention).toMatchObject({ maxAgeSeconds: 7 * 86_400, maxBytes: 32 * MiB, firstSequence: 1, removedSegments: 0, lastRemovedAt: null });
    expect(st.storage).toMatchObject({ filesystemBytes: 64 * MiB, reserveBytes: Math.ceil(64 * MiB * 0.05), appendsRefused: 0, logBytes: 0 });
    expect((await s.kill('SIGTERM')).code).toBe(0);
    // Defaults: 2% of the filesystem (at least 1 MiB), no retention.
    const d = await startServer(join(fs.dir, 'data2'));
    const ds = await waitState(d.url, ['ready']);
    expect(ds.storage.reserveBytes).toBe(Math.ceil(64 * MiB * 0.02));
    expect(ds.retention).toMatchObject({ maxAgeSeconds: null, maxBytes: null });
    expect((await d.kill('SIGTERM')).code).toBe(0);
    await fs.unmount();
  });
});
