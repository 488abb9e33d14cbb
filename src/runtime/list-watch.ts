/**
 * The list/watch transport a Watcher runs on: the request and event shapes, the
 * `ListWatchSource` seam (unit tests script a fake one), `httpListWatch`, the real
 * one (paginated lists and watch streams of raw JSON through KubeHttp), and `listAll`,
 * the pager over any source.
 */
import { statusCodeOf, type KubeHttp, type KubeStatus } from './kube-http.ts';
import { resourcePath, type ResourceType } from './resources.ts';
import type { KubeObject } from './store.ts';

export interface ListRequest {
  limit?: number;
  continue?: string;
}

export interface ListPage<T> {
  items: T[];
  /** The list's resourceVersion (metadata.resourceVersion of the List). */
  resourceVersion: string;
  /** Continue token of the next page; empty or absent on the last page. */
  continue?: string;
}

export interface WatchRequest {
  resourceVersion: string;
  timeoutSeconds: number;
  allowWatchBookmarks: boolean;
}

export type WatchEvent<T> =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK'; object: T }
  | { type: 'ERROR'; object: KubeStatus };

export interface WatchHandlers<T> {
  /** The server accepted the watch (HTTP 200). */
  onOpen(): void;
  /** One event, in order. Synchronous. */
  onEvent(event: WatchEvent<T>): void;
}

/**
 * Where a watcher lists and watches. The real one is `httpListWatch`; unit tests script
 * a fake one (410s, broken streams, bookmarks).
 */
export interface ListWatchSource<T> {
  /** For logs: "configmaps in ns-1 (app=x)". */
  readonly description: string;
  /** One page. Rejects with an error carrying `statusCode` (e.g. KubeApiError) for HTTP errors. */
  list(req: ListRequest, signal: AbortSignal): Promise<ListPage<T>>;
  /**
   * One watch stream. Resolves when the server closes it or `signal` aborts; rejects for
   * an HTTP error (with `statusCode`) or a broken connection.
   */
  watch(req: WatchRequest, signal: AbortSignal, handlers: WatchHandlers<T>): Promise<void>;
}

/** A resource collection to list and watch: a type, optionally one namespace and selectors. */
export interface ResourceRef extends ResourceType {
  /** Watch one namespace; absent: all namespaces (or a cluster-scoped resource). */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

/** The URL path of a resource collection. */
export function collectionPath(ref: ResourceRef): string {
  return resourcePath(ref, ref.namespace);
}

function describeRef(ref: ResourceRef): string {
  const gvr = `${ref.plural}${ref.group ? `.${ref.group}` : ''}/${ref.version}`;
  const where = ref.namespace ? ` in ${ref.namespace}` : '';
  const sel = [ref.labelSelector, ref.fieldSelector].filter(Boolean).join(',');
  return `${gvr}${where}${sel ? ` (${sel})` : ''}`;
}

/** The real transport: raw list/watch requests to the API server. */
export function httpListWatch<T extends KubeObject>(http: KubeHttp, ref: ResourceRef): ListWatchSource<T> {
  const path = collectionPath(ref);
  const selectors = { labelSelector: ref.labelSelector, fieldSelector: ref.fieldSelector };
  return {
    description: describeRef(ref),
    async list(req, signal) {
      const body = await http.json<{ items?: T[]; metadata?: { resourceVersion?: string; continue?: string } }>('GET', path, {
        query: { ...selectors, limit: req.limit, continue: req.continue },
        signal,
      });
      return {
        items: body.items ?? [],
        resourceVersion: body.metadata?.resourceVersion ?? '',
        continue: body.metadata?.continue,
      };
    },
    async watch(req, signal, handlers) {
      await http.stream(path, {
        query: {
          ...selectors,
          watch: true,
          resourceVersion: req.resourceVersion,
          allowWatchBookmarks: req.allowWatchBookmarks,
          timeoutSeconds: req.timeoutSeconds,
        },
        signal,
        // The server ends the watch at timeoutSeconds; give it a minute before assuming
        // the connection is dead.
        deadlineMs: (req.timeoutSeconds + 60) * 1000,
        onOpen: handlers.onOpen,
        onLine: (line) => {
          let ev: WatchEvent<T>;
          try {
            ev = JSON.parse(line) as WatchEvent<T>;
          } catch (err) {
            // A line that is not JSON means the stream is broken: surface it as an ERROR.
            handlers.onEvent({ type: 'ERROR', object: { code: 500, message: `unparsable watch line: ${(err as Error).message}` } });
            return;
          }
          handlers.onEvent(ev);
        },
      });
    },
  };
}

/**
 * Every page of a list (client-go's pager): pages of `pageSize` (0: one unpaginated
 * list) followed by their continue tokens. An expired continue token (410: the list
 * took longer than etcd keeps history) restarts as one unpaginated list, after
 * `onContinueExpired`. Throws if `signal` aborts between pages.
 */
export async function listAll<T>(source: ListWatchSource<T>, pageSize: number, signal: AbortSignal, onContinueExpired?: (err: unknown) => void): Promise<{ items: T[]; resourceVersion: string }> {
  const items: T[] = [];
  let resourceVersion = '';
  let cont: string | undefined;
  let limit: number | undefined = pageSize > 0 ? pageSize : undefined;
  for (;;) {
    let page: ListPage<T>;
    try {
      page = await source.list({ limit, ...(cont ? { continue: cont } : {}) }, signal);
    } catch (err) {
      if (cont && statusCodeOf(err) === 410) {
        onContinueExpired?.(err);
        items.length = 0;
        cont = undefined;
        limit = undefined;
        continue;
      }
      throw err;
    }
    signal.throwIfAborted();
    for (const it of page.items) items.push(it);
    resourceVersion = page.resourceVersion;
    cont = page.continue || undefined;
    if (!cont) return { items, resourceVersion };
  }
}
