/**
 * Typed resource access over `KubeHttp`: one place that builds API paths (every segment
 * URL-encoded), applies one default timeout and turns 404 into `undefined` where the
 * caller asks for it, so edge code says *what* it reads or writes, not how.
 *
 * Guarantees
 * - Paths are `/api/v1/...` for the core group and `/apis/<group>/<version>/...` else;
 *   namespace, name and subresource are encoded.
 * - `getOptional` and `deleteOptional` map 404 to `undefined`/`false`; `deleteOptional`
 *   with a `uid` precondition also maps 409 (the name now holds another object) to
 *   `false`. Every other error propagates as the `KubeApiError` (statusCodeOf works on it).
 * - Patches say their content type: merge, JSON patch or server-side apply; the
 *   generated-client trap (JSON-patch by default) cannot happen here.
 *
 * Caveats
 * - Types are not discovered: a ResourceType names group/version/plural itself (the
 *   constants below cover what the operator touches).
 */
import type { KubeHttp, QueryParams } from './kube-http.ts';
import { statusCodeOf } from './kube-http.ts';

export interface ResourceType {
  /** '' or absent: the core group. */
  group?: string;
  version: string;
  plural: string;
}

/** The kinds the operator and the runtime read and write. */
export const Resource = {
  pods: { version: 'v1', plural: 'pods' },
  persistentVolumeClaims: { version: 'v1', plural: 'persistentvolumeclaims' },
  services: { version: 'v1', plural: 'services' },
  secrets: { version: 'v1', plural: 'secrets' },
  networkPolicies: { group: 'networking.k8s.io', version: 'v1', plural: 'networkpolicies' },
  storageClasses: { group: 'storage.k8s.io', version: 'v1', plural: 'storageclasses' },
  events: { group: 'events.k8s.io', version: 'v1', plural: 'events' },
  leases: { group: 'coordination.k8s.io', version: 'v1', plural: 'leases' },
} as const satisfies Record<string, ResourceType>;

/** The API path of a collection (name absent) or one object, optionally a subresource. */
export function resourcePath(type: ResourceType, namespace: string | undefined, name?: string, subresource?: string): string {
  const base = type.group ? `/apis/${type.group}/${type.version}` : `/api/${type.version}`;
  const ns = namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  const obj = name !== undefined ? `/${encodeURIComponent(name)}` : '';
  const sub = subresource ? `/${encodeURIComponent(subresource)}` : '';
  return `${base}${ns}/${type.plural}${obj}${sub}`;
}

export type PatchType = 'merge' | 'json' | 'apply';
const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  apply: 'application/apply-patch+yaml',
};

export interface WriteOptions {
  query?: QueryParams;
  subresource?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** Default timeout of one request made through Resources. */
export const DEFAULT_RESOURCE_TIMEOUT_MS = 10_000;

export class Resources {
  readonly #http: Pick<KubeHttp, 'json'>;
  readonly #timeoutMs: number;

  constructor(http: Pick<KubeHttp, 'json'>, opts: { timeoutMs?: number } = {}) {
    this.#http = http;
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_RESOURCE_TIMEOUT_MS;
  }

  get<T>(type: ResourceType, namespace: string | undefined, name: string, opts: Pick<WriteOptions, 'signal' | 'timeoutMs'> = {}): Promise<T> {
    return this.#http.json<T>('GET', resourcePath(type, namespace, name), this.#opts(opts));
  }

  /** The object, or undefined when it does not exist (404). */
  async getOptional<T>(type: ResourceType, namespace: string | undefined, name: string, opts: Pick<WriteOptions, 'signal' | 'timeoutMs'> = {}): Promise<T | undefined> {
    try {
      return await this.get<T>(type, namespace, name, opts);
    } catch (error) {
      if (statusCodeOf(error) === 404) return undefined;
      throw error;
    }
  }

  create<T>(type: ResourceType, namespace: string | undefined, body: unknown, opts: WriteOptions = {}): Promise<T> {
    return this.#http.json<T>('POST', resourcePath(type, namespace), { ...this.#opts(opts), body });
  }

  replace<T>(type: ResourceType, namespace: string | undefined, name: string, body: unknown, opts: WriteOptions = {}): Promise<T> {
    return this.#http.json<T>('PUT', resourcePath(type, namespace, name, opts.subresource), { ...this.#opts(opts), body });
  }

  patch<T>(type: ResourceType, namespace: string | undefined, name: string, patchType: PatchType, body: unknown, opts: WriteOptions = {}): Promise<T> {
    return this.#http.json<T>('PATCH', resourcePath(type, namespace, name, opts.subresource), { ...this.#opts(opts), contentType: PATCH_CONTENT_TYPE[patchType], body });
  }

  /** Deletes the object; false when it was already gone (404) or, with `uid`, replaced by another (409). */
  async deleteOptional(type: ResourceType, namespace: string | undefined, name: string, opts: WriteOptions & { uid?: string } = {}): Promise<boolean> {
    try {
      await this.#http.json('DELETE', resourcePath(type, namespace, name), {
        ...this.#opts(opts),
        body: { apiVersion: 'v1', kind: 'DeleteOptions', ...(opts.uid ? { preconditions: { uid: opts.uid } } : {}) },
      });
      return true;
    } catch (error) {
      const code = statusCodeOf(error);
      if (code === 404 || (code === 409 && opts.uid)) return false;
      throw error;
    }
  }

  #opts(o: { query?: QueryParams; signal?: AbortSignal; timeoutMs?: number }) {
    return { ...(o.query ? { query: o.query } : {}), ...(o.signal ? { signal: o.signal } : {}), timeoutMs: o.timeoutMs ?? this.#timeoutMs };
  }
}
