import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeApiError, KubeHttp, statusCodeOf } from '../../../src/runtime/kube-http.ts';
import { KubeLeaseLock } from '../../../src/runtime/lease-lock.ts';
import { httpListWatch, type WatchEvent } from '../../../src/runtime/list-watch.ts';

// A scripted HTTP server on loopback standing in for the API server's wire format.
type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;
let handler: Handler = (_req, res) => res.end();
let server: Server;
let kc: KubeConfig;
const seen: Array<{ method: string; url: string; auth: string | undefined; body: string }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      seen.push({ method: req.method ?? '', url: req.url ?? '', auth: req.headers.authorization, body });
      handler(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'secret-token' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const json = (res: ServerResponse, code: number, body: unknown) => {
  res.writeHead(code, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
};

describe('KubeHttp', () => {
  it('sends the kubeconfig credentials and query, and parses JSON', async () => {
    handler = (_req, res) => json(res, 200, { ok: true });
    const http = new KubeHttp(kc);
    const body = await http.json<{ ok: boolean }>('GET', '/api/v1/pods', { query: { limit: 5, continue: undefined, labelSelector: 'a=b' } });
    expect(body).toEqual({ ok: true });
    const last = seen.at(-1)!;
    expect(last.auth).toBe('Bearer secret-token');
    expect(last.url).toBe('/api/v1/pods?limit=5&labelSelector=a%3Db');
  });

  it('turns a Status error body into a KubeApiError with the code, reason and message', async () => {
    handler = (_req, res) => json(res, 409, { kind: 'Status', code: 409, reason: 'Conflict', message: 'the object has been modified' });
    const err = await new KubeHttp(kc).json('PUT', '/x', { body: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect(statusCodeOf(err)).toBe(409);
    expect((err as KubeApiError).reason).toBe('Conflict');
    expect((err as Error).message).toContain('the object has been modified');
  });

  it('streams lines split across chunks, in order, then resolves when the server ends', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('{"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"1"}}}\n{"type":"BOOK');
      setTimeout(() => {
        res.write('MARK","object":{"metadata":{"resourceVersion":"7"}}}\n');
        res.end();
      }, 20);
    };
    const lines: string[] = [];
    let opened = false;
    await new KubeHttp(kc).stream('/w', { signal: new AbortController().signal, onOpen: () => (opened = true), onLine: (l) => lines.push(l) });
    expect(opened).toBe(true);
    expect(lines.map((l) => (JSON.parse(l) as { type: string }).type)).toEqual(['ADDED', 'BOOKMARK']);
  });

  it('rejects a stream with a KubeApiError for a non-200 answer (HTTP 410)', async () => {
    handler = (_req, res) => json(res, 410, { kind: 'Status', code: 410, reason: 'Gone', message: 'too old' });
    const err = await new KubeHttp(kc).stream('/w', { signal: new AbortController().signal, onLine: () => {} }).catch((e: unknown) => e);
    expect(statusCodeOf(err)).toBe(410);
  });

  it('rejects a stream whose connection is destroyed, and resolves one that is aborted', async () => {
    handler = (_req, res) => {
      res.writeHead(200);
      res.write('\n');
    };
    const http = new KubeHttp(kc);
    let opened = false;
    const p = http.stream('/w', { signal: new AbortController().signal, onOpen: () => (opened = true), onLine: () => {} });
    while (!opened) await new Promise((r) => setTimeout(r, 5));
    expect(http.destroyActiveStreams()).toBe(1);
    await expect(p).rejects.toThrow(/closed mid-stream|socket hang up|aborted|ECONNRESET/);

    const ctl = new AbortController();
    opened = false;
    const q = http.stream('/w', { signal: ctl.signal, onOpen: () => (opened = true), onLine: () => {} });
    while (!opened) await new Promise((r) => setTimeout(r, 5));
    ctl.abort();
    await expect(q).resolves.toBeUndefined();
    expect(http.destroyActiveStreams()).toBe(0);
  });

  it('onRequest sees every request once, with its status code (JSON, errors, streams, refused connections)', async () => {
    const records: unknown[] = [];
    const http = new KubeHttp(kc, { onRequest: (r) => records.push(r) });
    handler = (req, res) => (req.url?.startsWith('/ok') ? json(res, 201, { ok: true }) : req.url?.includes('watch=true') ? res.end('{"type":"ADDED"}\n') : json(res, 403, { kind: 'Status', code: 403, reason: 'Forbidden' }));
    await http.json('PATCH', '/ok/a', { body: { a: 1 }, contentType: 'application/apply-patch+yaml', query: { fieldManager: 'm' } });
    await http.json('DELETE', '/denied/b').catch(() => undefined);
    await http.stream('/api/v1/pods', { query: { watch: true }, signal: new AbortController().signal, onLine: () => undefined });
    // A port nobody listens on: the request fails without an answer.
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const deadKc = new KubeConfig();
    deadKc.loadFromOptions({ clusters: [{ name: 'c', server: `http://127.0.0.1:${deadPort}`, skipTLSVerify: true }], users: [{ name: 'u', token: 't' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
    await new KubeHttp(deadKc, { onRequest: (r) => records.push(r) }).json('GET', '/down').catch(() => undefined);
    expect(records).toEqual([
      { method: 'PATCH', path: '/ok/a', query: { fieldManager: 'm' }, contentType: 'application/apply-patch+yaml', statusCode: 201 },
      { method: 'DELETE', path: '/denied/b', query: {}, statusCode: 403 },
      { method: 'GET', path: '/api/v1/pods', query: { watch: true }, statusCode: 200 },
      { method: 'GET', path: '/down', query: {} },
    ]);
  });

  it('httpListWatch builds list and watch requests and passes events through', async () => {
    handler = (req, res) => {
      if (req.url?.includes('watch=true')) {
        res.writeHead(200);
        res.end('{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}}\nnot json\n');
      } else {
        json(res, 200, { items: [{ metadata: { name: 'a' } }], metadata: { resourceVersion: '42', continue: 'tok' } });
      }
    };
    const src = httpListWatch(new KubeHttp(kc), { group: 'eventlog.dev', version: 'v1alpha1', plural: 'eventlogs', namespace: 'n', labelSelector: 'x=y' });
    const page = await src.list({ limit: 10 }, new AbortController().signal);
    expect(page).toEqual({ items: [{ metadata: { name: 'a' } }], resourceVersion: '42', continue: 'tok' });
    expect(seen.at(-1)!.url).toBe('/apis/eventlog.dev/v1alpha1/namespaces/n/eventlogs?labelSelector=x%3Dy&limit=10');
    const events: WatchEvent<unknown>[] = [];
    await src.watch({ resourceVersion: '42', timeoutSeconds: 300, allowWatchBookmarks: true }, new AbortController().signal, {
      onOpen: () => {},
      onEvent: (e) => events.push(e),
    });
    const url = new URL(seen.at(-1)!.url, 'http://x');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      labelSelector: 'x=y',
      watch: 'true',
      resourceVersion: '42',
      allowWatchBookmarks: 'true',
      timeoutSeconds: '300',
    });
    expect(events.map((e) => [e.type, (e.object as { code?: number }).code])).toEqual([
      ['ERROR', 410],
      ['ERROR', 500], // an unparsable line surfaces as an error, never silently skipped
    ]);
  });
});

describe('KubeLeaseLock', () => {
  it('updates with the read resourceVersion, keeps metadata it does not own, and writes MicroTime strings', async () => {
    const stored = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'l', namespace: 'n', resourceVersion: '5', labels: { team: 'x' } },
      spec: { holderIdentity: 'a', leaseDurationSeconds: 15, leaseTransitions: 2, renewTime: '2026-01-01T00:00:00.000000Z' },
    };
    handler = (req, res, body) => {
      if (req.method === 'GET') return json(res, 200, stored);
      const obj = JSON.parse(body) as typeof stored;
      return json(res, 200, { ...obj, metadata: { ...obj.metadata, resourceVersion: '6' } });
    };
    const lock = new KubeLeaseLock(new KubeHttp(kc), 'n', 'l');
    const snap = await lock.get(new AbortController().signal);
    expect(snap).toEqual({ record: { holderIdentity: 'a', leaseDurationSeconds: 15, leaseTransitions: 2, renewTime: '2026-01-01T00:00:00.000000Z' }, resourceVersion: '5' });
    const next = await lock.update(snap!, { ...snap!.record, holderIdentity: 'b', renewTime: '2026-01-01T00:00:05.000000Z', leaseTransitions: 3 }, new AbortController().signal);
    expect(next.resourceVersion).toBe('6');
    const put = seen.at(-1)!;
    expect(put.method).toBe('PUT');
    expect(put.url).toBe('/apis/coordination.k8s.io/v1/namespaces/n/leases/l');
    const sent = JSON.parse(put.body) as typeof stored;
    expect(sent.metadata).toEqual({ name: 'l', namespace: 'n', resourceVersion: '5', labels: { team: 'x' } });
    expect(sent.spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 3, renewTime: '2026-01-01T00:00:05.000000Z' });

    handler = (_req, res) => json(res, 404, { kind: 'Status', code: 404, reason: 'NotFound' });
    await expect(lock.get(new AbortController().signal)).resolves.toBeUndefined();
  });
});
