/**
 * Cluster access without loading `@kubernetes/client-node`: the operator needs only the
 * API server URL and, per request, TLS material and a bearer token. Loading the official
 * client's `KubeConfig` pulls in its whole generated API (about 80 MiB of RSS in a Node
 * 24 process, measured in docs/benchmarks.md), so the common cases are handled here and
 * everything else falls back to the official class, loaded only then.
 *
 * `KubeAccess` is the part of `KubeConfig` that `KubeHttp` uses; the official
 * `KubeConfig` satisfies it as is, so tests and dev tools keep passing theirs.
 *
 * Handled here (`LightKubeConfig`):
 * - in-cluster: `KUBERNETES_SERVICE_HOST`/`_PORT`, the ServiceAccount CA, and the
 *   ServiceAccount token file, re-read at most once a minute (bound tokens rotate; the
 *   official client and client-go re-read at the same rate);
 * - a kubeconfig file (`--kubeconfig`, a single-file `KUBECONFIG`, `~/.kube/config`)
 *   whose current context's user has only `token`, `tokenFile`, client certificate/key
 *   (file or data) and whose cluster has only `server`, certificate authority (file or
 *   data), `insecure-skip-tls-verify` and `tls-server-name`.
 *
 * Everything else (exec plugins, auth providers, basic auth, impersonation, proxies,
 * several files in `KUBECONFIG`, a file this parser does not understand) loads the
 * official `KubeConfig` (dynamic import) with the same loading order as before, so
 * behaviour for those setups is exactly the official client's.
 *
 * Guarantees
 * - One keep-alive HTTP(S) agent per configuration: API requests reuse connections
 *   (the official client's agent does not keep connections alive).
 * - Relative file paths in a kubeconfig are relative to the file's directory, as in
 *   kubectl.
 * - The YAML parser is loaded only for a kubeconfig file in YAML (none in-cluster).
 */
import { existsSync, readFileSync } from 'node:fs';
import { Agent as HttpAgent, type RequestOptions } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { isIPv6 } from 'node:net';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join } from 'node:path';

/** What `KubeHttp` needs of a kubeconfig (the official `KubeConfig` has both). */
export interface KubeAccess {
  getCurrentCluster(): { server: string } | null;
  /** Sets TLS options, the agent and the Authorization header on `opts` (one request). */
  applyToHTTPSOptions(opts: RequestOptions): Promise<void>;
}

export const SERVICEACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
const TOKEN_REREAD_MS = 60_000;

interface ClusterEntry {
  server: string;
  ca?: Buffer;
  insecureSkipTlsVerify?: boolean;
  tlsServerName?: string;
}

interface UserEntry {
  token?: string;
  tokenFile?: string;
  cert?: Buffer;
  key?: Buffer;
}

/** A kubeconfig of static credentials (see the module doc). */
export class LightKubeConfig implements KubeAccess {
  readonly #cluster: ClusterEntry;
  readonly #user: UserEntry;
  readonly #agent: HttpAgent;
  #token: { value: string; readAt: number } | undefined;
  readonly #now: () => number;

  constructor(cluster: ClusterEntry, user: UserEntry, opts: { now?: () => number } = {}) {
    this.#cluster = cluster;
    this.#user = user;
    this.#now = opts.now ?? Date.now;
    const keepAlive = { keepAlive: true, keepAliveMsecs: 30_000 };
    this.#agent = cluster.server.startsWith('http:')
      ? new HttpAgent(keepAlive)
      : new HttpsAgent({
          ...keepAlive,
          ...(cluster.ca ? { ca: cluster.ca } : {}),
          ...(user.cert ? { cert: user.cert } : {}),
          ...(user.key ? { key: user.key } : {}),
          ...(cluster.insecureSkipTlsVerify ? { rejectUnauthorized: false } : {}),
          ...(cluster.tlsServerName ? { servername: cluster.tlsServerName } : {}),
        });
  }

  getCurrentCluster(): { server: string } {
    return { server: this.#cluster.server };
  }

  async applyToHTTPSOptions(opts: RequestOptions): Promise<void> {
    opts.agent = this.#agent;
    const token = this.#bearer();
    if (token) opts.headers = { ...(opts.headers as Record<string, string> | undefined), Authorization: `Bearer ${token}` };
  }

  #bearer(): string | undefined {
    if (this.#user.token) return this.#user.token;
    const file = this.#user.tokenFile;
    if (!file) return undefined;
    const now = this.#now();
    if (!this.#token || now - this.#token.readAt > TOKEN_REREAD_MS) {
      this.#token = { value: readFileSync(file, 'utf8').trim(), readAt: now };
    }
    return this.#token.value;
  }

  /** In-cluster access (the Deployment's ServiceAccount), or undefined when not in a cluster. */
  static inCluster(env: NodeJS.ProcessEnv, dir = SERVICEACCOUNT_DIR): LightKubeConfig | undefined {
    const host = env.KUBERNETES_SERVICE_HOST;
    const port = env.KUBERNETES_SERVICE_PORT;
    const tokenFile = join(dir, 'token');
    if (!host || !existsSync(tokenFile)) return undefined;
    // The official client's rule: these ports mean plain HTTP.
    const scheme = port === '80' || port === '8080' || port === '8001' ? 'http' : 'https';
    const server = `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`;
    const caFile = join(dir, 'ca.crt');
    return new LightKubeConfig({ server, ...(existsSync(caFile) ? { ca: readFileSync(caFile) } : {}) }, { tokenFile });
  }

  /**
   * The current context of a kubeconfig document, or undefined when it uses anything
   * this class does not handle (the caller then uses the official client).
   */
  static fromKubeconfigText(text: string, file: string, parse: (text: string) => unknown = JSON.parse): LightKubeConfig | undefined {
    let doc: unknown;
    try {
      doc = parse(text);
    } catch {
      return undefined;
    }
    const d = doc as { 'current-context'?: string; contexts?: Named<{ cluster?: string; user?: string }>[]; clusters?: Named<Record<string, unknown>>[]; users?: Named<Record<string, unknown>>[] } | null;
    if (!d || typeof d !== 'object') return undefined;
    const ctx = d.contexts?.find((c) => c?.name === d['current-context'])?.context;
    if (!ctx?.cluster) return undefined;
    const cluster = d.clusters?.find((c) => c?.name === ctx.cluster)?.cluster;
    const user = ctx.user === undefined ? {} : d.users?.find((u) => u?.name === ctx.user)?.user;
    if (!cluster || !user || typeof cluster !== 'object' || typeof user !== 'object') return undefined;
    const clusterKeys = new Set(['server', 'certificate-authority', 'certificate-authority-data', 'insecure-skip-tls-verify', 'tls-server-name', 'extensions']);
    const userKeys = new Set(['token', 'tokenFile', 'client-certificate', 'client-certificate-data', 'client-key', 'client-key-data', 'extensions']);
    if (Object.keys(cluster).some((k) => !clusterKeys.has(k)) || Object.keys(user).some((k) => !userKeys.has(k))) return undefined;
    const server = cluster.server;
    if (typeof server !== 'string' || !/^https?:\/\//.test(server)) return undefined;
    const base = dirname(file);
    const load = (fileKey: string, dataKey: string, from: Record<string, unknown>): Buffer | undefined => {
      const data = from[dataKey];
      if (typeof data === 'string' && data.length > 0) return Buffer.from(data, 'base64');
      const f = from[fileKey];
      if (typeof f === 'string' && f.length > 0) return readFileSync(isAbsolute(f) ? f : join(base, f));
      return undefined;
    };
    const skip = cluster['insecure-skip-tls-verify'] === true;
    // The official client refuses plain HTTP unless TLS verification is skipped.
    if (server.startsWith('http:') && !skip) return undefined;
    const ca = load('certificate-authority', 'certificate-authority-data', cluster);
    const cert = load('client-certificate', 'client-certificate-data', user);
    const key = load('client-key', 'client-key-data', user);
    const tokenFile = typeof user.tokenFile === 'string' && user.tokenFile ? (isAbsolute(user.tokenFile) ? user.tokenFile : join(base, user.tokenFile)) : undefined;
    return new LightKubeConfig(
      {
        server,
        ...(ca ? { ca } : {}),
        ...(skip ? { insecureSkipTlsVerify: true } : {}),
        ...(typeof cluster['tls-server-name'] === 'string' ? { tlsServerName: cluster['tls-server-name'] } : {}),
      },
      { ...(typeof user.token === 'string' && user.token ? { token: user.token } : {}), ...(tokenFile ? { tokenFile } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) },
    );
  }
}

type Named<T> = { name?: string; context?: T; cluster?: T; user?: T } & Record<string, unknown>;

/** Where the kubeconfig comes from (the same order as the operator always used). */
export type KubeconfigSource = { kind: 'file'; path: string } | { kind: 'in-cluster' } | { kind: 'default' };

/**
 * `--kubeconfig` (explicit file), else in-cluster when its files exist, else the default
 * (KUBECONFIG, ~/.kube/config), like `KubeConfig.loadFromFile`, `loadFromCluster` and
 * `loadFromDefault` (no file at all: the official client's fallback). Returns the light config where it can, else
 * the official `KubeConfig` (loaded on demand). Throws what loading the file threw.
 */
export async function loadKubeAccess(kubeconfig: string | undefined, env: NodeJS.ProcessEnv, opts: { serviceAccountDir?: string } = {}): Promise<{ access: KubeAccess; light: boolean }> {
  const saDir = opts.serviceAccountDir ?? SERVICEACCOUNT_DIR;
  let file: string | undefined = kubeconfig;
  if (!file) {
    if (env.KUBERNETES_SERVICE_HOST && existsSync(join(saDir, 'token'))) {
      const inCluster = LightKubeConfig.inCluster(env, saDir);
      if (inCluster) return { access: inCluster, light: true };
    }
    const fromEnv = (env.KUBECONFIG ?? '').split(delimiter).filter(Boolean);
    if (fromEnv.length === 1) file = fromEnv[0];
    else if (fromEnv.length === 0) {
      const home = env.HOME ?? homedir();
      const def = join(home, '.kube', 'config');
      if (existsSync(def)) file = def;
    }
  }
  if (file) {
    const text = readFileSync(file, 'utf8'); // a missing file fails here, as loadFromFile does
    // JSON is YAML; the YAML parser (about 8 MiB of RSS) is loaded only for YAML text.
    const parse = text.trimStart().startsWith('{') ? JSON.parse : (await import('yaml')).parse;
    const light = LightKubeConfig.fromKubeconfigText(text, file, parse);
    if (light) return { access: light, light: true };
  }
  // Anything else: the official client, exactly as before.
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (kubeconfig) kc.loadFromFile(kubeconfig);
  else if (env.KUBERNETES_SERVICE_HOST && existsSync(join(saDir, 'token'))) kc.loadFromCluster();
  else kc.loadFromDefault();
  return { access: kc, light: false };
}
