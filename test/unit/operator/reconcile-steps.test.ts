/**
 * Reconcile steps (src/operator/reconcile/) against fake HTTP and fake pollers: what
 * each step sends to the API server and what it hands to the next. The whole loop runs
 * against the real control plane in test/integration/operator*.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { FINALIZER } from '../../../src/api/eventlog.ts';
import { silentLogger } from '../../../src/common/logger.ts';
import type { ServerObservation } from '../../../src/decisions/server-status.ts';
import { KubeApiError } from '../../../src/runtime/kube-http.ts';
import { Resources } from '../../../src/runtime/resources.ts';
import type { ReconcileContext, LiveObjects } from '../../../src/operator/reconcile/context.ts';
import { finalize } from '../../../src/operator/reconcile/deletion.ts';
import { observeServer } from '../../../src/operator/reconcile/observe.ts';
import { maybeRepair } from '../../../src/operator/reconcile/repair.ts';
import { makeEvl, serverStatus } from '../decisions/fixtures.ts';

type Call = { method: string; path: string; body?: unknown; contentType?: string };

function fakeHttp(answer: (c: Call) => unknown = () => ({})) {
  const calls: Call[] = [];
  return {
    calls,
    http: {
      async json<T>(method: string, path: string, o: { body?: unknown; contentType?: string } = {}): Promise<T> {
        const c: Call = { method, path, ...(o.body !== undefined ? { body: o.body } : {}), ...(o.contentType ? { contentType: o.contentType } : {}) };
        calls.push(c);
        return answer(c) as T;
      },
    },
  };
}

function context(http: ReturnType<typeof fakeHttp>['http'], spec: Parameters<typeof makeEvl>[0] = {}, annotations: Record<string, string> = {}) {
  const evl = makeEvl(spec, { finalizers: [FINALIZER], annotations });
  const recorded: unknown[] = [];
  const ctx: ReconcileContext = {
    key: 'shop/orders',
    namespace: 'shop',
    name: 'orders',
    evl,
    raw: { apiVersion: 'eventlog.dev/v1alpha1', kind: 'EventLog', metadata: { name: 'orders', namespace: 'shop', uid: 'uid-1', finalizers: [FINALIZER], resourceVersion: '7' } },
    old: evl.status,
    ref: { apiVersion: 'eventlog.dev/v1alpha1', kind: 'EventLog', namespace: 'shop', name: 'orders', uid: 'uid-1' },
    log: silentLogger,
    deps: { http: http as never, applier: { apply: async (o) => o }, recorder: { record: async (_r, e) => void recorded.push(e) }, config: { defaultImage: 'eventlog:dev', pollInterval: 10_000, statusCounterInterval: 30_000 } },
    resources: new Resources(http),
    desiredOptions: { defaultImage: 'eventlog:dev' },
    port: 8080,
    now: () => new Date('2026-11-22T05:00:00Z'),
    memory: { podsDeletedByOperator: new Set() },
    mayRollPod: false,
  };
  return { ctx, recorded };
}

const DELETE = { storage: { size: '1Gi', retentionPolicy: 'Delete' as const } };
const target = { collection: '/apis/eventlog.dev/v1alpha1/namespaces/shop/eventlogs', name: 'orders', finalizers: [FINALIZER], resourceVersion: '7' };
const noLive = (over: Partial<LiveObjects> = {}): LiveObjects => ({ pvc: undefined, pod: undefined, service: undefined, secret: undefined, networkPolicy: undefined, token: undefined, ...over });

describe('finalize', () => {
  it('retentionPolicy Delete: only the finalizer is removed (a guarded JSON patch)', async () => {
    const f = fakeHttp();
    const { ctx } = context(f.http, DELETE);
    expect(await finalize(ctx, target)).toEqual({ type: 'done' });
    expect(f.calls).toEqual([
      {
        method: 'PATCH',
        path: '/apis/eventlog.dev/v1alpha1/namespaces/shop/eventlogs/orders',
        contentType: 'application/json-patch+json',
        body: [
          { op: 'test', path: '/metadata/finalizers/0', value: FINALIZER },
          { op: 'remove', path: '/metadata/finalizers/0' },
        ],
      },
    ]);
  });

  it('retentionPolicy Retain: the PVC (read from the API server) loses its owner reference first, and an Event says so', async () => {
    const f = fakeHttp((c) => (c.method === 'GET' ? { metadata: { name: 'orders-data', ownerReferences: [{ uid: 'other' }, { uid: 'uid-1' }] } } : {}));
    const { ctx, recorded } = context(f.http, { storage: { size: '1Gi', retentionPolicy: 'Retain' } });
    await finalize(ctx, target);
    expect(f.calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      'GET /api/v1/namespaces/shop/persistentvolumeclaims/orders-data',
      'PATCH /api/v1/namespaces/shop/persistentvolumeclaims/orders-data',
      'PATCH /apis/eventlog.dev/v1alpha1/namespaces/shop/eventlogs/orders',
    ]);
    expect(f.calls[1]?.body).toEqual([
      { op: 'test', path: '/metadata/ownerReferences/1/uid', value: 'uid-1' },
      { op: 'remove', path: '/metadata/ownerReferences/1' },
    ]);
    expect(recorded).toMatchObject([{ reason: 'StorageRetained', type: 'Normal' }]);
  });

  it('an EventLog already gone (404 on the finalizer patch) ends quietly; other errors name the step', async () => {
    const gone = fakeHttp(() => {
      throw new KubeApiError('PATCH', 404, { reason: 'NotFound' } as never);
    });
    expect(await finalize(context(gone.http, DELETE).ctx, target)).toEqual({ type: 'done' });
    const broken = fakeHttp(() => {
      throw new KubeApiError('PATCH', 500, { reason: 'InternalError' } as never);
    });
    await expect(finalize(context(broken.http, DELETE).ctx, target)).rejects.toThrow(/EventLog shop\/orders: removing the finalizer/);
  });
});

describe('observeServer', () => {
  const pod = { metadata: { name: 'orders-0' }, status: { podIP: '127.1.0.9' } } as LiveObjects['pod'];
  it('polls the pod IP with the token; counts timeouts in a row and forgets them on an answer; samples usage', async () => {
    const answers: ServerObservation[] = [
      { ok: false, error: 'Timeout', message: 'slow' },
      { ok: false, error: 'Timeout', message: 'slow' },
      { ok: true, status: serverStatus({ storage: { filesystemBytes: 100, freeBytes: 60, usedBytes: 40, reserveBytes: 2 } }) },
    ];
    const asked: unknown[] = [];
    const poll = async (ip: string, port: number, opts: unknown) => {
      asked.push([ip, port, opts]);
      return answers.shift()!;
    };
    const { ctx } = context(fakeHttp().http);
    await observeServer(ctx, noLive({ pod, token: 't' }), poll, 500);
    await observeServer(ctx, noLive({ pod, token: 't' }), poll, 500);
    expect(ctx.memory.pollTimeoutsInARow).toBe(2);
    await observeServer(ctx, noLive({ pod, token: 't' }), poll, 500);
    expect(ctx.memory.pollTimeoutsInARow).toBeUndefined();
    expect(ctx.memory.usageSamples).toEqual([{ atMs: ctx.now().getTime(), usedBytes: 40 }]);
    expect(asked[0]).toEqual(['127.1.0.9', 8080, { token: 't', timeoutMs: 500 }]);
  });
  it('no pod, no IP or a terminating pod: nothing to ask', async () => {
    const poll = async (): Promise<ServerObservation> => {
      throw new Error('must not poll');
    };
    const { ctx } = context(fakeHttp().http);
    expect(await observeServer(ctx, noLive(), poll, undefined)).toBeUndefined();
    expect(await observeServer(ctx, noLive({ pod: { metadata: {}, status: {} } as never }), poll, undefined)).toBeUndefined();
    expect(await observeServer(ctx, noLive({ pod: { ...pod, metadata: { deletionTimestamp: 'x' } } as never }), poll, undefined)).toBeUndefined();
  });
});

describe('maybeRepair', () => {
  const pod = { metadata: { name: 'orders-0' }, status: { podIP: '127.1.0.9' } } as LiveObjects['pod'];
  const corrupt: ServerObservation = {
    ok: true,
    status: serverStatus({ state: 'corrupt', recovery: { outcome: 'CorruptionDetected', startedAt: '2026-11-22T05:00:00Z', durationMs: 1, recordsRecovered: 1, bytesTruncated: 0, corruption: { id: 'c-9', segment: 's', offset: 1, reason: 'r' } } }),
  };
  it('calls the server once for the approved id and returns its answer as the new observation', async () => {
    const { ctx } = context(fakeHttp().http, {}, { 'eventlog.dev/approve-repair': 'c-9' });
    const after: ServerObservation = { ok: true, status: serverStatus({ repair: { corruptionId: 'c-9', bytesMoved: 5 } }) };
    const asked: string[] = [];
    const r = await maybeRepair(ctx, noLive({ pod, token: 't' }), corrupt, async (_ip, _port, id) => {
      asked.push(id);
      return after;
    });
    expect(asked).toEqual(['c-9']);
    expect(r.server).toBe(after);
    expect(r.repair).toMatchObject({ corruptionId: 'c-9', result: 'Succeeded', bytesDiscarded: 5 });
  });
  it('without the annotation nothing is asked', async () => {
    const { ctx } = context(fakeHttp().http);
    const r = await maybeRepair(ctx, noLive({ pod }), corrupt, async () => {
      throw new Error('must not repair');
    });
    expect(r).toEqual({ server: corrupt });
  });
});
