/**
 * `docker stop` sends SIGTERM to PID 1 and SIGKILLs after the grace period. The
 * image has no init (no tini): Node is PID 1, and a PID 1 without a SIGTERM
 * handler would ignore the signal and be killed (exit 137). Both programs handle
 * it and exit 0 by themselves. (The server's stop is checked at the end of
 * server-crash.test.ts; this file covers the operator, the default entrypoint.)
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { containerLogs, dataDir, dockerStop, start } from './helpers.ts';
import { UNREACHABLE_KUBECONFIG } from '../support/unreachable-kubeconfig.ts';


describe('docker stop', () => {
  it('stops the operator (the default entrypoint, Node as PID 1) with exit code 0, not the SIGKILL after the grace period', async () => {
    const dir = await dataDir();
    const kubeconfig = join(dir, 'kubeconfig');
    await writeFile(kubeconfig, UNREACHABLE_KUBECONFIG, { mode: 0o644 });
    const c = await start({
      network: 'none',
      command: ['--kubeconfig', '/config/kubeconfig', '--leader-elect', 'false', '--metrics-addr', '127.0.0.1:0', '--probe-addr', '127.0.0.1:0'],
      binds: [{ source: dir, target: '/config', mode: 'ro' }],
      // The watches have started (and fail: nothing listens); the process is busy retrying.
      waitForLog: /list\/watch failed, retrying/,
    });
    const code = await dockerStop(c.getId(), 30);
    const { stderr } = await containerLogs(c.getId());
    expect(stderr).toContain('"signal":"SIGTERM"');
    expect(code, stderr.split('\n').slice(-5).join('\n')).toBe(0);
    expect(stderr).toContain('"msg":"operator stopped"');
  });
});
