/**
 * What RBAC sees in an API request: (apiGroup, resource, subresource, namespace, name,
 * verbs), resolved from method + path + query the way the API server's
 * RequestInfoFactory does. Pure. The RBAC test (test/integration/rbac.test.ts) feeds
 * it the operator's request log to compare what the code calls with what the
 * ClusterRole and Role grant.
 *
 * Guarantees
 * - Non-resource paths (`/api`, `/apis/g/v`, `/healthz`, ...) give `undefined`.
 * - `GET` is `get` with a name, else `watch` when `watch=true|1`, else `list`;
 *   `POST` create, `PUT` update, `PATCH` patch, `DELETE` delete / deletecollection.
 * - A server-side apply answered `201 Created` made the object: the API server then
 *   also authorizes `create`, so the verbs are [patch, create].
 *
 * Caveats
 * - Only the request shapes this project sends are covered (no proxy/connect verbs).
 */
export interface RequestLike {
  method: string;
  /** API path; a `?query` in it is read too. */
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  contentType?: string;
  statusCode?: number;
}

export interface RequestAttributes {
  apiGroup: string;
  resource: string;
  /** `resource/subresource` as RBAC rules name it, e.g. `eventlogs/status`. */
  rbacResource: string;
  namespace?: string;
  name?: string;
  verbs: string[];
}

/** Namespace subresources (`/api/v1/namespaces/{name}/status`), as in the API server. */
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

export function requestAttributes(r: RequestLike): RequestAttributes | undefined {
  const [rawPath, rawQuery] = r.path.split('?', 2) as [string, string | undefined];
  const query = new URLSearchParams(rawQuery ?? '');
  for (const [k, v] of Object.entries(r.query ?? {})) if (v !== undefined) query.set(k, String(v));
  const parts = rawPath.split('/').filter((p) => p.length > 0).map(decodeURIComponent);
  let apiGroup: string;
  let rest: string[];
  if (parts[0] === 'api' && parts.length >= 3) {
    apiGroup = '';
    rest = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 4) {
    apiGroup = parts[1]!;
    rest = parts.slice(3);
  } else {
    return undefined;
  }
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length > 1) {
    namespace = rest[1];
    if (rest.length > 2 && !NAMESPACE_SUBRESOURCES.has(rest[2]!)) rest = rest.slice(2);
  }
  const [resource, name, subresource] = rest as [string, string | undefined, string | undefined];
  const method = r.method.toUpperCase();
  let verb: string;
  switch (method) {
    case 'GET':
    case 'HEAD': {
      const watch = query.get('watch');
      verb = name !== undefined ? 'get' : watch === 'true' || watch === '1' ? 'watch' : 'list';
      break;
    }
    case 'POST':
      verb = 'create';
      break;
    case 'PUT':
      verb = 'update';
      break;
    case 'PATCH':
      verb = 'patch';
      break;
    case 'DELETE':
      verb = name !== undefined ? 'delete' : 'deletecollection';
      break;
    default:
      verb = method.toLowerCase();
  }
  const verbs = [verb];
  if (verb === 'patch' && r.contentType?.startsWith('application/apply-patch') && r.statusCode === 201) verbs.push('create');
  return {
    apiGroup,
    resource,
    rbacResource: subresource ? `${resource}/${subresource}` : resource,
    ...(namespace !== undefined ? { namespace } : {}),
    ...(name !== undefined ? { name } : {}),
    verbs,
  };
}
