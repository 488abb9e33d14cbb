import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock, flushMicrotasks } from '../../../src/runtime/clock.ts';
import { KubeApiError } from '../../../src/runtime/kube-http.ts';
import { Store, keyOf, splitKey } from '../../../src/runtime/store.ts';
import { collectionPath, type ListPage, type ListRequest, type ListWatchSource, type WatchEvent, type WatchHandlers, type WatchRequest } from '../../../src/runtime/list-watch.ts';
import { Watcher } from '../../../src/runtime/watcher.ts';

interface Obj {
  metadata: { name: string; namespace?: string; resourceVersion: string };
  data?: string;
}

const obj = (name: string, rv: number, data = '', namespace = 'ns'): Obj => ({
  metadata: { name, namespace, resourceVersion: String(rv) },
  data,
});

interface ScriptedWatch {
  req: WatchRequest;
  signal: AbortSignal;
  handlers: WatchHandlers<Obj>;
  open(): void;
  send(ev: WatchEvent<Obj>): void;
  close(): void;
  fail(err: unknown): void;
  settled: boolean;
}

/**
 * A scripted API server: `objects` is what a list returns (paginated by `limit`);
 * every watch is a stream the test drives by hand.
 */
class FakeSource implements ListWatchSource<Obj> {
  readonly description = 'fake objects';
  objects: Obj[] = [];
  rv = 100;
  listCalls: ListRequest[] = [];
  /** Errors the next list calls throw, in order. */
  listErrors: unknown[] = [];
  watches: ScriptedWatch[] = [];

  async list(req: ListRequest): Promise<ListPage<Obj>> {
    this.listCalls.push(req);
    const err = this.listErrors.shift();
    if (err) throw err;
    const start = req.continue ? Number(req.continue) : 0;
    const end = req.limit ? start + req.limit : this.objects.length;
    const items = this.objects.slice(start, end).map((o) => structuredClone(o));
    return { items, resourceVersion: String(this.rv), ...(end < this.objects.length ? { continue: String(end) } : {}) };
  }

  watch(req: WatchRequest, signal: AbortSignal, handlers: WatchHandlers<Obj>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const w: ScriptedWatch = {
        req,
        signal,
        handlers,
        settled: false,
        open: () => handlers.onOpen(),
        send: (ev) => handlers.onEvent(ev),
        close: () => {
          w.settled = true;
          resolve();
        },
        fail: (err) => {
          w.settled = true;
          reject(err);
        },
      };
      signal.addEventListener('abort', () => w.close(), { once: true });
      this.watches.push(w);
    });
  }

  get lastWatch(): ScriptedWatch {
    const w = this.watches.at(-1);
    if (!w) throw new Error('no watch yet');
    return w;
  }
}

interface Recorded {
  events: string[];
}

function setup(opts: { pageSize?: number } = {}) {
  const clock = new FakeClock(0);
  const source = new FakeSource();
  const watcher = new Watcher<Obj>({ source, clock, random: () => 0, pageSize: opts.pageSize ?? 500 });
  const rec: Recorded = { events: [] };
  watcher.onAdd((o) => rec.events.push(`add ${keyOf(o)}@${o.metadata.resourceVersion}`));
  watcher.onUpdate((a, b) => rec.events.push(`update ${keyOf(b)}@${a.metadata.resourceVersion}->${b.metadata.resourceVersion}`));
  watcher.onDelete((o) => rec.events.push(`delete ${keyOf(o)}`));
  return { clock, source, watcher, rec };
}

let current: Watcher<Obj> | undefined;
afterEach(async () => {
  await current?.stop();
  current = undefined;
});

async function started(opts: { pageSize?: number } = {}) {
  const s = setup(opts);
  current = s.watcher;
  s.watcher.start();
  await flushMicrotasks();
  return s;
}

describe('Store', () => {
  it('keys objects by namespace/name, indexes namespaces and freezes objects', () => {
    const store = new Store<Obj>();
    store.upsert(obj('a', 1, '', 'x'));
    store.upsert(obj('b', 2, '', 'y'));
    store.upsert({ metadata: { name: 'cluster', resourceVersion: '3' } });
    expect(store.get('x', 'a')?.metadata.resourceVersion).toBe('1');
    expect(store.getByKey('y/b')).toBeDefined();
    expect(store.get(undefined, 'cluster')).toBeDefined();
    expect(store.list('x').map(keyOf)).toEqual(['x/a']);
    expect(store.list().length).toBe(3);
    expect(Object.isFrozen(store.get('x', 'a')!.metadata)).toBe(true);
    expect(splitKey('x/a')).toEqual({ namespace: 'x', name: 'a' });
    expect(splitKey('cluster')).toEqual({ namespace: '', name: 'cluster' });
  });

  it('replace() reports adds, updates by resourceVersion, and deletes', () => {
    const store = new Store<Obj>();
    store.replace([obj('a', 1), obj('b', 1), obj('c', 1)]);
    const changes = store.replace([obj('a', 1), obj('b', 2), obj('d', 1)]);
    expect(changes.map((c) => `${c.type} ${keyOf(c.obj)}`)).toEqual(['update ns/b', 'add ns/d', 'delete ns/c']);
    expect(store.keys().sort()).toEqual(['ns/a', 'ns/b', 'ns/d']);
  });
});

describe('collectionPath', () => {
  it('builds core, grouped and namespaced paths', () => {
    expect(collectionPath({ version: 'v1', plural: 'pods' })).toBe('/api/v1/pods');
    expect(collectionPath({ version: 'v1', plural: 'configmaps', namespace: 'a' })).toBe('/api/v1/namespaces/a/configmaps');
    expect(collectionPath({ group: 'eventlog.dev', version: 'v1alpha1', plural: 'eventlogs', namespace: 'b' })).toBe(
      '/apis/eventlog.dev/v1alpha1/namespaces/b/eventlogs',
    );
  });
});

describe('Watcher', () => {
  it('lists page by page, syncs, then watches from the list resourceVersion with bookmarks', async () => {
    const { source, watcher, rec } = setup({ pageSize: 2 });
    current = watcher;
    source.objects = [obj('a', 1), obj('b', 2), obj('c', 3)];
    expect(watcher.hasSynced()).toBe(false);
    expect(watcher.isHealthy()).toBe(false);
    const synced = watcher.waitForSync();
    watcher.start();
    await synced;
    await flushMicrotasks();
    expect(source.listCalls).toEqual([{ limit: 2 }, { limit: 2, continue: '2' }]);
    expect(watcher.list().length).toBe(3);
    expect(watcher.get('ns', 'b')?.metadata.resourceVersion).toBe('2');
    expect(rec.events).toEqual(['add ns/a@1', 'add ns/b@2', 'add ns/c@3']);
    const w = source.lastWatch;
    expect(w.req.resourceVersion).toBe('100');
    expect(w.req.allowWatchBookmarks).toBe(true);
    expect(w.req.timeoutSeconds).toBe(300); // random() = 0: the minimum of [300, 600]
    w.open();
    expect(watcher.isHealthy()).toBe(true);
    expect(watcher.status().phase).toBe('watching');
  });

  it('applies ADDED/MODIFIED/DELETED to the cache and hooks; BOOKMARK only moves the resourceVersion', async () => {
    const { source, watcher, rec, clock } = await started();
    const w = source.lastWatch;
    w.open();
    w.send({ type: 'ADDED', object: obj('x', 101) });
    w.send({ type: 'MODIFIED', object: obj('x', 102, 'v2') });
    w.send({ type: 'ADDED', object: obj('y', 103) });
    w.send({ type: 'DELETED', object: obj('y', 104) });
    w.send({ type: 'BOOKMARK', object: { metadata: { name: '', resourceVersion: '150' } } as Obj });
    expect(rec.events).toEqual(['add ns/x@101', 'update ns/x@101->102', 'add ns/y@103', 'delete ns/y']);
    expect(watcher.get('ns', 'x')?.data).toBe('v2');
    expect(watcher.get('ns', 'y')).toBeUndefined();
    expect(watcher.resourceVersion).toBe('150');

    // The server ends the watch at timeoutSeconds: watch again at once from the bookmark.
    clock.advance(300_000);
    w.close();
    await flushMicrotasks();
    expect(source.watches.length).toBe(2);
    expect(source.lastWatch.req.resourceVersion).toBe('150');
    expect(source.listCalls.length).toBe(1);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('restarts a broken watch from the last resourceVersion with jittered exponential back-off, never relisting', async () => {
    const clock = new FakeClock(0);
    const source = new FakeSource();
    const watcher = new Watcher<Obj>({ source, clock, random: () => 1 - Number.EPSILON }); // maximal jitter: +25 %
    current = watcher;
    watcher.start();
    await flushMicrotasks();
    source.lastWatch.open();
    source.lastWatch.send({ type: 'ADDED', object: obj('x', 120) });

    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      source.lastWatch.fail(new Error('socket hang up'));
      await flushMicrotasks();
      expect(watcher.status().phase).toBe('backoff');
      const at = clock.nextTimerAt()!;
      delays.push(Math.round(at - clock.now()));
      await clock.advanceAsync(at - clock.now());
      expect(source.lastWatch.req.resourceVersion).toBe('120');
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16000, 32000, 37500, 37500].map((d) => Math.min(d, 37500)));
    expect(source.listCalls.length).toBe(1);
    expect(watcher.status().consecutiveFailures).toBe(8);

    // A watch that stays open for the reset period resets the back-off.
    source.lastWatch.open();
    clock.advance(60_000);
    source.lastWatch.fail(new Error('connection reset'));
    await flushMicrotasks();
    expect(Math.round(clock.nextTimerAt()! - clock.now())).toBe(1000);
  });

  it('relists on a 410 ERROR event and reports what changed while disconnected', async () => {
    const { source, watcher, rec, clock } = setup();
    current = watcher;
    source.objects = [obj('keep', 1), obj('change', 2), obj('vanish', 3)];
    watcher.start();
    await flushMicrotasks();
    source.lastWatch.open();
    rec.events.length = 0;

    source.objects = [obj('keep', 1), obj('change', 5), obj('new', 6)];
    source.rv = 200;
    source.lastWatch.send({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version: 100 (150)' } });
    await flushMicrotasks();
    expect(source.listCalls.length).toBe(2);
    expect(rec.events).toEqual(['update ns/change@2->5', 'add ns/new@6', 'delete ns/vanish']);
    expect(source.lastWatch.req.resourceVersion).toBe('200');
    expect(clock.pendingTimers()).toBe(0); // the first relist does not wait
    expect(watcher.hasSynced()).toBe(true);
  });

  it('backs off on a non-410 ERROR event and resumes from the last resourceVersion', async () => {
    const { source, clock } = await started();
    source.lastWatch.open();
    source.lastWatch.send({ type: 'ADDED', object: obj('a', 130) });
    source.lastWatch.send({ type: 'ERROR', object: { kind: 'Status', code: 500, message: 'internal error' } });
    await flushMicrotasks();
    expect(clock.nextTimerAt()).toBe(800);
    await clock.advanceAsync(800);
    expect(source.lastWatch.req.resourceVersion).toBe('130');
    expect(source.listCalls.length).toBe(1);
  });

  it('relists on an HTTP 410 and backs off when 410s repeat without progress', async () => {
    const { source, clock } = await started();
    source.lastWatch.fail(new KubeApiError('GET /api/v1/x', 410, { reason: 'Gone' }));
    await flushMicrotasks();
    expect(source.listCalls.length).toBe(2);
    expect(clock.pendingTimers()).toBe(0);
    source.lastWatch.fail(new KubeApiError('GET /api/v1/x', 410, { reason: 'Gone' }));
    await flushMicrotasks();
    expect(source.listCalls.length).toBe(2); // waits first
    expect(clock.nextTimerAt()).toBe(800);
    await clock.advanceAsync(800);
    expect(source.listCalls.length).toBe(3);
  });

  it('retries a failed list with back-off and is not synced until a list succeeds', async () => {
    const { source, watcher, clock } = setup();
    current = watcher;
    source.listErrors = [new KubeApiError('GET /api/v1/x', 503, { message: 'unavailable' }), new Error('ECONNREFUSED')];
    let synced = false;
    void watcher.waitForSync().then(() => (synced = true));
    watcher.start();
    await flushMicrotasks();
    expect(synced).toBe(false);
    expect(watcher.status().lastError).toContain('503');
    await clock.advanceAsync(800);
    expect(source.listCalls.length).toBe(2);
    expect(synced).toBe(false);
    await clock.advanceAsync(1600);
    expect(source.listCalls.length).toBe(3);
    expect(synced).toBe(true);
    expect(source.watches.length).toBe(1);
  });

  it('falls back to an unpaginated list when the continue token expires', async () => {
    const { source, watcher } = setup({ pageSize: 1 });
    current = watcher;
    source.objects = [obj('a', 1), obj('b', 2)];
    const origList = source.list.bind(source);
    let n = 0;
    source.list = async (req) => {
      n++;
      if (n === 2) {
        source.listCalls.push(req);
        throw new KubeApiError('GET /api/v1/x', 410, { reason: 'Expired', message: 'continue token expired' });
      }
      return origList(req);
    };
    watcher.start();
    await watcher.waitForSync();
    expect(source.listCalls).toEqual([{ limit: 1 }, { limit: 1, continue: '1' }, { limit: undefined }]);
    expect(watcher.list().length).toBe(2);
  });

  it('treats a stream that closes right after opening as a failure (no hot loop)', async () => {
    const { source, clock } = await started();
    source.lastWatch.open();
    source.lastWatch.close();
    await flushMicrotasks();
    expect(source.watches.length).toBe(1);
    expect(clock.nextTimerAt()).toBe(800);
  });

  it('reports unhealthy only after being disconnected longer than the bound', async () => {
    const { source, watcher, clock } = await started();
    source.lastWatch.open();
    expect(watcher.isHealthy()).toBe(true);
    // Every reconnect fails from now on.
    for (let t = 0; t < 100_000; ) {
      source.lastWatch.fail(new Error('ECONNREFUSED'));
      await flushMicrotasks();
      const dt = clock.nextTimerAt()! - clock.now();
      if (t + dt > 60_000) {
        clock.advance(60_000 - t);
        expect(watcher.isHealthy()).toBe(true);
        clock.advance(1);
        expect(watcher.isHealthy()).toBe(false);
        break;
      }
      await clock.advanceAsync(dt);
      t += dt;
      expect(watcher.isHealthy()).toBe(true);
    }
    // Reconnected: healthy again.
    const at = clock.nextTimerAt()!;
    await clock.advanceAsync(at - clock.now());
    source.lastWatch.open();
    expect(watcher.isHealthy()).toBe(true);
  });

  it('survives a throwing hook, and replays the cache to an onAdd registered late', async () => {
    const { source, watcher } = await started();
    watcher.onUpdate(() => {
      throw new Error('bad hook');
    });
    source.lastWatch.open();
    source.lastWatch.send({ type: 'ADDED', object: obj('a', 101) });
    source.lastWatch.send({ type: 'MODIFIED', object: obj('a', 102) });
    source.lastWatch.send({ type: 'ADDED', object: obj('b', 103) });
    expect(watcher.keys().sort()).toEqual(['ns/a', 'ns/b']);
    const late: string[] = [];
    const off = watcher.onAdd((o) => late.push(keyOf(o)));
    expect(late.sort()).toEqual(['ns/a', 'ns/b']);
    off();
    source.lastWatch.send({ type: 'ADDED', object: obj('c', 104) });
    expect(late.length).toBe(2);
  });

  it('ignores an unchanged resourceVersion and objects in the cache are frozen', async () => {
    const { source, watcher, rec } = await started();
    source.lastWatch.open();
    source.lastWatch.send({ type: 'ADDED', object: obj('a', 101) });
    source.lastWatch.send({ type: 'MODIFIED', object: obj('a', 101) });
    expect(rec.events).toEqual(['add ns/a@101']);
    const cached = watcher.get('ns', 'a')!;
    expect(() => {
      (cached as { data?: string }).data = 'mutated';
    }).toThrow(TypeError);
  });

  it('stop() ends the loop, aborts the open watch and rejects waiters', async () => {
    const { source, watcher, clock } = setup();
    source.listErrors = [new Error('down')];
    watcher.start();
    const wait = watcher.waitForSync();
    await flushMicrotasks();
    await watcher.stop();
    await expect(wait).rejects.toThrow(/stopped before the first sync/);
    expect(clock.pendingTimers()).toBe(0);
    expect(watcher.status().phase).toBe('stopped');
    expect(watcher.isHealthy()).toBe(false);

    const s2 = await started();
    s2.source.lastWatch.open();
    await s2.watcher.stop();
    expect(s2.source.lastWatch.signal.aborted).toBe(true);
    expect(s2.source.watches.length).toBe(1);
    expect(source.watches.length).toBe(0);
  });

  it('waitForSync honours an abort signal', async () => {
    const { watcher, source } = setup();
    current = watcher;
    source.listErrors = [new Error('down')];
    watcher.start();
    const ctl = new AbortController();
    const wait = watcher.waitForSync(ctl.signal);
    ctl.abort();
    await expect(wait).rejects.toThrow(/aborted/);
  });
});
