import { existsSync } from 'node:fs';
import { readFile, readdir, writeFile, appendFile, mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { postJson, readAllLines, runCli, startServer, tempDir, waitState } from './helpers.ts';

/** The human-facing error line (JSON log lines on stderr are ignored). */
function errorLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{'));
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

function oneLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l !== '');
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

describe('flags and environment', () => {
  it('a bad flag value exits 2 with one line naming the flag, expectation and value', async () => {
    const r = await runCli(['--data-dir', '/tmp/x', '--port', 'abc']);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toBe('eventlog-server: --port: expected an integer between 1 and 65535, got "abc"');
  });

  it('bad durability, unknown flag, missing data dir and bad env values are one-line usage errors', async () => {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [['--data-dir', '/tmp/x', '--durability', 'sometimes'], {}, /^eventlog-server: --durability: expected one of fsync, interval, none, got "sometimes"$/],
      [['--data-dir', '/tmp/x', '--bogus', '1'], {}, /^eventlog-server: unknown flag --bogus/],
      [['--port', '8080'], { EVENTLOG_DATA_DIR: '' }, /^eventlog-server: --data-dir: required \(or set EVENTLOG_DATA_DIR\)$/],
      [['--data-dir', '/tmp/x'], { EVENTLOG_PORT: '70000' }, /^eventlog-server: EVENTLOG_PORT: expected an integer between 1 and 65535, got "70000"$/],
      [['--data-dir=/tmp/x', '--port=0'], {}, /^eventlog-server: --port: expected an integer between 1 and 65535, got "0"$/],
      [['frobnicate'], {}, /^eventlog-server: unknown command "frobnicate"/],
    ];
    for (const [args, env, re] of cases) {
      const r = await runCli(args, env);
      expect(r.code).toBe(2);
      expect(oneLine(r.stderr)).toMatch(re);
    }
  });

  it('--help prints usage and exits 0', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--data-dir');
    expect(r.stdout).toContain('EVENTLOG_TERMINATION_MESSAGE_PATH');
    expect(r.stdout).toContain('verify');
  });

  it('configured from environment variables alone', async () => {
    const dir = await tempDir();
    const s = await startServer(join(dir, 'ignored'), [], { EVENTLOG_DURABILITY: 'interval', EVENTLOG_FSYNC_INTERVAL_MS: '5' });
    const st = await waitState(s.url, ['ready']);
    expect(st.durability).toBe('interval');
    expect((await s.kill('SIGTERM')).code).toBe(0);
  });
});

describe('process lifecycle', () => {
  it('SIGTERM exits 0 after a clean close; the restart is Clean with every event', async () => {
    const dir = await tempDir();
    const data = join(dir, 'data');
    let s = await startServer(data);
    await waitState(s.url, ['ready']);
    const acked = await Promise.all(Array.from({ length: 19 }, async (_, i) => (await postJson(s.url, { i })).text()));
    const keyed = await postJson(s.url, { pay: 'Chidé 🎉' }, { 'idempotency-key': 'order-42' });
    expect(keyed.status).toBe(201);
    acked.push(await keyed.text());
    expect((await s.kill('SIGTERM')).code).toBe(0);
    s = await startServer(data);
    const st = await waitState(s.url, ['ready']);
    expect(st.recovery).toMatchObject({ outcome: 'Clean', recordsRecovered: 20 });
    expect(new Set(await readAllLines(s.url))).toEqual(new Set(acked));
    // The idempotency key survives the restart.
    const retry = await postJson(s.url, { pay: 'Chidé 🎉' }, { 'idempotency-key': 'order-42' });
    expect(retry.status).toBe(200);
    expect(await retry.text()).toBe(acked[19]);
    expect((await postJson(s.url, { pay: 'other' }, { 'idempotency-key': 'order-42' })).status).toBe(422);
    expect(((await (await fetch(`${s.url}/stats`)).json()) as { total: number }).total).toBe(20);
    expect((await s.kill('SIGTERM')).code).toBe(0);
  });

  it('SIGTERM during concurrent appends: in-flight commits finish, exit 0, every acknowledged event is there', async () => {
    const dir = await tempDir();
    const data = join(dir, 'data');
    let s = await startServer(data);
    await waitState(s.url, ['ready']);
    const acked: string[] = [];
    let stop = false;
    const workers = Array.from({ length: 8 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        try {
          const r = await postJson(s.url, { w, i });
          if (r.status === 201) acked.push(await r.text());
          else if (r.status !== 503) throw new Error(`unexpected ${r.status}`);
        } catch (err) {
          if ((err as Error).message.startsWith('unexpected')) throw err;
          return; // connection closed by the shutdown
        }
      }
    });
    while (acked.length < 20) await new Promise((r) => setTimeout(r, 10));
    const exit = await s.kill('SIGTERM');
    stop = true;
    await Promise.all(workers);
    expect(exit.code).toBe(0);
    s = await startServer(data);
    const st = await waitState(s.url, ['ready']);
    expect(st.recovery.outcome).toBe('Clean');
    const present = new Set(await readAllLines(s.url));
    for (const a of acked) expect(present.has(a)).toBe(true);
    expect((await s.kill('SIGTERM')).code).toBe(0);
  });

  it('a failed write is not acknowledged: 503, termination message, exit 1 (never retried)', async () => {
    expect(existsSync('/dev/full')).toBe(true);
    const dir = await tempDir();
    const data = join(dir, 'data');
    await mkdir(join(data, 'segments'), { recursive: true });
    // Every write to /dev/full fails with ENOSPC.
    await symlink('/dev/full', join(data, 'segments', '00000000000000000001.seg'));
    const s = await startServer(data);
    await waitState(s.url, ['ready']);
    const r = await postJson(s.url, { lost: true });
    expect(r.status).toBe(503);
    expect(((await r.json()) as { error: string }).error).toBe('failed');
    const exit = await s.exited;
    expect(exit.code).toBe(1);
    const term = JSON.parse(await readFile(join(dir, `termination-${s.port}.log`), 'utf8')) as { state: string; error: string };
    expect(term.state).toBe('failed');
    expect(term.error).toContain('ENOSPC');
  });

  it('the lock file refuses a second server on the same data dir', async () => {
    const dir = await tempDir();
    const data = join(dir, 'data');
    const s = await startServer(data);
    await waitState(s.url, ['ready']);
    const second = await runCli(['--data-dir', data, '--host', '127.0.0.1', '--port', '1']);
    expect(second.code).toBe(1);
    expect(oneLine(second.stderr)).toMatch(new RegExp(`^eventlog-server: data dir .* is locked by pid ${s.pid}`));
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
    expect((await s.kill('SIGTERM')).code).toBe(0);
  });
});

async function corruptLog(data: string): Promise<{ kept: string[]; segPath: string; badOffset: number }> {
  const s = await startServer(data);
  await waitState(s.url, ['ready']);
  const kept: string[] = [];
  for (let i = 0; i < 6; i++) kept.push(await (await postJson(s.url, { i, msg: 'Chidé 🎉' })).text());
  expect((await s.kill('SIGTERM')).code).toBe(0);
  const segPath = join(data, 'segments', (await readdir(join(data, 'segments')))[0]!);
  const buf = await readFile(segPath);
  let off = 0;
  for (let i = 0; i < 2; i++) off += 8 + buf.readUInt32LE(off);
  buf[off + 60]! ^= 0x20;
  await writeFile(segPath, buf);
  return { kept, segPath, badOffset: off };
}

describe('corruption at start-up', () => {
  it('starts corrupt: 503 on writes, /status with segment/offset/reason, termination message, repair via HTTP', async () => {
    const dir = await tempDir();
    const data = join(dir, 'data');
    const { kept, badOffset } = await corruptLog(data);
    const s = await startServer(data);
    const st = await waitState(s.url, ['corrupt']);
    expect(st.recovery.outcome).toBe('CorruptionDetected');
    expect(st.recovery.corruption).toMatchObject({ segment: 'segments/00000000000000000001.seg', offset: badOffset });
    expect((await fetch(`${s.url}/readyz`)).status).toBe(503);
    const w = await postJson(s.url, { no: 1 });
    expect(w.status).toBe(503);
    expect(await w.json()).toMatchObject({ error: 'corrupt', state: 'corrupt' });
    // The valid prefix stays readable.
    expect(await readAllLines(s.url)).toEqual(kept.slice(0, 2));
    const term = await readFile(join(dir, `termination-${s.port}.log`), 'utf8');
    expect(term.endsWith('\n')).toBe(true);
    expect(term.trimEnd().includes('\n')).toBe(false);
    expect(JSON.parse(term)).toMatchObject({ state: 'corrupt', bootId: st.bootId, recovery: { corruption: st.recovery.corruption } });
    expect(s.stderr()).toContain('CORRUPTION DETECTED');
    // Repair needs the exact id.
    const wrong = await fetch(`${s.url}/admin/repair`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ corruptionId: 'ffffffffffffffff' }) });
    expect(wrong.status).toBe(409);
    expect(((await wrong.json()) as { error: string }).error).toBe('repair_conflict');
    const ok = await fetch(`${s.url}/admin/repair`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ corruptionId: st.recovery.corruption.id }) });
    expect(ok.status).toBe(200);
    const repaired = (await ok.json()) as { repair: { movedTo: string } };
    expect(repaired).toMatchObject({ state: 'ready', recovery: { outcome: 'Clean', recordsRecovered: 2 }, repair: { corruptionId: st.recovery.corruption.id } });
    expect((await readdir(repaired.repair.movedTo)).length).toBe(1);
    const added = await postJson(s.url, { after: 'repair' });
    expect(added.status).toBe(201);
    expect(((await added.json()) as { sequence: number }).sequence).toBe(3);
    expect((await s.kill('SIGTERM')).code).toBe(0);
  });

  it('an unwritable termination-message path is logged, not fatal', async () => {
    const dir = await tempDir();
    const data = join(dir, 'data');
    await corruptLog(data);
    const s = await startServer(data, ['--termination-message-path', join(dir, 'no', 'such', 'dir', 'term')]);
    await waitState(s.url, ['corrupt']);
    expect(s.stderr()).toContain('could not write the termination message');
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
    expect((await s.kill('SIGTERM')).code).toBe(0);
  });
});

describe('offline sub-commands', () => {
  it('verify prints the report (exit 0 clean/torn, 1 corrupt); repair fixes offline with the right id only', async () => {
    const dir = await tempDir();
    const data = join(dir, 'data');
    const { badOffset } = await corruptLog(data);
    const v = await runCli(['verify', '--data-dir', data]);
    expect(v.code).toBe(1);
    const report = JSON.parse(v.stdout);
    expect(report).toMatchObject({ outcome: 'CorruptionDetected', corruption: { offset: badOffset }, dryRun: true });
    const bad = await runCli(['repair', '--data-dir', data, '--corruption-id', 'nope']);
    expect(bad.code).toBe(1);
    expect(errorLine(bad.stderr)).toMatch(/^eventlog-server: repair: corruption id "nope" does not match/);
    const good = await runCli(['repair', '--data-dir', data, '--corruption-id', report.corruption.id]);
    expect(good.code).toBe(0);
    expect(JSON.parse(good.stdout)).toMatchObject({ recovery: { outcome: 'Clean', recordsRecovered: 2 }, repair: { corruptionId: report.corruption.id } });
    const v2 = await runCli(['verify', '--data-dir', data]);
    expect(v2.code).toBe(0);
    expect(JSON.parse(v2.stdout)).toMatchObject({ outcome: 'Clean', recordsRecovered: 2 });
    const missing = await runCli(['repair', '--data-dir', data]);
    expect(missing.code).toBe(2);
    expect(oneLine(missing.stderr)).toBe('eventlog-server: --corruption-id: required');
  });

  it('import keeps legacy ids; the server then serves them', async () => {
    const dir = await tempDir();
    const data = join(dir, 'data');
    const legacy = join(dir, 'events.log');
    await mkdir(data);
    const lines = Array.from({ length: 50 }, (_, i) => JSON.stringify({ id: `old-${i}`, createdAt: new Date(Date.UTC(2024, 0, 1, 0, 0, i)).toISOString(), msg: 'Chidé 🎉' }));
    await writeFile(legacy, lines.join('\n') + '\n');
    await appendFile(legacy, '{"id":"old-50","crea');
    const r = await runCli(['import', '--data-dir', data, '--from', legacy]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ imported: 50, tornLastLine: true, firstSequence: 1, lastSequence: 50 });
    const s = await startServer(data);
    await waitState(s.url, ['ready']);
    const ev = await (await fetch(`${s.url}/events/old-7`)).json();
    expect(ev).toEqual({ sequence: 8, id: 'old-7', createdAt: '2024-01-01T00:00:07.000Z', msg: 'Chidé 🎉' });
    expect(((await (await postJson(s.url, { next: true })).json()) as { sequence: number }).sequence).toBe(51);
    expect((await s.kill('SIGTERM')).code).toBe(0);
    const bad = await runCli(['import', '--data-dir', data, '--from', join(dir, 'missing.log')]);
    expect(bad.code).toBe(1);
    expect(oneLine(bad.stderr)).toMatch(/^eventlog-server: .*missing\.log/);
  });
});
