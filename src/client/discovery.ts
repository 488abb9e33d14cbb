/**
 * Endpoint and token discovery from an EventLog resource, for code running in the
 * cluster: reads `status.endpoint` and the Secret named by `status.tokenSecret` through
 * the Kubernetes API.
 *
 * Credentials: the pod's ServiceAccount (token + CA under
 * /var/run/secrets/kubernetes.io/serviceaccount) when running in a pod, else the default
 * kubeconfig (KUBECONFIG, ~/.kube/config), or the KubeConfig you pass. The official
 * client (`@kubernetes/client-node`, a dependency of this package) is imported only
 * here, lazily: code that never calls fromEventLog never loads it.
 *
 * RBAC the caller's ServiceAccount needs, in the EventLog's namespace: `get` on
 * `eventlogs.eventlog.dev` and on the token Secret (`<name>-token`).
 */
import { readFileSync } from 'node:fs';
import type { KubeConfig } from '@kubernetes/client-node';
import { API_VERSION, PLURAL } from '../api/vocabulary.ts';
import { EventLogClient, type EventLogClientOptions } from './client.ts';
import { EventLogError } from './errors.ts';

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface FromEventLogOptions extends Omit<EventLogClientOptions, 'url' | 'token'> {
  /** The EventLog's name. */
  name: string;
  /** Its namespace (default: the namespace of the pod this runs in). */
  namespace?: string;
  /** Credentials for the Kubernetes API (default: in-cluster, else the default kubeconfig). */
  kubeConfig?: KubeConfig;
  /** Use this URL instead of status.endpoint (e.g. a port-forward from outside the cluster). */
  url?: string;
}

export interface EventLogEndpoint {
  url: string;
  /** Absent when the EventLog has no token Secret. */
  token?: string;
}

interface EventLogObject {
  status?: { endpoint?: unknown; tokenSecret?: { name?: unknown; key?: unknown } };
}
interface SecretObject {
  data?: Record<string, string>;
}

function podNamespace(): string | undefined {
  try {
    return readFileSync(`${SA_DIR}/namespace`, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

async function loadKubeConfig(): Promise<KubeConfig> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  let inCluster = false;
  try {
    inCluster = process.env.KUBERNETES_SERVICE_HOST !== undefined && readFileSync(`${SA_DIR}/token`).length > 0;
  } catch {
    inCluster = false;
  }
  if (inCluster) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}

/** Reads the EventLog's endpoint and bearer token (see the module doc). */
export async function discoverEventLog(opts: Pick<FromEventLogOptions, 'name' | 'namespace' | 'kubeConfig' | 'url'>): Promise<EventLogEndpoint> {
  const namespace = opts.namespace ?? podNamespace();
  if (namespace === undefined) throw new EventLogError(`fromEventLog: no namespace given for EventLog ${opts.name}, and not running in a pod`);
  const what = `EventLog ${namespace}/${opts.name}`;
  const kc = opts.kubeConfig ?? (await loadKubeConfig());
  const { KubeHttp, statusCodeOf } = await import('../runtime/kube-http.ts');
  const http = new KubeHttp(kc, { requestTimeoutMs: 15_000 });
  const ns = encodeURIComponent(namespace);
  let evl: EventLogObject;
  try {
    evl = await http.json<EventLogObject>('GET', `/apis/${API_VERSION}/namespaces/${ns}/${PLURAL}/${encodeURIComponent(opts.name)}`);
  } catch (err) {
    const code = statusCodeOf(err);
    const hint = code === 404 ? ' (no such EventLog)' : code === 403 ? ' (the ServiceAccount may not get eventlogs.eventlog.dev)' : '';
    throw new EventLogError(`fromEventLog: reading ${what}${hint}: ${(err as Error).message}`, { cause: err });
  }
  const endpoint = evl.status?.endpoint;
  const url = opts.url ?? (typeof endpoint === 'string' && endpoint !== '' ? endpoint : undefined);
  if (url === undefined) throw new EventLogError(`fromEventLog: ${what} has no status.endpoint yet (the operator has not created its Service)`);
  const ref = evl.status?.tokenSecret;
  if (ref === undefined) return { url };
  if (typeof ref.name !== 'string' || typeof ref.key !== 'string') throw new EventLogError(`fromEventLog: ${what} has a malformed status.tokenSecret`);
  let secret: SecretObject;
  try {
    secret = await http.json<SecretObject>('GET', `/api/v1/namespaces/${ns}/secrets/${encodeURIComponent(ref.name)}`);
  } catch (err) {
    const hint = statusCodeOf(err) === 403 ? ` (the ServiceAccount may not get secrets/${ref.name})` : '';
    throw new EventLogError(`fromEventLog: reading the token Secret ${namespace}/${ref.name} of ${what}${hint}: ${(err as Error).message}`, { cause: err });
  }
  const b64 = secret.data?.[ref.key];
  if (b64 === undefined) throw new EventLogError(`fromEventLog: the Secret ${namespace}/${ref.name} has no key ${JSON.stringify(ref.key)}`);
  const token = Buffer.from(b64, 'base64').toString('utf8').trim();
  if (token === '') throw new EventLogError(`fromEventLog: the Secret ${namespace}/${ref.name} holds an empty token under ${JSON.stringify(ref.key)}`);
  return { url, token };
}

/**
 * A client for the EventLog `namespace/name`, with its endpoint and token read from the
 * cluster once (a new token, after the Secret changed, needs a new client).
 */
export async function fromEventLog(opts: FromEventLogOptions): Promise<EventLogClient> {
  const { name: _n, namespace: _ns, kubeConfig: _kc, url: _u, ...clientOpts } = opts;
  const found = await discoverEventLog(opts);
  return new EventLogClient({ ...clientOpts, url: found.url, ...(found.token !== undefined ? { token: found.token } : {}) });
}
