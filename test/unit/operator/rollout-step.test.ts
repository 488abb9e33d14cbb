/**
 * The rollout step (src/operator/reconcile/rollout.ts) and the gate in the owned step:
 * slots counted from the cached statuses plus this process's fresh claims, two workers
 * never taking the last slot, a restarted operator seeing the rollout in flight, waking
 * the queue, and the pod left alone until the recorded status holds a slot.
 */
import { describe, expect, it } from 'vitest';
import { FINALIZER, type EventLogStatus, type RolloutStatus } from '../../../src/api/eventlog.ts';
import { silentLogger } from '../../../src/common/logger.ts';
import { desiredNetworkPolicy, desiredPod, desiredPvc, desiredService, desiredTokenSecret } from '../../../src/decisions/desired.ts';
import { SPEC_HASH_ANNOTATION } from '../../../src/decisions/labels.ts';
import { tokenFingerprint } from '../../../src/decisions/token.ts';
import { Resources } from '../../../src/runtime/resources.ts';
import type { LiveObjects, RawEventLog, ReconcileContext } from '../../../src/operator/reconcile/context.ts';
import { applyOwned } from '../../../src/operator/reconcile/owned.ts';
import { RolloutSlots, rolloutStep, SLOT_CLAIM_TTL_MS, type RolloutFleet } from '../../../src/operator/reconcile/rollout.ts';
import { asLive, makeEvl, serverStatus } from '../decisions/fixtures.ts';

const NOW = new Date('2026-11-22T05:00:00Z');
const TOKEN = 'a'.repeat(43);
type Call = { method: string; path: string; body?: unknown };

function fakeHttp() {
  const calls: Call[] = [];
  return { calls, http: { async json<T>(method: string, path: string, o: { body?: unknown } = {}): Promise<T> { calls.push({ method, path, ...(o.body !== undefined ? { body: o.body } : {}) }); return {} as T; } } };
}

function context(name: string, status: EventLogStatus | undefined, opts: { defaultImage?: string; mayRollPod?: boolean; now?: Date; log?: unknown[] } = {}) {
  const evl = makeEvl({}, { name, finalizers: [FINALIZER] });
  if (status) evl.status = status;
  const f = fakeHttp();
  const applied: Array<{ kind?: string; metadata?: { name?: string } }> = [];
  const lines: unknown[] = opts.log ?? [];
  const log = { ...silentLogger, child: () => log, info: (o: unknown, m?: string) => void lines.push(m ?? o), debug: () => undefined } as never;
  const ctx: ReconcileContext = {
    key: `shop/${name}`,
    namespace: 'shop',
    name,
    evl,
    raw: { apiVersion: 'eventlog.dev/v1alpha1', kind: 'EventLog', metadata: { name, namespace: 'shop', uid: 'uid-1', resourceVersion: '7' } },
    old: evl.status,
    ref: { apiVersion: 'eventlog.dev/v1alpha1', kind: 'EventLog', namespace: 'shop', name, uid: 'uid-1' },
    log,
    deps: { http: f.http as never, applier: { apply: async (o) => (applied.push(o as never), o) }, recorder: { record: async () => undefined }, config: { defaultImage: 'eventlog:v2', pollInterval: 10_000, statusCounterInterval: 30_000 } },
    resources: new Resources(f.http as never),
    desiredOptions: { defaultImage: opts.defaultImage ?? 'eventlog:v2' },
    port: 8080,
    now: () => opts.now ?? NOW,
    memory: { podsDeletedByOperator: new Set() },
    mayRollPod: opts.mayRollPod ?? false,
  };
  return { ctx, calls: f.calls, applied, lines };
}

/** The live pod an older operator (default image v1) made, Ready, server boot `boot`. */
function livePod(name: string, image = 'eventlog:v1', uid = `pod-${name}`): NonNullable<LiveObjects['pod']> {
  const evl = makeEvl({}, { name });
  const p = asLive(desiredPod(evl, { defaultImage: image, tokenHash: tokenFingerprint(TOKEN) }));
  p.metadata.uid = uid;
  p.status = { phase: 'Running', podIP: '127.1.0.7', conditions: [{ type: 'Ready', status: 'True' }], containerStatuses: [{ name: 'server', ready: true, restartCount: 0, state: { running: {} } }] };
  return p as never;
}
const desiredOf = (name: string, image = 'eventlog:v2') => ({ template: desiredPod(makeEvl({}, { name }), { defaultImage: image, tokenHash: tokenFingerprint(TOKEN) }).metadata.annotations[SPEC_HASH_ANNOTATION]!, tokenHash: tokenFingerprint(TOKEN) });
const live = (pod: LiveObjects['pod']): LiveObjects => ({ pvc: undefined, pod, service: undefined, secret: undefined, networkPolicy: undefined, token: TOKEN });
const cached = (name: string, rollout?: Partial<RolloutStatus>, deleting = false): RawEventLog => ({
  metadata: { name, namespace: 'shop', ...(deleting ? { deletionTimestamp: '2026-11-22T04:00:00Z' } : {}) },
  status: rollout ? { rollout: { desired: 'd', upToDate: false, since: '2026-11-22T04:00:00Z', ...rollout } } : {},
});
function fleet(eventLogs: RawEventLog[], slots = new RolloutSlots(), max = 1) {
  const woken: string[] = [];
  const f: RolloutFleet = { eventLogs: () => eventLogs, slots, max, enqueue: (k) => void woken.push(k) };
  return { f, woken, slots };
}
const server = (bootId: string) => ({ ok: true as const, status: serverStatus({ bootId }) });

describe('rolloutStep', () => {
  it('two workers in one process: the first takes the only slot, the second is queued behind it before any status is written', () => {
    const { f } = fleet([cached('a'), cached('b')]);
    const a = context('a', undefined);
    const b = context('b', undefined);
    expect(rolloutStep(a.ctx, f, live(livePod('a')), desiredOf('a'), server('ba')).transition).toBe('started');
    const qb = rolloutStep(b.ctx, f, live(livePod('b')), desiredOf('b'), server('bb'));
    expect(qb).toMatchObject({ transition: 'queued', status: { state: 'Queued' }, waitingFor: { names: ['shop/a'], count: 1, max: 1 } });
    expect(a.lines.join('\n')).toMatch(/^rolling EventLog shop\/a to template [0-9a-f]{16} \(1 of at most 1 at once; 1 outdated\)$/m);
  });

  it('a restarted operator (no claims) counts the slot recorded in the cached status; a deleting EventLog holds none', () => {
    const { f } = fleet([cached('a', { state: 'RollingOut' }), cached('b')]);
    expect(rolloutStep(context('b', undefined).ctx, f, live(livePod('b')), desiredOf('b'), server('bb'))).toMatchObject({ status: { state: 'Queued' }, waitingFor: { names: ['shop/a'] } });
    const { f: g } = fleet([cached('a', { state: 'RollingOut' }, true), cached('b')]);
    expect(rolloutStep(context('b', undefined).ctx, g, live(livePod('b')), desiredOf('b'), server('bb')).transition).toBe('started');
  });

  it('a claim counts only until its TTL (the cache must show it by then)', () => {
    const slots = new RolloutSlots();
    slots.claim('shop/a', NOW.getTime() - SLOT_CLAIM_TTL_MS - 1);
    const { f } = fleet([cached('a'), cached('b')], slots);
    expect(rolloutStep(context('b', undefined).ctx, f, live(livePod('b')), desiredOf('b'), server('bb')).transition).toBe('started');
  });

  it('finishing frees the slot and wakes the first queued EventLogs by name (as many as slots are free)', () => {
    const slots = new RolloutSlots();
    slots.claim('shop/a', NOW.getTime());
    const { f, woken } = fleet([cached('a', { state: 'RollingOut' }), cached('c', { state: 'Queued' }), cached('b', { state: 'Queued' }), cached('d', { state: 'UpToDate', upToDate: true })], slots);
    const recorded: RolloutStatus = { state: 'RollingOut', desired: desiredOf('a').template, current: 'old', upToDate: false, since: '2026-11-22T04:59:30Z', replacing: { template: 'old', podUid: 'pod-a', bootId: 'ba', restarts: 0 } };
    const a = context('a', { rollout: recorded });
    const d = rolloutStep(a.ctx, f, live(livePod('a', 'eventlog:v2', 'pod-a2')), desiredOf('a'), server('ba2'));
    expect(d).toMatchObject({ transition: 'finished', status: { state: 'UpToDate', upToDate: true } });
    expect(woken).toEqual(['shop/b']);
    expect(slots.recent(NOW.getTime())).toEqual([]);
    expect(a.lines.join('\n')).toMatch(/^rolled EventLog shop\/a to template [0-9a-f]{16} in 30s \(2 outdated left\)$/m);
  });

  it('an up-to-date EventLog does not scan the other EventLogs (the steady poll stays O(1))', () => {
    let scans = 0;
    const f: RolloutFleet = { eventLogs: () => (scans++, [cached('b', { state: 'RollingOut' })]), slots: new RolloutSlots(), max: 1, enqueue: () => undefined };
    const d = rolloutStep(context('a', undefined).ctx, f, live(livePod('a', 'eventlog:v2')), desiredOf('a'), server('ba'));
    expect(d.status).toMatchObject({ state: 'UpToDate', upToDate: true });
    expect(scans).toBe(0);
    // An outdated one does: it needs the slot holders.
    expect(rolloutStep(context('a', undefined).ctx, f, live(livePod('a')), desiredOf('a'), server('ba')).status.state).toBe('Queued');
    expect(scans).toBe(1);
  });

  it('an EventLog pinned with spec.image has nothing to roll when only the default image changes', () => {
    const pinned = makeEvl({ image: 'eventlog:pinned' }, { name: 'p' });
    const pod = asLive(desiredPod(pinned, { defaultImage: 'eventlog:v1', tokenHash: tokenFingerprint(TOKEN) }));
    const want = desiredPod(pinned, { defaultImage: 'eventlog:v2', tokenHash: tokenFingerprint(TOKEN) }).metadata.annotations[SPEC_HASH_ANNOTATION]!;
    expect(pod.metadata.annotations[SPEC_HASH_ANNOTATION]).toBe(want);
    const { f } = fleet([]);
    const c = context('p', undefined);
    c.ctx.evl = { ...pinned, metadata: { ...pinned.metadata, finalizers: [FINALIZER] } };
    expect(rolloutStep(c.ctx, f, live(pod as never), { template: want, tokenHash: tokenFingerprint(TOKEN) }, server('bp'))).toMatchObject({ transition: undefined, status: { state: 'UpToDate', upToDate: true } });
  });
});

describe('the owned step gates template rollouts on the recorded slot', () => {
  function owned(name: string, mayRollPod: boolean) {
    const c = context(name, undefined, { mayRollPod });
    const evl = c.ctx.evl;
    const pod = livePod(name);
    const objects: LiveObjects = {
      pvc: { ...asLive(desiredPvc(evl)), status: { phase: 'Bound' } } as never,
      pod,
      service: asLive(desiredService(evl)) as never,
      secret: asLive(desiredTokenSecret(evl, TOKEN)) as never,
      networkPolicy: asLive(desiredNetworkPolicy(evl)) as never,
      token: TOKEN,
    };
    return { ...c, objects };
  }

  it('without a slot the outdated pod is left as it is (no apply, no delete)', async () => {
    const o = owned('a', false);
    await applyOwned(o.ctx, o.objects);
    expect(o.applied.filter((x) => x.kind === 'Pod')).toEqual([]);
    expect(o.calls.filter((c) => c.method === 'DELETE')).toEqual([]);
  });

  it('with the slot recorded the pod is rolled (an image-only change: applied in place)', async () => {
    const o = owned('a', true);
    await applyOwned(o.ctx, o.objects);
    const pods = o.applied.filter((x) => x.kind === 'Pod') as Array<{ spec: { containers: Array<{ image: string }> } }>;
    expect(pods.map((p) => p.spec.containers[0]!.image)).toEqual(['eventlog:v2']);
  });

  it('a pod that is not Ready is rolled without a slot (an EventLog broken before the upgrade does not wait)', async () => {
    const o = owned('a', false);
    o.objects.pod = { ...o.objects.pod!, status: { ...o.objects.pod!.status, conditions: [{ type: 'Ready', status: 'False' }] } } as never;
    await applyOwned(o.ctx, o.objects);
    const pods = o.applied.filter((x) => x.kind === 'Pod') as Array<{ spec: { containers: Array<{ image: string }> } }>;
    expect(pods.map((p) => p.spec.containers[0]!.image)).toEqual(['eventlog:v2']);
  });

  it('a deleted pod is created at once without a slot', async () => {
    const o = owned('a', false);
    o.objects.pod = undefined;
    await applyOwned(o.ctx, o.objects);
    expect(o.applied.filter((x) => x.kind === 'Pod')).toHaveLength(1);
  });
});
