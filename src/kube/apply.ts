/**
 * Server-side apply of plain manifests (objects as they appear in YAML).
 *
 * Why not `KubernetesObjectApi.patch(..., PatchStrategy.ServerSideApply)`: in
 * @kubernetes/client-node 2.0.x it runs the body through the typed model
 * serializer, which expects camelCase model properties and silently drops keys it
 * only knows by their wire name — e.g. `x-kubernetes-int-or-string` in a CRD
 * schema, which the API server then rejects. This class sends the object's JSON
 * as-is with the apply content type through `KubeHttp` (the same authentication
 * and TLS, and its `onRequest` observer sees every apply), reusing the library's
 * discovery for the resource paths. The result is the API server's JSON as-is
 * (times are strings, not Dates).
 */
import { KubernetesObjectApi, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { KubeHttp } from '../runtime/kube-http.ts';

export class ManifestApplier extends KubernetesObjectApi {
  #http: KubeHttp | undefined;

  /** `http`: the client that sends the applies (default: a new KubeHttp of `kc`). */
  static forConfig(kc: KubeConfig, opts: { http?: KubeHttp } = {}): ManifestApplier {
    const api = kc.makeApiClient(ManifestApplier);
    api.setDefaultNamespace(kc);
    api.#http = opts.http ?? new KubeHttp(kc);
    return api;
  }

  /** Server-side apply `object` as `fieldManager`; `force` takes over conflicting fields. */
  async apply<T extends KubernetesObject>(object: T, fieldManager: string, options: { force?: boolean } = {}): Promise<T> {
    const what = `${object.kind} ${object.metadata?.namespace ? `${object.metadata.namespace}/` : ''}${object.metadata?.name}`;
    try {
      if (!this.#http) throw new Error('ManifestApplier: create it with ManifestApplier.forConfig(kc)');
      const path = await this.specUriPath(object, 'patch');
      // JSON is YAML: the apply content type takes the object's JSON unchanged.
      return await this.#http.json<T>('PATCH', path, {
        query: { fieldManager, ...(options.force ? { force: 'true' } : {}) },
        contentType: 'application/apply-patch+yaml',
        body: object,
      });
    } catch (error) {
      throw new Error(`server-side apply of ${what} failed: ${(error as Error).message}`, { cause: error });
    }
  }
}
