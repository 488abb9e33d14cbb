/**
 * SIGTERM while the caches have not synced yet (API server unreachable, watches
 * retrying) is a graceful stop: `main` returns 0, as it does after sync. In the
 * image this is what `docker stop` / a rolling update sees (test/container/stop.test.ts).
 */
import { EventEmitter } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/common/logger.ts';
import { main } from '../../../src/operator/main.ts';
import { UNREACHABLE_KUBECONFIG } from '../../support/unreachable-kubeconfig.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});


describe('eventlog operator main: SIGTERM before the caches synced', () => {
  it('returns 0 (a clean stop), not a "stopped before the first sync" failure', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'eventlog-main-stop-'));
    dirs.push(dir);
    await writeFile(join(dir, 'kubeconfig'), UNREACHABLE_KUBECONFIG);
    const signals = new EventEmitter();
    const err: string[] = [];
    let started!: () => void;
    const isStarted = new Promise<void>((r) => (started = r));
    const exit = main(['--kubeconfig', join(dir, 'kubeconfig'), '--leader-elect', 'false', '--metrics-addr', '127.0.0.1:0', '--probe-addr', '127.0.0.1:0'], {
      stdout: { write: () => true },
      stderr: { write: (s: string) => err.push(s) },
      env: {},
      signals,
      log: silentLogger,
      onStarted: () => started(),
    });
    await isStarted;
    // Let the watches start and fail at least once.
    await new Promise((r) => setTimeout(r, 300));
    signals.emit('SIGTERM');
    expect(await exit, err.join('')).toBe(0);
    expect(err).toEqual([]);
  });
});
