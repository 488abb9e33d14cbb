/**
 * Server-side apply of plain manifests (objects as they appear in YAML).
 *
 * Why not `KubernetesObjectApi.patch(..., PatchStrategy.ServerSideApply)`: in
 * @kubernetes/client-node 2.0.x it runs the body through the typed model
 * serializer, which expects camelCase model properties and silently drops keys it
 * only knows by their wire name — e.g. `x-kubernetes-int-or-string` in a CRD
 * schema, which the API server then rejects. This class sends the object's JSON
 * as-is with the apply content type, reusing the library's discovery (resource
 * paths), authentication and TLS.
 */
import { HttpMethod, KubernetesObjectApi, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';

export class ManifestApplier extends KubernetesObjectApi {
  static forConfig(kc: KubeConfig): ManifestApplier {
    const api = kc.makeApiClient(ManifestApplier);
    api.setDefaultNamespace(kc);
    return api;
  }

  /** Server-side apply `object` as `fieldManager`; `force` takes over conflicting fields. */
  async apply<T extends KubernetesObject>(object: T, fieldManager: string, options: { force?: boolean } = {}): Promise<T> {
    const what = `${object.kind} ${object.metadata?.namespace ? `${object.metadata.namespace}/` : ''}${object.metadata?.name}`;
    try {
      const path = await this.specUriPath(object, 'patch');
      const request = this.configuration.baseServer.makeRequestContext(path, HttpMethod.PATCH);
      request.setQueryParam('fieldManager', fieldManager);
      if (options.force) request.setQueryParam('force', 'true');
      request.setHeaderParam('Accept', 'application/json');
      request.setHeaderParam('Content-Type', 'application/apply-patch+yaml');
      request.setBody(JSON.stringify(object));
      return await this.requestPromise<T>(request);
    } catch (error) {
      throw new Error(`server-side apply of ${what} failed: ${(error as Error).message}`, { cause: error });
    }
  }
}
