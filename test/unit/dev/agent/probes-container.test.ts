import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodeFor, terminationMessage } from '../../../../dev/agent/container.ts';
import { ProbeTracker, probeOnce } from '../../../../dev/agent/probes.ts';

describe('ProbeTracker', () => {
  it('readiness starts failed and needs successThreshold successes', () => {
    const t = new ProbeTracker('readiness', { successThreshold: 2, failureThreshold: 2 });
    expect(t.result).toBe(false);
    expect(t.record(true)).toBe(false);
    expect(t.record(true)).toBe(true);
    expect(t.record(false)).toBe(true);
    expect(t.record(false)).toBe(false);
    expect(t.failures).toBe(2);
  });

  it('liveness starts passed and fails after failureThreshold in a row', () => {
    const t = new ProbeTracker('liveness', {});
    expect(t.result).toBe(true);
    t.record(false);
    t.record(false);
    t.record(true); // resets the run
    t.record(false);
    expect(t.record(false)).toBe(true);
    expect(t.record(false)).toBe(false);
  });
});

describe('probeOnce', () => {
  let server: Server;
  let port = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      res.statusCode = req.url === '/ok' ? 200 : req.url === '/redirect' ? 302 : 503;
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('treats 2xx/3xx as success, other codes and refused connections as failure', async () => {
    const ports = [{ name: 'http', containerPort: port }];
    expect(await probeOnce({ httpGet: { path: '/ok', port: 'http' } }, '127.0.0.1', ports)).toEqual({ ok: true });
    expect((await probeOnce({ httpGet: { path: '/redirect', port } }, '127.0.0.1', ports)).ok).toBe(true);
    expect(await probeOnce({ httpGet: { path: '/down', port } }, '127.0.0.1', ports)).toEqual({ ok: false, message: 'HTTP probe failed with statuscode: 503' });
    expect((await probeOnce({ httpGet: { path: '/ok', port: 'nope' } }, '127.0.0.1', ports)).message).toContain('not found');
    expect((await probeOnce({ tcpSocket: { port } }, '127.0.0.1', ports)).ok).toBe(true);
  });
});

describe('container exit bookkeeping', () => {
  it('reports signals as 128 + signo', () => {
    expect(exitCodeFor(0, null)).toEqual({ exitCode: 0 });
    expect(exitCodeFor(2, null)).toEqual({ exitCode: 2 });
    expect(exitCodeFor(null, 'SIGKILL')).toEqual({ exitCode: 137, signal: 9 });
    expect(exitCodeFor(null, 'SIGTERM')).toEqual({ exitCode: 143, signal: 15 });
  });

  it('takes the termination message from the file, else (FallbackToLogsOnError, failed) the log tail', () => {
    expect(terminationMessage('{"state":"corrupt"}\n', 'log', 'File', 1)).toBe('{"state":"corrupt"}\n');
    expect(terminationMessage('', 'log line', 'File', 1)).toBeUndefined();
    expect(terminationMessage('', 'bad flag\n', 'FallbackToLogsOnError', 2)).toBe('bad flag\n');
    expect(terminationMessage('', 'fine', 'FallbackToLogsOnError', 0)).toBeUndefined();
    expect(terminationMessage('x'.repeat(10_000), '', 'File', 1)).toHaveLength(4096);
    const longLog = Array.from({ length: 200 }, (_, i) => `line ${i}`).join('\n');
    const tail = terminationMessage('', longLog, 'FallbackToLogsOnError', 1) ?? '';
    expect(tail.length).toBeLessThanOrEqual(2048);
    expect(tail.endsWith('line 199')).toBe(true);
  });
});
