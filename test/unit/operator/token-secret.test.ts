import { describe, expect, it } from 'vitest';
import { tokenFromSecret } from '../../../src/decisions/token.ts';
import { KubeApiError } from '../../../src/runtime/kube-http.ts';
import { ensureTokenSecret, type SecretObject } from '../../../src/operator/token-secret.ts';
import { makeEvl } from '../decisions/fixtures.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');

/** Records every API call; answers from `handlers`. */
function fakes(handlers: { post?: () => unknown; get?: () => unknown } = {}) {
  const calls: string[] = [];
  const applied: Array<{ obj: any; force: boolean | undefined }> = [];
  const http = {
    async json<T>(method: string, path: string, o: { query?: Record<string, unknown>; body?: any } = {}): Promise<T> {
      calls.push(`${method} ${path}${o.query ? `?${new URLSearchParams(o.query as Record<string, string>)}` : ''}`);
      if (method === 'POST') return (handlers.post ?? (() => ({ ...o.body, metadata: { ...o.body.metadata, uid: 's-1' } })))() as T;
      if (method === 'GET' && handlers.get) return handlers.get() as T;
      throw new Error(`unexpected ${method} ${path}`);
    },
  };
  const applier = {
    async apply(obj: any, _manager: string, opts: { force?: boolean } = {}) {
      applied.push({ obj, force: opts.force });
      return obj;
    },
  };
  let n = 0;
  return { calls, applied, deps: { http: http as never, applier: applier as never, newToken: () => `new-token-${++n}` } };
}

const existing = (token: string | undefined): SecretObject => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name: 'orders-token', namespace: 'shop' },
  ...(token !== undefined ? { data: { token: b64(token) } } : {}),
});

describe('ensureTokenSecret', () => {
  it('a valid token in the cached Secret is used as is: no API call', async () => {
    const f = fakes();
    const r = await ensureTokenSecret(f.deps, makeEvl(), existing('kept'));
    expect(r).toMatchObject({ token: 'kept', created: false, regenerated: false });
    expect(f.calls).toEqual([]);
    expect(f.applied).toEqual([]);
  });

  it('no Secret: created with POST (create-only) and a new token', async () => {
    const f = fakes();
    const r = await ensureTokenSecret(f.deps, makeEvl(), undefined);
    expect(r).toMatchObject({ token: 'new-token-1', created: true, regenerated: false });
    expect(f.calls).toEqual(['POST /api/v1/namespaces/shop/secrets?fieldManager=eventlog-operator']);
    expect(tokenFromSecret(r.secret)).toBe('new-token-1');
    expect(f.applied).toEqual([]);
  });

  it('the cache was behind (409 on create): the existing token is read and kept, never overwritten', async () => {
    const f = fakes({
      post: () => {
        throw new KubeApiError('POST secrets', 409, { reason: 'AlreadyExists' } as never);
      },
      get: () => existing('already-there'),
    });
    const r = await ensureTokenSecret(f.deps, makeEvl(), undefined);
    expect(r).toMatchObject({ token: 'already-there', created: false, regenerated: false });
    expect(f.calls).toEqual(['POST /api/v1/namespaces/shop/secrets?fieldManager=eventlog-operator', 'GET /api/v1/namespaces/shop/secrets/orders-token']);
    expect(f.applied).toEqual([]);
  });

  it('a Secret without a valid token gets a new one by a forced apply', async () => {
    for (const bad of [existing(undefined), existing(''), existing('has space')]) {
      const f = fakes();
      const r = await ensureTokenSecret(f.deps, makeEvl(), bad);
      expect(r).toMatchObject({ token: 'new-token-1', created: false, regenerated: true });
      expect(f.applied).toHaveLength(1);
      expect(f.applied[0]!.force).toBe(true);
      expect(tokenFromSecret(f.applied[0]!.obj)).toBe('new-token-1');
    }
  });

  it('other create errors fail the step with the Secret named', async () => {
    const f = fakes({
      post: () => {
        throw new KubeApiError('POST secrets', 403, { reason: 'Forbidden' } as never);
      },
    });
    await expect(ensureTokenSecret(f.deps, makeEvl(), undefined)).rejects.toThrow(/creating Secret shop\/orders-token: .*403/);
  });
});
