import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { PollError } from '../../../src/decisions/server-status.ts';
import { observationFromResponse, pollServerStatus, requestRepair, statusUrl } from '../../../src/operator/poller.ts';

const STATUS = {
  state: 'ready',
  version: '0.1.0',
  durability: 'fsync',
  startedAt: '2026-01-01T00:00:00.000Z',
  bootId: 'boot-1',
  recovery: { outcome: 'Clean', startedAt: '2026-01-01T00:00:00.000Z', durationMs: 3, recordsRecovered: 2, bytesTruncated: 0 },
  stats: { total: 2, bytes: 40, lastSequence: 2, segments: 1, diskBytes: 120 },
};

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

async function serve(handler: Parameters<typeof createServer>[1]): Promise<number> {
  server = createServer(handler);
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

describe('observationFromResponse', () => {
  it('parses a valid document', () => {
    const o = observationFromResponse(200, JSON.stringify(STATUS));
    expect(o.ok).toBe(true);
    if (o.ok) expect(o.status.bootId).toBe('boot-1');
  });
  it('maps 401, other errors and bad bodies to their PollError', () => {
    expect(observationFromResponse(401, '{"error":"unauthorized"}')).toMatchObject({ ok: false, error: PollError.Unauthorized });
    expect(observationFromResponse(503, 'nope')).toMatchObject({ ok: false, error: PollError.HttpError, message: expect.stringContaining('HTTP 503') });
    expect(observationFromResponse(200, 'not json')).toMatchObject({ ok: false, error: PollError.InvalidResponse });
    expect(observationFromResponse(200, JSON.stringify({ ...STATUS, state: 'weird' }))).toMatchObject({ ok: false, error: PollError.InvalidResponse });
  });
  it('builds the URL, bracketing IPv6', () => {
    expect(statusUrl('127.1.0.7', 8080)).toBe('http://127.1.0.7:8080/status');
    expect(statusUrl('fd00::1', 8080)).toBe('http://[fd00::1]:8080/status');
  });
});

describe('pollServerStatus (loopback server)', () => {
  it('GETs /status with the bearer token and returns the parsed document', async () => {
    let auth: string | undefined;
    let path: string | undefined;
    const port = await serve((req, res) => {
      auth = req.headers.authorization;
      path = req.url;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(STATUS));
    });
    const o = await pollServerStatus('127.0.0.1', port, { token: 's3cret' });
    expect(o).toMatchObject({ ok: true, status: { state: 'ready', stats: { total: 2 } } });
    expect(auth).toBe('Bearer s3cret');
    expect(path).toBe('/status');
  });

  it('sends no Authorization header without a token', async () => {
    let auth: string | undefined = 'unset';
    const port = await serve((req, res) => {
      auth = req.headers.authorization;
      res.end(JSON.stringify(STATUS));
    });
    await pollServerStatus('127.0.0.1', port);
    expect(auth).toBeUndefined();
  });

  it('times out on a server that never answers', async () => {
    const port = await serve(() => {
      /* never respond */
    });
    const o = await pollServerStatus('127.0.0.1', port, { timeoutMs: 200 });
    expect(o).toMatchObject({ ok: false, error: PollError.Timeout });
    server?.closeAllConnections();
  });

  it('reports a refused connection as Unreachable', async () => {
    const port = await serve(() => undefined);
    await new Promise<void>((r) => server!.close(() => r()));
    server = undefined;
    const o = await pollServerStatus('127.0.0.1', port, { timeoutMs: 1_000 });
    expect(o).toMatchObject({ ok: false, error: PollError.Unreachable });
  });
});

describe('requestRepair (loopback server)', () => {
  it('POSTs the corruption id to /admin/repair and returns the status after the repair', async () => {
    let seen: { method?: string; url?: string; body?: string } = {};
    const port = await serve((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen = { method: req.method, url: req.url, body };
        res.end(JSON.stringify({ ...STATUS, repair: { corruptionId: 'c1', movedTo: '/data/repair/c1-1', bytesMoved: 512 } }));
      });
    });
    const o = await requestRepair('127.0.0.1', port, 'c1');
    expect(seen).toEqual({ method: 'POST', url: '/admin/repair', body: '{"corruptionId":"c1"}' });
    expect(o).toMatchObject({ ok: true, status: { repair: { bytesMoved: 512 } } });
  });

  it('a refusal (409) is an HttpError with the server message', async () => {
    const port = await serve((_req, res) => {
      res.statusCode = 409;
      res.end('{"error":"repair_conflict","message":"corruption id mismatch"}');
    });
    expect(await requestRepair('127.0.0.1', port, 'c2')).toMatchObject({ ok: false, error: PollError.HttpError, message: expect.stringContaining('corruption id mismatch') });
  });
});
