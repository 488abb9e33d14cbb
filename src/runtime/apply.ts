/**
 * Server-side apply through `KubeHttp`, for objects of kinds whose resource path is
 * known without discovery. The operator applies five kinds (PVC, pod, Service, Secret,
 * NetworkPolicy); `ManifestApplier` (src/kube/apply.ts) finds paths through the official
 * client's discovery, which means loading `@kubernetes/client-node` and caching its
 * discovery documents, for answers this table gives directly.
 *
 * Guarantees (the same as `ManifestApplier.apply`)
 * - The object's JSON is sent as-is with `application/apply-patch+yaml`, `fieldManager`
 *   and `force` when asked; the result is the API server's JSON.
 * - A failure is an Error "server-side apply of <Kind> <ns>/<name> failed: ..." whose
 *   cause is the `KubeApiError` (statusCodeOf works through it).
 * - A kind missing from the table is an error naming it (never a guessed path).
 */
// Type only (erased by the compiler): the same signature as ManifestApplier.apply.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { KubeHttp } from './kube-http.ts';
import { resourcePath, type ResourceType } from './resources.ts';

/** Plural resource names of the (namespaced) kinds the operator writes, by kind. */
export const KNOWN_PLURALS: Readonly<Record<string, string>> = {
  Pod: 'pods',
  PersistentVolumeClaim: 'persistentvolumeclaims',
  Service: 'services',
  Secret: 'secrets',
  ConfigMap: 'configmaps',
  ServiceAccount: 'serviceaccounts',
  NetworkPolicy: 'networkpolicies',
  Lease: 'leases',
};

/** The resource of an object's apiVersion and its kind's plural ("group/version" or a core "version"). */
function typeOf(apiVersion: string, plural: string): ResourceType {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? { version: apiVersion, plural } : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1), plural };
}

export class ServerSideApplier {
  readonly #http: Pick<KubeHttp, 'json'>;
  readonly #plurals: Readonly<Record<string, string>>;

  constructor(http: Pick<KubeHttp, 'json'>, plurals: Readonly<Record<string, string>> = KNOWN_PLURALS) {
    this.#http = http;
    this.#plurals = plurals;
  }

  /** Server-side apply `object` as `fieldManager`; `force` takes over conflicting fields. */
  async apply<T extends KubernetesObject>(object: T, fieldManager: string, options: { force?: boolean } = {}): Promise<T> {
    const ns = object.metadata?.namespace;
    const what = `${object.kind} ${ns ? `${ns}/` : ''}${object.metadata?.name}`;
    try {
      const plural = object.kind ? this.#plurals[object.kind] : undefined;
      if (!plural || !object.apiVersion) throw new Error(`no resource path known for apiVersion ${object.apiVersion} kind ${object.kind}`);
      // Every kind in the table is namespaced: no default namespace is guessed.
      if (!ns || !object.metadata?.name) throw new Error('the object needs metadata.namespace and metadata.name');
      return await this.#http.json<T>('PATCH', resourcePath(typeOf(object.apiVersion, plural), ns, object.metadata.name), {
        query: { fieldManager, ...(options.force ? { force: 'true' } : {}) },
        contentType: 'application/apply-patch+yaml',
        body: object,
      });
    } catch (error) {
      throw new Error(`server-side apply of ${what} failed: ${(error as Error).message}`, { cause: error });
    }
  }
}
