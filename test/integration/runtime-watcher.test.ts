/**
 * The watcher against the real kube-apiserver of the shared control plane.
 *
 * Faults are real, only their timing is controlled: the test wraps the real HTTP
 * transport with a gate that holds the watcher's next watch request back, so an update
 * is guaranteed to happen while the watcher is disconnected.
 * - Broken connection: `KubeHttp.destroyActiveStreams()` destroys the watch's TCP
 *   socket (what a network failure or an API server crash does to the client).
 * - 410 Gone: the wrapper makes the watcher's next watch start from resourceVersion
 *   "1", which the server no longer serves, and the real API server answers with its
 *   own ERROR event `410 Expired: too old resource version: 1 (N)`. That needs a
 *   watch cache whose history starts after "1": the caches of built-in resources of a
 *   fresh control plane start at about revision 1 (and etcd compaction does not
 *   matter while the watch cache still holds the events), so the test watches a
 *   custom resource of its own CRD, whose cache starts when the CRD is created. A
 *   natural 410 (watch-cache eviction after minutes of churn) is not deterministic.
 * The watched resource is a CRD of this test (widgets.watcher-test.eventlog.dev), which
 * also shows the watcher on a custom resource, as the operator uses it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeConfig } from '@kubernetes/client-node';
import { createLogger } from '../../src/common/logger.ts';
import { KubeHttp, statusCodeOf } from '../../src/runtime/kube-http.ts';
import { httpListWatch, type ListWatchSource, type WatchEvent } from '../../src/runtime/list-watch.ts';
import { Watcher } from '../../src/runtime/watcher.ts';
import { freshNamespace, kubeConfigFromInject, waitFor, type FreshNamespace } from './helpers.ts';

const GROUP = 'watcher-test.eventlog.dev';
const CRD_NAME = `widgets.${GROUP}`;
const CRD = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: CRD_NAME },
  spec: {
    group: GROUP,
    scope: 'Namespaced',
    names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', properties: { v: { type: 'string' } } } } } },
      },
    ],
  },
};

interface Widget {
  metadata: { name: string; namespace: string; resourceVersion: string };
  spec?: { v?: string };
}

class Gate {
  #open = true;
  #waiters: Array<() => void> = [];
  waiting = 0;
  close(): void {
    this.#open = false;
  }
  open(): void {
    this.#open = true;
    for (const w of this.#waiters.splice(0)) w();
  }
  async pass(): Promise<void> {
    if (this.#open) return;
    this.waiting++;
    await new Promise<void>((r) => this.#waiters.push(r));
    this.waiting--;
  }
}

describe('watcher against a real API server', () => {
  let kc: KubeConfig;
  let ns: FreshNamespace;
  let http: KubeHttp;
  let watcher: Watcher<Widget>;
  const gate = new Gate();
  const events: string[] = [];
  const errorCodes: number[] = [];
  const watchRvs: string[] = [];
  let lists = 0;
  let opens = 0;
  let overrideRv: string | undefined;

  const base = () => `/apis/${GROUP}/v1/namespaces/${ns.name}/widgets`;
  const value = (name: string) => watcher.get(ns.name, name)?.spec?.v;
  const create = (name: string, v: string, labels: Record<string, string> = { app: 'watcher-test' }) =>
    http.json('POST', base(), { body: { apiVersion: `${GROUP}/v1`, kind: 'Widget', metadata: { name, labels }, spec: { v } } });
  const put = (name: string, v: string) =>
    http.json('PATCH', `${base()}/${name}`, { body: { spec: { v } }, contentType: 'application/merge-patch+json' });
  const remove = (name: string) => http.json('DELETE', `${base()}/${name}`);

  beforeAll(async () => {
    kc = kubeConfigFromInject();
    http = new KubeHttp(kc);
    try {
      await http.json('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', { body: CRD });
    } catch (err) {
      if (statusCodeOf(err) !== 409) throw err;
    }
    ns = await freshNamespace('rt-watcher', kc);
    // Established, and the resource actually served (discovery can lag the condition).
    await waitFor(async () => (await http.json<{ items: unknown[] }>('GET', base())).items !== undefined, {
      message: `the ${CRD_NAME} CRD to be served`,
    });

    const real = httpListWatch<Widget>(http, { group: GROUP, version: 'v1', plural: 'widgets', namespace: ns.name, labelSelector: 'app=watcher-test' });
    const source: ListWatchSource<Widget> = {
      description: real.description,
      list: (req, signal) => {
        lists++;
        return real.list(req, signal);
      },
      watch: async (req, signal, handlers) => {
        await gate.pass();
        const rv = overrideRv ?? req.resourceVersion;
        overrideRv = undefined;
        watchRvs.push(rv);
        return real.watch({ ...req, resourceVersion: rv }, signal, {
          onOpen: () => {
            opens++;
            handlers.onOpen();
          },
          onEvent: (ev: WatchEvent<Widget>) => {
            if (ev.type === 'ERROR') errorCodes.push(ev.object.code ?? 0);
            handlers.onEvent(ev);
          },
        });
      },
    };
    watcher = new Watcher<Widget>({
      source,
      logger: createLogger('watcher-test', process.env.LOG_LEVEL ?? 'warn'),
      pageSize: 2, // three objects: the initial list takes two pages
      backoff: { initialMs: 200, maxMs: 2_000 },
    });
    watcher.onAdd((o) => events.push(`add ${o.metadata.name} ${o.spec?.v}`));
    watcher.onUpdate((_, o) => events.push(`update ${o.metadata.name} ${o.spec?.v}`));
    watcher.onDelete((o) => events.push(`delete ${o.metadata.name}`));
  });

  afterAll(async () => {
    await watcher?.stop();
    await ns?.cleanup();
    await http?.json('DELETE', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${CRD_NAME}`).catch(() => undefined);
  });

  it('lists (paginated) and syncs, then delivers create/update/delete events', async () => {
    for (const n of ['a', 'b', 'c']) await create(n, '1');
    await create('unlabelled', '1', {});
    watcher.start();
    await watcher.waitForSync(AbortSignal.timeout(30_000));
    expect(watcher.hasSynced()).toBe(true);
    expect(watcher.list(ns.name).map((o) => o.metadata.name).sort()).toEqual(['a', 'b', 'c']);
    expect(lists).toBe(2); // two pages of one list
    await waitFor(() => watcher.isHealthy() && opens === 1, { message: 'the watch to be open' });

    events.length = 0;
    await create('d', '1');
    await put('a', '2');
    await remove('d');
    await waitFor(() => events.includes('delete d'), { message: 'the delete event for d' });
    expect(events).toEqual(['add d 1', 'update a 2', 'delete d']);
    expect(value('a')).toBe('2');
    expect(watcher.get(ns.name, 'd')).toBeUndefined();
  });

  it('resumes from the last resourceVersion after the connection breaks, without losing an update made meanwhile', async () => {
    const listsBefore = lists;
    const watchesBefore = watchRvs.length;
    await waitFor(() => opens === watchRvs.length, { message: 'the current watch to be open' });
    const rvBefore = watcher.resourceVersion;
    gate.close();
    expect(http.destroyActiveStreams()).toBe(1);
    await waitFor(() => gate.waiting === 1, { message: 'the watcher to try to watch again' });
    expect(watcher.isHealthy()).toBe(true); // disconnected, but within the back-off bound

    await put('b', 'while-disconnected');
    gate.open();
    await waitFor(() => value('b') === 'while-disconnected', { message: 'the update made while disconnected' });
    expect(events).toContain('update b while-disconnected');
    expect(lists).toBe(listsBefore); // no relist: the watch resumed
    expect(watchRvs[watchesBefore]).toBe(rvBefore);
    await waitFor(() => opens === watchRvs.length && watcher.isHealthy(), { message: 'the watch to be open again' });
  });

  it('relists on a real 410 Gone and reports deletes and updates that happened while disconnected', async () => {
    const listsBefore = lists;
    await waitFor(() => opens === watchRvs.length, { message: 'the current watch to be open' });
    gate.close();
    expect(http.destroyActiveStreams()).toBe(1);
    await waitFor(() => gate.waiting === 1, { message: 'the watcher to try to watch again' });

    await remove('c');
    await put('a', 'changed-while-gone');
    await create('e', '1');
    events.length = 0;
    overrideRv = '1'; // older than the CRD's watch cache: the server answers 410 Expired
    gate.open();

    await waitFor(() => lists === listsBefore + 2 && opens === watchRvs.length, { message: 'a relist and a new watch after the 410' });
    expect(errorCodes).toEqual([410]);
    expect(events.sort()).toEqual(['add e 1', 'delete c', 'update a changed-while-gone']);
    expect(watcher.list(ns.name).map((o) => o.metadata.name).sort()).toEqual(['a', 'b', 'e']);
    expect(watcher.isHealthy()).toBe(true);

    // And the new watch works.
    await put('e', '2');
    await waitFor(() => value('e') === '2', { message: 'an event after the relist' });
  });
});
