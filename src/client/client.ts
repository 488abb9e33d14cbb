/**
 * EventLogClient: appends, reads, long polls and follows one EventLog's log server over
 * HTTP, with Node's built-in `fetch` and nothing else.
 *
 * Guarantees:
 * - An append is retried only when that is safe: every append (and every batch) carries
 *   an Idempotency-Key that the client draws once per logical append and resends,
 *   with the same bytes, on each retry. A retry after a lost answer is therefore a
 *   replay on the server (`200`, the original event), never a second event.
 * - 4xx answers and 507 are refusals: thrown at once as an `EventLogClientError`
 *   subclass, never retried. 5xx answers and failures without an answer (connection
 *   refused or reset, timeout) are retried with exponential back-off and jitter, bounded
 *   by `retry.attempts` and `retry.maxElapsedMs`; then `EventLogUnavailableError`.
 * - `follow()` yields every event after its start position exactly once, in sequence
 *   order, across disconnects and server restarts: it reconnects with back-off and
 *   `Last-Event-ID` = the last sequence it yielded. It ends with `GoneError` when the
 *   events it has not read were removed by retention (never a silent skip).
 *
 * Caveats: events come back as `JSON.parse` reads them (integers above 2^53 lose
 * precision, as on the server); a read or follow sees only acknowledged events, so in
 * the server's `interval`/`none` durability modes a power loss can take back events a
 * follower already saw.
 */
import { clientError, EventLogError, EventLogUnavailableError, GoneError, isRefusal, type ErrorBody } from './errors.ts';
import { eventLine } from './lines.ts';
import { Producer, type ProducerOptions } from './producer.ts';
import { abortReason, backoffMs, retryPolicy, sleep, type RetryPolicy } from './retry.ts';
import { SseParser } from './sse.ts';

/** A client event: any JSON object. `id`, `createdAt` and `sequence` are assigned by the server. */
export type EventData = Record<string, unknown>;

/** An event as stored: the client's fields plus the server's id, createdAt and sequence. */
export type StoredEvent<T extends EventData = EventData> = Omit<T, 'id' | 'createdAt' | 'sequence'> & {
  id: string;
  createdAt: string;
  sequence: number;
};

export interface EventLogClientOptions {
  /** Base URL of the log server, e.g. `http://orders.default.svc:8080` (status.endpoint). */
  url: string;
  /** Bearer token (the Secret named in status.tokenSecret). */
  token?: string;
  /** Retries of transient failures (5xx, network, timeouts). */
  retry?: Partial<RetryPolicy>;
  /** Timeout of one attempt (default 30 s; long polls add their wait). */
  requestTimeoutMs?: number;
  /** A fetch implementation (default the global one). */
  fetch?: typeof fetch;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
}

export interface AppendOptions {
  /** Your own key (1..255 visible ASCII): the same key and bytes later are a replay. Default: a random UUID. */
  idempotencyKey?: string;
  signal?: AbortSignal;
}

export interface ReadOptions {
  signal?: AbortSignal;
}

export interface PollOptions extends ReadOptions {
  /** How long the server holds the request when nothing is there yet (default 30 s, at most 60 s). */
  waitMs?: number;
  /** Most events per answer (default 1000, at most 10000). */
  limit?: number;
}

export interface FollowOptions {
  /** Stops the iterator (it then returns without an error). Breaking out of `for await` works too. */
  signal?: AbortSignal;
  /** Reconnect back-off (default 100 ms doubling to 5 s, with jitter). */
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number; /** default: unlimited */ attempts?: number };
  /**
   * Reconnect when the stream stays silent this long (default 45 s: three missed
   * heartbeats of a server with the default 15 s): a half-open connection is not
   * waited on forever. The clock does not run while your loop body runs.
   */
  idleTimeoutMs?: number;
  /** Called before each reconnect (for logs and metrics). */
  onReconnect?: (info: { attempt: number; after: number; delayMs: number; error: unknown }) => void;
}

/** A response that is not 2xx: refused (thrown, not retried) or transient (retried). */
class Transient extends Error {
  readonly status: number | undefined;
  readonly body: ErrorBody | undefined;
  constructor(status: number | undefined, body: ErrorBody | undefined, cause?: unknown) {
    super(status === undefined ? 'no answer' : `HTTP ${status}`, cause !== undefined ? { cause } : undefined);
    this.status = status;
    this.body = body;
  }
}

async function errorBody(res: Response): Promise<ErrorBody> {
  const text = await res.text().catch(() => '');
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as ErrorBody;
  } catch {
    // not JSON
  }
  return { error: `http_${res.status}`, message: text.slice(0, 300) || res.statusText };
}

function parseNdjson(text: string): StoredEvent[] {
  const out: StoredEvent[] = [];
  let start = 0;
  while (start < text.length) {
    let nl = text.indexOf('\n', start);
    if (nl === -1) nl = text.length;
    if (nl > start) out.push(JSON.parse(text.slice(start, nl)) as StoredEvent);
    start = nl + 1;
  }
  return out;
}

export class EventLogClient {
  readonly url: string;
  readonly retry: RetryPolicy;
  readonly #token: string | undefined;
  readonly #timeoutMs: number;
  readonly #fetchFn: typeof fetch;
  readonly #extraHeaders: Record<string, string>;

  constructor(opts: EventLogClientOptions) {
    if (typeof opts?.url !== 'string' || !/^https?:\/\//.test(opts.url)) throw new TypeError(`EventLogClient: url must be an http(s) URL, got ${JSON.stringify(opts?.url)}`);
    this.url = opts.url.replace(/\/+$/, '');
    this.#token = opts.token;
    this.retry = retryPolicy(opts.retry);
    this.#timeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.#fetchFn = opts.fetch ?? globalThis.fetch;
    this.#extraHeaders = { ...opts.headers };
  }

  #headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { ...this.#extraHeaders, ...extra };
    if (this.#token !== undefined) h.authorization = `Bearer ${this.#token}`;
    return h;
  }

  /**
   * One request with the retry policy. `retryable`: whether a transient failure may be
   * retried (reads, and appends with an idempotency key: all of ours). Resolves with the
   * 2xx response; its body is not read yet.
   */
  async #request(what: string, path: string, init: { method: string; headers?: Record<string, string>; body?: string }, o: { signal?: AbortSignal | undefined; timeoutMs?: number }): Promise<Response> {
    const started = Date.now();
    const policy = this.retry;
    let last: Transient | undefined;
    for (let attempt = 1; ; attempt++) {
      if (o.signal?.aborted) throw abortReason(o.signal);
      const timeout = AbortSignal.timeout(o.timeoutMs ?? this.#timeoutMs);
      const signal = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout;
      try {
        let res: Response;
        try {
          res = await this.#fetchFn(this.url + path, { method: init.method, headers: this.#headers(init.headers), ...(init.body !== undefined ? { body: init.body } : {}), signal });
        } catch (err) {
          if (o.signal?.aborted) throw abortReason(o.signal);
          throw new Transient(undefined, undefined, err);
        }
        if (res.status < 400) return res;
        const body = await errorBody(res);
        if (isRefusal(res.status)) throw clientError(res.status, body, what);
        throw new Transient(res.status, body);
      } catch (err) {
        if (!(err instanceof Transient)) throw err;
        last = err;
      }
      const delay = backoffMs(policy, attempt);
      if (attempt >= policy.attempts || Date.now() + delay - started > policy.maxElapsedMs) {
        throw new EventLogUnavailableError(what, attempt, { ...(last.status !== undefined ? { status: last.status } : {}), ...(last.body !== undefined ? { body: last.body } : {}), cause: last.cause });
      }
      await sleep(delay, o.signal);
    }
  }

  /**
   * Appends one event; resolves with the stored event once it is durable. Transient
   * failures are retried with the same Idempotency-Key, so the event is stored once.
   */
  async append<T extends EventData>(event: T, opts: AppendOptions = {}): Promise<StoredEvent<T>> {
    const body = eventLine(event);
    const key = opts.idempotencyKey ?? crypto.randomUUID();
    const res = await this.#request('append', '/events', { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': key }, body }, { signal: opts.signal });
    return (await res.json()) as StoredEvent<T>;
  }

  /**
   * Appends events as one all-or-nothing batch (NDJSON); resolves with the stored events
   * in order. Retried like `append`, with one Idempotency-Key for the batch.
   */
  async appendBatch<T extends EventData>(events: T[], opts: AppendOptions = {}): Promise<StoredEvent<T>[]> {
    if (events.length === 0) return [];
    return (await this.appendLines(events.map(eventLine), opts)) as StoredEvent<T>[];
  }

  /** @internal A batch of lines made by eventLine (the producer's path). */
  async appendLines(lines: string[], opts: AppendOptions = {}): Promise<StoredEvent[]> {
    const key = opts.idempotencyKey ?? crypto.randomUUID();
    const res = await this.#request('append batch', '/events', { method: 'POST', headers: { 'content-type': 'application/x-ndjson', 'idempotency-key': key }, body: lines.join('\n') + '\n' }, { signal: opts.signal });
    const stored = (await res.json()) as StoredEvent[];
    if (!Array.isArray(stored) || stored.length !== lines.length) throw new EventLogError(`append batch: the server returned ${Array.isArray(stored) ? stored.length : 'no'} events for ${lines.length}`);
    return stored;
  }

  /** Up to `limit` retained events with sequence > `after`, in order ([] at the end of the log). */
  async read(after = 0, limit = 1000, opts: ReadOptions = {}): Promise<StoredEvent[]> {
    const res = await this.#request('read', `/events?after=${after}&limit=${limit}`, { method: 'GET' }, { signal: opts.signal });
    return parseNdjson(await res.text());
  }

  /**
   * A long poll: like `read`, but when nothing after `after` is there yet the server
   * answers as soon as an event is durable, or with [] after `waitMs`.
   */
  async poll(after = 0, opts: PollOptions = {}): Promise<StoredEvent[]> {
    const waitMs = Math.round(opts.waitMs ?? 30_000);
    const limit = opts.limit ?? 1000;
    const res = await this.#request('poll', `/events?after=${after}&limit=${limit}&wait=${waitMs}`, { method: 'GET' }, { signal: opts.signal, timeoutMs: this.#timeoutMs + waitMs });
    return parseNdjson(await res.text());
  }

  /** The server's /status document. */
  async status(opts: ReadOptions = {}): Promise<Record<string, unknown>> {
    const res = await this.#request('status', '/status', { method: 'GET' }, { signal: opts.signal });
    return (await res.json()) as Record<string, unknown>;
  }

  /**
   * Follows the log from `after` (exclusive) over Server-Sent Events: an endless async
   * iterator of stored events, in order, each once. Reconnects by itself (back-off,
   * `Last-Event-ID`); throws GoneError when retention removed events it has not read,
   * an EventLogClientError for other refusals (401, ...), EventLogUnavailableError only
   * when `reconnect.attempts` is set and used up.
   */
  async *follow<T extends EventData = EventData>(after = 0, opts: FollowOptions = {}): AsyncGenerator<StoredEvent<T>, void, undefined> {
    const policy = { initialDelayMs: opts.reconnect?.initialDelayMs ?? 100, maxDelayMs: opts.reconnect?.maxDelayMs ?? 5000 };
    const maxAttempts = opts.reconnect?.attempts ?? Infinity;
    const idleMs = opts.idleTimeoutMs ?? 45_000;
    const outer = opts.signal;
    let last = after;
    let failures = 0;
    const decoder = new TextDecoder();
    for (;;) {
      if (outer?.aborted) return;
      const ac = new AbortController();
      const onOuter = () => ac.abort(abortReason(outer!));
      outer?.addEventListener('abort', onOuter, { once: true });
      let idle: NodeJS.Timeout | undefined;
      const arm = () => {
        clearTimeout(idle);
        idle = setTimeout(() => ac.abort(new EventLogError(`follow: no bytes for ${idleMs} ms`)), idleMs);
      };
      let error: unknown;
      try {
        arm();
        let res: Response;
        try {
          res = await this.#fetchFn(`${this.url}/events/stream?after=${last}`, { headers: this.#headers({ accept: 'text/event-stream', 'last-event-id': String(last) }), signal: ac.signal });
        } catch (err) {
          throw new Transient(undefined, undefined, err);
        }
        if (res.status !== 200) {
          const body = await errorBody(res);
          if (isRefusal(res.status)) throw clientError(res.status, body, 'follow');
          throw new Transient(res.status, body);
        }
        if (res.body === null) throw new Transient(res.status, undefined, new Error('no body'));
        const parser = new SseParser();
        const reader = res.body.getReader();
        try {
          for (;;) {
            let chunk: Awaited<ReturnType<typeof reader.read>>;
            try {
              chunk = await reader.read();
            } catch (err) {
              throw new Transient(undefined, undefined, err);
            }
            if (chunk.done) break;
            const events = parser.push(decoder.decode(chunk.value, { stream: true }));
            failures = 0; // connected and hearing from the server
            for (const ev of events) {
              if (ev.event === 'message') {
                const seq = ev.id === undefined ? NaN : Number(ev.id);
                if (!(seq > last)) continue; // never twice
                const data = JSON.parse(ev.data) as StoredEvent<T>;
                last = seq;
                clearTimeout(idle);
                yield data;
                if (outer?.aborted) return;
              } else if (ev.event === 'gone') {
                throw new GoneError(410, JSON.parse(ev.data) as ErrorBody, 'follow');
              } else if (ev.event === 'shutdown') {
                throw new Transient(503, JSON.parse(ev.data) as ErrorBody);
              }
            }
            arm();
          }
          throw new Transient(undefined, undefined, new Error('the server ended the stream'));
        } finally {
          reader.cancel().catch(() => undefined);
        }
      } catch (err) {
        if (outer?.aborted) return;
        if (!(err instanceof Transient)) throw err;
        error = err;
      } finally {
        clearTimeout(idle);
        outer?.removeEventListener('abort', onOuter);
        ac.abort();
      }
      failures++;
      if (failures >= maxAttempts) {
        const t = error as Transient;
        throw new EventLogUnavailableError('follow', failures, { ...(t.status !== undefined ? { status: t.status } : {}), ...(t.body !== undefined ? { body: t.body } : {}), cause: t.cause ?? t });
      }
      const delayMs = backoffMs(policy, failures);
      opts.onReconnect?.({ attempt: failures, after: last, delayMs, error: (error as Transient).cause ?? error });
      try {
        await sleep(delayMs, outer);
      } catch {
        return;
      }
    }
  }

  /** A batching producer over this client (see Producer). */
  producer(opts: ProducerOptions = {}): Producer {
    return new Producer(this, opts);
  }
}
