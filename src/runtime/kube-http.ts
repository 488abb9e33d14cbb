/**
 * A minimal raw HTTP client for the Kubernetes API, used by the watcher (lists and watch
 * streams), the leader elector (Lease get/create/update) and every write the operator
 * makes. Every request is prepared by `applyToHTTPSOptions` of a `KubeAccess`: the
 * operator's light kubeconfig (kubeconfig.ts: CA, client certificate, bearer token,
 * one keep-alive agent) or the official client's `KubeConfig` (exec / auth providers,
 * proxy agent), so it authenticates exactly like `kc.makeApiClient(...)`.
 *
 * Why not the generated API clients / `Watch`:
 * - `Watch` (client-node 2.0.1) aborts a stream after 30 s without bytes; a quiet watch
 *   with bookmarks can legitimately be silent longer. Here a stream ends at the server's
 *   `timeoutSeconds` plus a margin (`deadlineMs`), and TCP keep-alive detects dead peers.
 * - Generated models serialise `MicroTime` (Lease renewTime) with millisecond precision,
 *   which the API server rejects; raw JSON lets the caller format it.
 * - One code path for any group/version/resource, including custom resources.
 *
 * Guarantees:
 * - `json()` resolves with the parsed body of a 2xx response and rejects with a
 *   `KubeApiError` (statusCode, reason, message from the `Status` body) otherwise, or
 *   with the network error / `AbortError` / timeout error that ended it.
 * - `stream()` calls `onOpen` once the server answered 200, then `onLine` for every
 *   newline-terminated line, synchronously and in order. It resolves when the server
 *   ends the response or the signal aborts; it rejects with `KubeApiError` for a non-200
 *   answer and with the network error if the connection breaks.
 *
 * Caveats:
 * - No retries: callers (watcher, leader elector) own retry and back-off policy.
 * - `destroyActiveStreams()` is a test hook that destroys the sockets of open streams,
 *   as a network failure would; production code never calls it.
 * - `onRequest` (optional) sees every request once its answer's status is known (a
 *   watch: when its stream opens or is refused) or it failed without one. It is how the
 *   RBAC test lists what the operator really calls; it must not throw.
 * - `observeWrites` listeners see the parsed body of every successful POST/PUT/PATCH
 *   (the object the write produced, with its new resourceVersion) before the caller
 *   does. The Manager uses it to recognise the watch events of its own writes; a
 *   listener must be cheap and must not throw (an exception is swallowed).
 */
import { request as httpRequest, type IncomingMessage, type ClientRequest } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { KubeAccess } from './kubeconfig.ts';

/** A Kubernetes `Status` object (the body of API errors and watch ERROR events). */
export interface KubeStatus {
  kind?: string;
  apiVersion?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: unknown;
}

/** An API answer that was not 2xx, or a watch ERROR event. */
export class KubeApiError extends Error {
  readonly statusCode: number;
  readonly reason: string | undefined;
  readonly status: KubeStatus | undefined;
  constructor(what: string, statusCode: number, status?: KubeStatus) {
    super(`${what}: HTTP ${statusCode}${status?.reason ? ` ${status.reason}` : ''}${status?.message ? `: ${status.message}` : ''}`);
    this.name = 'KubeApiError';
    this.statusCode = statusCode;
    this.reason = status?.reason;
    this.status = status;
  }
}

/** The HTTP status code of a `KubeApiError` or a client-node `ApiException`, if any. */
export function statusCodeOf(err: unknown): number | undefined {
  if (err instanceof KubeApiError) return err.statusCode;
  const e = err as { statusCode?: unknown; code?: unknown } | null;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  return typeof e?.code === 'number' ? e.code : undefined;
}

export type QueryParams = Record<string, string | number | boolean | undefined>;

export interface JsonRequestOptions {
  query?: QueryParams;
  body?: unknown;
  /** Default application/json. */
  contentType?: string;
  signal?: AbortSignal;
  /** Abort the request after this long. Default: the client's requestTimeoutMs. */
  timeoutMs?: number;
}

export interface RawRequestOptions {
  query?: QueryParams;
  body?: Buffer | string;
  /** Default application/octet-stream when there is a body. */
  contentType?: string;
  /** Default application/json. */
  accept?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface RawResponse {
  statusCode: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

export interface StreamOptions {
  query?: QueryParams;
  signal: AbortSignal;
  /** The server answered 200; lines follow. */
  onOpen?: () => void;
  onLine: (line: string) => void;
  /** Destroy the stream if it is still open after this long (a safety net for half-open connections). */
  deadlineMs?: number;
}

/** One request as `onRequest` sees it. */
export interface KubeRequestRecord {
  method: string;
  /** The API path without the query, e.g. /api/v1/namespaces/a/pods/b. */
  path: string;
  query: QueryParams;
  /** Content-Type of the request body, if it had one. */
  contentType?: string;
  /** HTTP status of the answer; absent when the request failed without one. */
  statusCode?: number;
}

export interface KubeHttpOptions {
  /** Timeout of `json()` requests. Default 60 s. */
  requestTimeoutMs?: number;
  /** Observer of every request (see the module doc). */
  onRequest?: (request: KubeRequestRecord) => void;
}

function abortError(signal: AbortSignal): Error {
  const reason = signal.reason as unknown;
  if (reason instanceof Error) return reason;
  const err = new Error('The operation was aborted');
  err.name = 'AbortError';
  return err;
}

/** Sees the result of one successful write (see `KubeHttp.observeWrites`). */
export type WriteListener = (write: { method: string; path: string; object: unknown }) => void;

export class KubeHttp {
  readonly #kc: KubeAccess;
  readonly #requestTimeoutMs: number;
  readonly #onRequest: KubeHttpOptions['onRequest'];
  readonly #streams = new Set<ClientRequest>();
  readonly #writeListeners = new Set<WriteListener>();

  constructor(kc: KubeAccess, opts: KubeHttpOptions = {}) {
    this.#kc = kc;
    this.#requestTimeoutMs = opts.requestTimeoutMs ?? 60_000;
    this.#onRequest = opts.onRequest;
  }

  /** Calls `fn` with the result of every successful POST/PUT/PATCH; returns an unsubscribe function. */
  observeWrites(fn: WriteListener): () => void {
    this.#writeListeners.add(fn);
    return () => this.#writeListeners.delete(fn);
  }

  /** The API server URL of the current context. */
  get server(): string {
    const cluster = this.#kc.getCurrentCluster();
    if (!cluster) throw new Error('kube-http: the kubeconfig has no current cluster');
    return cluster.server;
  }

  async #prepare(method: string, path: string, query: QueryParams | undefined): Promise<{ url: URL; opts: RequestOptions }> {
    const url = new URL(this.server.replace(/\/+$/, '') + path);
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v !== undefined) url.searchParams.set(k, String(v));
    }
    const opts: RequestOptions = { method, headers: { Accept: 'application/json' } };
    await this.#kc.applyToHTTPSOptions(opts);
    return { url, opts };
  }

  #send(url: URL, opts: RequestOptions): ClientRequest {
    return url.protocol === 'http:' ? httpRequest(url, opts) : httpsRequest(url, opts);
  }

  /** One JSON request: 2xx with a JSON body resolves; anything else rejects (KubeApiError for an HTTP status). */
  async json<T>(method: string, path: string, o: JsonRequestOptions = {}): Promise<T> {
    const what = `${method} ${path}`;
    const payload = o.body === undefined ? undefined : Buffer.from(JSON.stringify(o.body));
    const res = await this.raw(method, path, {
      ...(payload ? { body: payload, contentType: o.contentType ?? 'application/json' } : {}),
      ...(o.query ? { query: o.query } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
    });
    const text = res.body.toString('utf8');
    let parsed: unknown;
    try {
      parsed = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    const code = res.statusCode;
    if (code >= 200 && code < 300) {
      if (parsed === undefined) throw new Error(`${what}: HTTP ${code} with a body that is not JSON: ${text.slice(0, 200)}`);
      if (method !== 'GET' && method !== 'DELETE' && this.#writeListeners.size > 0) {
        for (const l of this.#writeListeners) {
          try {
            l({ method, path, object: parsed });
          } catch {
            /* a listener must not break the request */
          }
        }
      }
      return parsed as T;
    }
    const status = parsed && typeof parsed === 'object' ? (parsed as KubeStatus) : { message: text.slice(0, 300) };
    throw new KubeApiError(what, code, status);
  }

  /**
   * One request whose answer is returned whatever its status (e.g. through the API
   * server's pod proxy, where the body is the proxied server's). Rejects only when no
   * answer came (network, timeout, abort).
   */
  async raw(method: string, path: string, o: RawRequestOptions = {}): Promise<RawResponse> {
    const { url, opts } = await this.#prepare(method, path, o.query);
    const payload = o.body === undefined ? undefined : Buffer.isBuffer(o.body) ? o.body : Buffer.from(o.body);
    const contentType = payload ? (o.contentType ?? 'application/octet-stream') : undefined;
    opts.headers = { ...opts.headers, ...(o.accept ? { Accept: o.accept } : {}), ...(o.headers ?? {}) };
    if (payload) opts.headers = { ...opts.headers, 'Content-Type': contentType, 'Content-Length': payload.length };
    let observed = false;
    const observe = (statusCode?: number) => {
      if (observed) return;
      observed = true;
      this.#onRequest?.({ method, path, query: o.query ?? {}, ...(contentType ? { contentType } : {}), ...(statusCode !== undefined ? { statusCode } : {}) });
    };
    const signals = [AbortSignal.timeout(o.timeoutMs ?? this.#requestTimeoutMs)];
    if (o.signal) signals.push(o.signal);
    const signal = AbortSignal.any(signals);
    if (signal.aborted) throw abortError(signal);
    return new Promise<RawResponse>((resolve, reject) => {
      const req = this.#send(url, opts);
      const onAbort = () => req.destroy(abortError(signal));
      signal.addEventListener('abort', onAbort, { once: true });
      const finish = () => signal.removeEventListener('abort', onAbort);
      req.on('error', (err) => {
        finish();
        observe();
        reject(err);
      });
      req.on('response', (res: IncomingMessage) => {
        observe(res.statusCode);
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => {
          finish();
          reject(err);
        });
        res.on('end', () => {
          finish();
          resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
        });
      });
      req.end(payload);
    });
  }

  /** A streaming GET (a watch): lines are delivered as they arrive. */
  async stream(path: string, o: StreamOptions): Promise<void> {
    const what = `GET ${path}`;
    const { url, opts } = await this.#prepare('GET', path, o.query);
    const signal = o.signal;
    if (signal.aborted) return;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const req = this.#send(url, opts);
      this.#streams.add(req);
      let deadline: NodeJS.Timeout | undefined;
      const settle = (err?: unknown) => {
        if (settled) return;
        settled = true;
        this.#streams.delete(req);
        signal.removeEventListener('abort', onAbort);
        if (deadline) clearTimeout(deadline);
        req.destroy();
        if (err === undefined) resolve();
        else reject(err);
      };
      const onAbort = () => settle();
      signal.addEventListener('abort', onAbort, { once: true });
      if (o.deadlineMs !== undefined) {
        deadline = setTimeout(() => settle(new Error(`${what}: stream still open after its ${o.deadlineMs} ms deadline`)), o.deadlineMs);
      }
      req.on('socket', (socket) => socket.setKeepAlive(true, 30_000));
      let answered = false;
      req.on('error', (err) => {
        if (!answered) this.#onRequest?.({ method: 'GET', path, query: o.query ?? {} });
        settle(err);
      });
      req.on('response', (res: IncomingMessage) => {
        answered = true;
        this.#onRequest?.({ method: 'GET', path, query: o.query ?? {}, ...(res.statusCode !== undefined ? { statusCode: res.statusCode } : {}) });
        const code = res.statusCode ?? 0;
        if (code !== 200) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) => settle(err));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let status: KubeStatus;
            try {
              status = JSON.parse(text) as KubeStatus;
            } catch {
              status = { message: text.slice(0, 300) };
            }
            settle(new KubeApiError(what, code, status));
          });
          return;
        }
        o.onOpen?.();
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          let nl: number;
          while (!settled && (nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (line.length > 0) o.onLine(line);
          }
        });
        res.on('aborted', () => settle(new Error(`${what}: the connection was closed mid-stream`)));
        res.on('error', (err) => settle(err));
        res.on('close', () => {
          if (!res.complete) settle(new Error(`${what}: the connection was closed mid-stream`));
          else settle();
        });
        res.on('end', () => settle());
      });
      req.end();
    });
  }

  /** Test hook: destroy the sockets of all open streams, as a network failure would. Returns how many. */
  destroyActiveStreams(): number {
    const n = this.#streams.size;
    for (const req of [...this.#streams]) {
      if (req.socket) req.socket.destroy();
      else req.destroy(new Error('connection destroyed (test hook)'));
    }
    return n;
  }
}
