/**
 * Reaching an EventLog's log server from outside the cluster, through the Kubernetes
 * API: the API server's pod proxy (`/api/v1/namespaces/NS/pods/POD:8080/proxy/...`),
 * with the EventLog's token read from the Secret its status names. No port to open, no
 * token to copy: what the caller may do is what their kubeconfig's RBAC allows
 * (`get` on the EventLog and its Secret, `get` on `pods/proxy`).
 *
 * Caveats
 * - The API server removes `Authorization` from proxied requests after authenticating
 *   the caller, so the token travels as `X-EventLog-Token` (src/server/auth.ts).
 * - The API server refuses to proxy to loopback pod addresses ("address not allowed"),
 *   which is where the local cluster's node agent puts its pods: `--via auto` (the
 *   default) then talks to the pod address directly (it is on this machine), with
 *   `Authorization: Bearer`. `--via proxy` / `--via direct` force one way.
 * - A proxied request is bounded by the API server's own timeouts; long polls use
 *   waits well below them.
 */
import type { EventLog } from '../api/eventlog.ts';
import { parseEventLog } from '../api/eventlog.ts';
import { podName } from '../decisions/desired.ts';
import { TOKEN_KEY } from '../decisions/token.ts';
import type { KubeHttp, RawResponse } from '../runtime/kube-http.ts';
import { Resource, Resources, resourcePath } from '../runtime/resources.ts';
import { EVENTLOG_RESOURCE } from '../operator/reconcile/resource.ts';

/** A failure the plugin reports as one line and exit 1. */
export class PluginError extends Error {
  override name = 'PluginError';
}

export interface LogAccess {
  evl: EventLog;
  /** A request to the log server; the answer is returned whatever its status. */
  request(method: string, path: string, o?: { query?: Record<string, string | number>; body?: string; contentType?: string; headers?: Record<string, string>; timeoutMs?: number }): Promise<RawResponse>;
}

export async function readEventLog(http: KubeHttp, namespace: string, name: string): Promise<EventLog> {
  const raw = await new Resources(http).getOptional<unknown>(EVENTLOG_RESOURCE, namespace, name);
  if (raw === undefined) throw new PluginError(`EventLog ${namespace}/${name} not found`);
  const parsed = parseEventLog(raw);
  if (!parsed.success) throw new PluginError(`EventLog ${namespace}/${name} cannot be read: ${parsed.error}`);
  return parsed.data;
}

/** How to reach the log server: the API server's pod proxy, the pod address directly, or decide. */
export type Via = 'auto' | 'proxy' | 'direct';

/** Direct for loopback pod addresses (the API server will not proxy there), else the proxy. */
export function chooseVia(via: Via, podIP: string | undefined): 'proxy' | 'direct' {
  if (via !== 'auto') return via;
  return podIP !== undefined && /^127\./.test(podIP) ? 'direct' : 'proxy';
}

export async function openLog(http: KubeHttp, namespace: string, name: string, opts: { via?: Via; port?: number } = {}): Promise<LogAccess> {
  const port = opts.port ?? 8080;
  const evl = await readEventLog(http, namespace, name);
  const pod = evl.status?.pod?.name ?? podName(evl);
  let token: string | undefined;
  const secretRef = evl.status?.tokenSecret;
  if (secretRef) {
    const secret = await new Resources(http).getOptional<{ data?: Record<string, string> }>(Resource.secrets, namespace, secretRef.name);
    const b64 = secret?.data?.[secretRef.key ?? TOKEN_KEY];
    if (!b64) throw new PluginError(`Secret ${namespace}/${secretRef.name} (status.tokenSecret) has no key ${secretRef.key ?? TOKEN_KEY}`);
    token = Buffer.from(b64, 'base64').toString('utf8');
  }
  const podIP = evl.status?.pod?.ip;
  if (chooseVia(opts.via ?? 'auto', podIP) === 'direct') {
    if (!podIP) throw new PluginError(`EventLog ${namespace}/${name}: status names no pod IP yet (is the pod running?)`);
    return { evl, request: (method, path, o = {}) => direct(`http://${podIP}:${port}`, token, method, path, o, `EventLog ${namespace}/${name} (pod ${pod} at ${podIP})`) };
  }
  const base = `${resourcePath(Resource.pods, namespace, `${pod}:${port}`)}/proxy`;
  return {
    evl,
    request: async (method, path, o = {}) => {
      try {
        return await http.raw(method, `${base}${path}`, {
          ...(o.query ? { query: o.query } : {}),
          ...(o.body !== undefined ? { body: o.body, contentType: o.contentType ?? 'application/json' } : {}),
          accept: '*/*',
          headers: { ...(token !== undefined ? { 'X-EventLog-Token': token } : {}), ...(o.headers ?? {}) },
          timeoutMs: o.timeoutMs ?? 30_000,
        });
      } catch (error) {
        throw new PluginError(`cannot reach the log server of EventLog ${namespace}/${name} through the API server (pod ${pod}): ${(error as Error).message}`);
      }
    },
  };
}

async function direct(base: string, token: string | undefined, method: string, path: string, o: Parameters<LogAccess['request']>[2] = {}, what: string): Promise<RawResponse> {
  const url = new URL(base + path);
  for (const [k, v] of Object.entries(o.query ?? {})) url.searchParams.set(k, String(v));
  try {
    const res = await fetch(url, {
      method,
      headers: { ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}), ...(o.body !== undefined ? { 'content-type': o.contentType ?? 'application/json' } : {}), ...(o.headers ?? {}) },
      ...(o.body !== undefined ? { body: o.body } : {}),
      signal: AbortSignal.timeout(o.timeoutMs ?? 30_000),
    });
    return { statusCode: res.status, headers: Object.fromEntries(res.headers), body: Buffer.from(await res.arrayBuffer()) };
  } catch (error) {
    throw new PluginError(`cannot reach the log server of ${what}: ${(error as Error).message}`);
  }
}

/** The server's JSON error body, or the API server's, as one readable line. */
export function describeFailure(res: RawResponse, what: string): string {
  const text = res.body.toString('utf8');
  try {
    const j = JSON.parse(text) as { error?: string; message?: string; reason?: string };
    if (j.message) return `${what}: HTTP ${res.statusCode} ${j.error ?? j.reason ?? ''}: ${j.message}`.replace(/ +:/, ':');
  } catch {
    // not JSON: fall through
  }
  return `${what}: HTTP ${res.statusCode}: ${text.trim().slice(0, 300) || 'no body'}`;
}
