/**
 * The log server: fastify HTTP API over one EventStore.
 *
 * startServer() locks the data dir (a held lock fails fast), starts listening (so
 * /healthz and /status answer while recovery runs), then recovers in the background.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import type { Socket } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { silentLogger, type Logger } from '../common/logger.ts';
import type { RecoveryReport } from '../storage/report.ts';
import {
  EventStore,
  StoreError,
  eventBodyJson,
  eventDraft,
  requestHash,
  type EventDraft,
  type RetentionSnapshot,
  type StatsSnapshot,
  type StorageSnapshot,
  type StoreIo,
} from '../storage/store.ts';
import { challenge, checkBearer, presentedCredentials, readTokenFile, routeNeedsToken, sha256, TOKEN_HEADER } from './auth.ts';
import { serverConfigSchema, type ServerConfig, type ServerConfigInput } from './config.ts';
import { FollowerHub } from './follow.ts';
import { createMetrics, type ServerMetrics } from './metrics.ts';
import { writeTerminationMessage } from './termination.ts';
import { MAX_WAIT_MS, parseWaitMs } from './units.ts';

export type ServerState = 'recovering' | 'ready' | 'full' | 'corrupt' | 'failed';

export interface StatusBody {
  state: ServerState;
  version: string;
  durability: ServerConfig['durability'];
  startedAt: string;
  bootId: string;
  /** null while the first recovery of this boot is still running. */
  recovery: RecoveryReport | null;
  stats: StatsSnapshot;
  /** Filesystem and log figures; absent only until the first statfs returned. */
  storage?: StorageSnapshot;
  retention: RetentionSnapshot;
  /** The last repair done by this boot (POST /admin/repair), if any. */
  repair?: { corruptionId: string; movedTo: string; bytesMoved: number };
}

export interface ServerHandle {
  url: string;
  host: string;
  port: number;
  bootId: string;
  store: EventStore;
  app: FastifyInstance;
  metrics: ServerMetrics;
  /** Long polls and event streams (follow.ts). */
  followers: FollowerHub;
  /** Resolves when the first recovery finished (ready or corrupt). */
  recovered: Promise<RecoveryReport>;
  status(): StatusBody;
  /** Stops accepting, finishes in-flight requests and commits, closes the store. */
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** Called on a storage write/fsync failure. Default: log only (the CLI exits non-zero). */
  onFatal?: (err: Error) => void;
  /** Fault injection for tests (the store's write/fdatasync/truncate/statfs). */
  io?: Partial<StoreIo>;
}

export const VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
})();

const IDEMPOTENCY_KEY_RE = /^[\x21-\x7e]{1,255}$/;

const readQuery = z.object({
  after: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
  wait: z.string().optional(),
});
const streamQuery = z.object({ after: z.coerce.number().int().min(0).default(0) });
const LAST_EVENT_ID_RE = /^\d{1,15}$/;
const repairBody = z.object({ corruptionId: z.string().min(1) });

class HttpError extends Error {
  readonly statusCode: number;
  readonly code: string;
  constructor(statusCode: number, code: string, message: string) {
    super(message);
    this.statusCode = statusCode;
    this.code = code;
  }
}

function storeErrorStatus(code: string): number {
  switch (code) {
    case 'idempotency_conflict':
      return 422;
    case 'repair_conflict':
      return 409;
    case 'corrupt':
    case 'failed':
    case 'not_ready':
      return 503;
    case 'storage_full':
      return 507;
    default:
      return 500;
  }
}

/** `[p0,p1,...]` in one allocation. */
function jsonArray(payloads: Buffer[]): Buffer {
  let len = Math.max(payloads.length, 1) + 1; // brackets and commas
  for (let i = 0; i < payloads.length; i++) len += payloads[i]!.length;
  const out = Buffer.allocUnsafe(len);
  out[0] = 0x5b; // [
  let at = 1;
  for (let i = 0; i < payloads.length; i++) {
    if (i > 0) out[at++] = 0x2c; // ,
    const p = payloads[i]!;
    out.set(p, at);
    at += p.length;
  }
  out[at] = 0x5d; // ]
  return out;
}

export async function startServer(input: ServerConfigInput, opts: StartOptions = {}): Promise<ServerHandle> {
  const config = serverConfigSchema.parse(input);
  const log = opts.logger ?? silentLogger;
  if (config.token !== undefined && config.tokenFile !== undefined) throw new Error('token and tokenFile are mutually exclusive');
  // Read before anything else: a bad token file must fail the start, never leave the API open.
  const token = config.token ?? (config.tokenFile !== undefined ? await readTokenFile(config.tokenFile) : undefined);
  const bootId = randomUUID();
  const startedAt = new Date().toISOString();
  let metrics: ServerMetrics | undefined;
  let fatal: Error | undefined;
  const store = new EventStore({
    dataDir: config.dataDir,
    durability: config.durability,
    fsyncIntervalMs: config.fsyncIntervalMs,
    ...(config.segmentBytes !== undefined ? { segmentMaxBytes: config.segmentBytes } : {}),
    reserve: config.storageReserve,
    maxAppendBytes: config.maxBodyBytes,
    ...(config.retentionMaxAge !== undefined || config.retentionMaxBytes !== undefined
      ? {
          retention: {
            ...(config.retentionMaxAge !== undefined ? { maxAgeMs: config.retentionMaxAge * 1000 } : {}),
            ...(config.retentionMaxBytes !== undefined ? { maxBytes: config.retentionMaxBytes } : {}),
          },
        }
      : {}),
    logger: log,
    ...(opts.io !== undefined ? { io: opts.io } : {}),
    onCommit: (info) => metrics?.onCommit(info),
    onFatal: (err) => {
      fatal = err;
      writeTerminationMessage(config.terminationMessagePath, { state: 'failed', bootId, error: err.message }, log);
      opts.onFatal?.(err);
    },
  });
  await store.lockDir();
  const followers = new FollowerHub({ store, log, heartbeatMs: config.streamHeartbeatMs });

  const state = (): ServerState => {
    if (fatal !== undefined || store.state === 'failed') return 'failed';
    if (store.report === undefined || store.state === 'recovering') return 'recovering';
    return store.state === 'corrupt' ? 'corrupt' : store.state === 'full' ? 'full' : 'ready';
  };
  metrics = createMetrics(() => store, state, () => followers);
  const status = (): StatusBody => {
    const body: StatusBody = {
      state: state(),
      version: VERSION,
      durability: config.durability,
      startedAt,
      bootId,
      recovery: store.report ?? null,
      stats: store.stats(),
      retention: store.retentionStatus(),
    };
    const storage = store.storage();
    if (storage !== undefined) body.storage = storage;
    if (store.lastRepair !== undefined) body.repair = store.lastRepair;
    return body;
  };

  const app = Fastify({ logger: false, bodyLimit: config.maxBodyBytes, return503OnClosing: true });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(['application/json', 'application/x-ndjson'], { parseAs: 'buffer' }, (_req, body, done) => {
    done(null, body);
  });

  const tokenHash = token === undefined ? undefined : sha256(token);
  // Hooks are registered only when they have work to do, and synchronously (callback
  // style): every hook costs each request a hook-runner pass, an async one also promises.
  if (tokenHash !== undefined) {
    app.addHook('onRequest', (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
      // The matched route pattern (undefined: no route), not the raw URL (auth.ts).
      if (!routeNeedsToken(req.routeOptions.url)) return done();
      const r = checkBearer(presentedCredentials(req.headers.authorization, req.headers[TOKEN_HEADER]), tokenHash);
      if (r.ok) return done();
      reply.header('www-authenticate', challenge(r.reason));
      done(new HttpError(401, 'unauthorized', r.reason === 'missing' ? 'this endpoint needs "Authorization: Bearer <token>"' : 'the bearer token is not valid'));
    });
  }
  let shuttingDown = false;
  app.addHook('onSend', (_req, reply, payload, done) => {
    // Responses finishing during shutdown must not leave keep-alive sockets behind.
    if (shuttingDown) reply.header('connection', 'close');
    done(null, payload);
  });
  app.addHook('onResponse', (req, reply, done) => {
    metrics?.httpRequest(req.routeOptions.url ?? 'unknown', req.method, reply.statusCode);
    done();
  });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    let status = 500;
    let code = 'internal';
    if (err instanceof HttpError) {
      status = err.statusCode;
      code = err.code;
    } else if (err instanceof StoreError) {
      status = storeErrorStatus(err.code);
      code = err.code;
    } else if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      status = err.statusCode;
      code =
        status === 413 ? 'payload_too_large' : status === 415 ? 'unsupported_media_type' : status === 400 ? 'bad_request' : (err.code ?? 'client_error');
    }
    if (status >= 500 && !(err instanceof StoreError)) log.error({ err, url: req.url }, 'request failed');
    const body: Record<string, unknown> = { error: code, message: err.message };
    if (err instanceof StoreError && err.details !== undefined) Object.assign(body, err.details);
    if (status === 503) body.state = state();
    void reply.code(status).type('application/json; charset=utf-8').send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` });
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const s = state();
    // Full stays ready: reads still work, so the pod stays in the Service (docs/server.md).
    const ready = (s === 'ready' && store.state === 'ready') || (s === 'full' && store.state === 'full');
    return reply.code(ready ? 200 : 503).send({ ready, state: s });
  });
  app.get('/metrics', async (_req, reply) => {
    const text = await metrics!.registry.metrics();
    return reply.type(metrics!.registry.contentType).send(text);
  });
  app.get('/status', async () => status());
  app.get('/v1/status', async () => status());
  app.get('/stats', async () => store.stats());

  app.post('/events', async (req, reply) => {
    // Full: the store refuses (507), after an idempotent replay had its chance (needs no space).
    if (store.state !== 'ready' && store.state !== 'full') assertWritable();
    const body = req.body;
    if (!Buffer.isBuffer(body)) throw new HttpError(400, 'bad_request', 'a request body is required');
    if (!isUtf8(body)) throw new HttpError(400, 'invalid_utf8', 'the body is not valid UTF-8');
    const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const keyHeader = req.headers['idempotency-key'];
    let key: string | undefined;
    if (keyHeader !== undefined) {
      if (typeof keyHeader !== 'string' || !IDEMPOTENCY_KEY_RE.test(keyHeader)) {
        throw new HttpError(400, 'bad_request', 'Idempotency-Key must be 1 to 255 visible ASCII characters');
      }
      key = keyHeader;
    }
    const text = body.toString('utf8');
    const createdAt = new Date().toISOString();
    let events: EventDraft[];
    const batch = ct === 'application/x-ndjson';
    if (!batch) {
      events = [eventDraft(eventBodyJson(parseObject(text, 'the body')), createdAt)];
    } else {
      events = [];
      const lines = text.split('\n');
      for (let i = 0; i < lines.length; i++) {
        const line = lines[i]!.trim();
        if (line === '') continue;
        events.push(eventDraft(eventBodyJson(parseObject(line, `line ${i + 1}`)), createdAt));
      }
      if (events.length === 0) throw new HttpError(400, 'bad_request', 'the NDJSON batch has no events');
    }
    const res = await store.append({
      events,
      batch,
      ...(key !== undefined ? { idempotencyKey: key, requestHash: requestHash(ct, body) } : {}),
    });
    reply.code(res.replayed ? 200 : 201).type('application/json; charset=utf-8');
    if (res.replayed) reply.header('idempotent-replayed', 'true');
    if (!res.batch) return reply.send(res.payloads[0]);
    return reply.send(jsonArray(res.payloads));
  });

  app.get('/events/:id', async (req, reply) => {
    requireReadable();
    const { id } = req.params as { id: string };
    const payload = await store.getById(id);
    if (payload === undefined) {
      const first = store.firstSequence;
      const note = first > 1 ? ` (retention removed the events before sequence ${first}; their ids are forgotten)` : '';
      throw new HttpError(404, 'not_found', `no event with id ${JSON.stringify(id)}${note}`);
    }
    return reply.type('application/json; charset=utf-8').send(payload);
  });

  /** 410 body when `after + 1` is before the first retained sequence, else undefined. */
  function goneBody(after: number): Record<string, unknown> | undefined {
    const first = store.firstSequence;
    if (after + 1 >= first) return undefined;
    // Never a silent skip: the reader must learn that events it has not seen are gone.
    return { error: 'gone', message: `events after ${after} up to ${first - 1} were removed by retention; the first retained sequence is ${first}: read on with after=${first - 1}`, firstSequence: first };
  }
  function badQuery(error: z.ZodError): HttpError {
    const issue = error.issues[0]!;
    return new HttpError(400, 'bad_request', `query ${issue.path.join('.')}: ${issue.message}`);
  }

  app.get('/events', async (req, reply) => {
    requireReadable();
    const q = readQuery.safeParse(req.query);
    if (!q.success) throw badQuery(q.error);
    const { after, limit } = q.data;
    let waitMs = 0;
    if (q.data.wait !== undefined) {
      const w = parseWaitMs(q.data.wait);
      if (w === undefined) {
        throw new HttpError(400, 'bad_request', `query wait: expected milliseconds (1500) or a duration (30s, 500ms) of at most ${MAX_WAIT_MS / 1000}s, got ${JSON.stringify(q.data.wait)}`);
      }
      waitMs = w;
    }
    const gone = goneBody(after);
    if (gone !== undefined) return reply.code(410).type('application/json; charset=utf-8').send(gone);
    let payloads = await store.readAfter(after, limit);
    if (payloads.length === 0 && waitMs > 0) {
      // Long poll: answered by the next commit that publishes an event after `after`.
      const ac = new AbortController();
      const onClose = () => ac.abort();
      reply.raw.once('close', onClose);
      const page = await followers.waitFor(after, limit, waitMs, ac.signal);
      reply.raw.off('close', onClose);
      if (page !== undefined) payloads = page.length > 0 ? page : await store.readAfter(after, limit);
    }
    const parts: Buffer[] = [];
    const nl = Buffer.from('\n');
    for (const p of payloads) parts.push(p, nl);
    return reply.type('application/x-ndjson; charset=utf-8').send(Buffer.concat(parts));
  });

  app.get('/events/stream', async (req, reply) => {
    requireReadable();
    const q = streamQuery.safeParse(req.query);
    if (!q.success) throw badQuery(q.error);
    let after = q.data.after;
    const lastId = req.headers['last-event-id'];
    if (lastId !== undefined) {
      // The header wins: EventSource reconnects to the same URL (the first `after`) and sends it.
      if (typeof lastId !== 'string' || !LAST_EVENT_ID_RE.test(lastId.trim())) throw new HttpError(400, 'bad_request', 'Last-Event-ID must be the sequence of the last event received (a non-negative integer)');
      after = Number(lastId.trim());
    }
    const gone = goneBody(after);
    if (gone !== undefined) return reply.code(410).type('application/json; charset=utf-8').send(gone);
    if (followers.closed || shuttingDown) throw new HttpError(503, 'not_ready', 'the server is shutting down');
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
      // One stream per connection: the socket goes when the stream ends.
      connection: 'close',
    });
    req.raw.socket.setNoDelay(true);
    req.raw.socket.setKeepAlive(true, 30_000);
    res.write(`retry: 1000\n: events after ${after}\n\n`);
    metrics?.httpRequest('/events/stream', 'GET', 200);
    followers.addStream(res, after);
  });

  app.post('/admin/repair', async (req, reply) => {
    const body = req.body;
    let parsed: unknown;
    try {
      parsed = Buffer.isBuffer(body) ? JSON.parse(body.toString('utf8')) : undefined;
    } catch {
      throw new HttpError(400, 'bad_request', 'the body is not valid JSON');
    }
    const r = repairBody.safeParse(parsed);
    if (!r.success) throw new HttpError(400, 'bad_request', 'expected {"corruptionId": "<id from /status>"}');
    log.warn({ corruptionId: r.data.corruptionId }, 'repair requested over HTTP');
    const report = await store.repair(r.data.corruptionId);
    metrics?.onRecovery(report);
    onRecovered(report);
    return reply.code(200).send(status());
  });

  function requireReadable(): void {
    if (state() === 'recovering') throw new HttpError(503, 'not_ready', 'recovery is still running');
  }
  function assertWritable(): void {
    const s = state();
    if (s === 'corrupt') {
      const c = store.report?.corruption;
      throw new HttpError(503, 'corrupt', `the log is corrupt (${c?.segment} offset ${c?.offset}: ${c?.reason}); writes are refused until it is repaired`);
    }
    if (s === 'failed') throw new HttpError(503, 'failed', 'the log stopped accepting writes after a storage failure');
    throw new HttpError(503, 'not_ready', `the log is not accepting writes (${store.state})`);
  }
  function parseObject(text: string, what: string): Record<string, unknown> {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (err) {
      throw new HttpError(400, 'invalid_json', `${what} is not valid JSON: ${(err as Error).message}`);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HttpError(400, 'not_an_object', `${what} must be a JSON object`);
    return v as Record<string, unknown>;
  }
  function onRecovered(report: RecoveryReport): void {
    if (report.outcome === 'CorruptionDetected') {
      log.fatal({ recovery: report, bootId }, 'CORRUPTION DETECTED in the event log: writes refused until a human repairs it (POST /admin/repair or `eventlog-server repair`)');
      writeTerminationMessage(config.terminationMessagePath, { state: 'corrupt', bootId, recovery: report }, log);
    }
  }

  const sockets = new Set<Socket>();
  app.server.on('connection', (sock: Socket) => {
    sockets.add(sock);
    sock.once('close', () => sockets.delete(sock));
  });
  await app.listen({ host: config.host, port: config.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : config.port;
  const urlHost = config.host.includes(':') ? `[${config.host}]` : config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
  log.info({ host: config.host, port, bootId, durability: config.durability, auth: token !== undefined ? 'bearer' : 'none' }, 'listening');

  const recovered = store.recover().then(
    (report) => {
      metrics?.onRecovery(report);
      onRecovered(report);
      return report;
    },
    (err: unknown) => {
      const e = err instanceof Error ? err : new Error(String(err));
      log.fatal({ err: e }, 'recovery failed');
      fatal = e;
      writeTerminationMessage(config.terminationMessagePath, { state: 'failed', bootId, error: `recovery failed: ${e.message}` }, log);
      opts.onFatal?.(e);
      throw e;
    },
  );
  recovered.catch(() => undefined);

  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${port}`,
    host: config.host,
    port,
    bootId,
    store,
    app,
    metrics,
    followers,
    recovered,
    status,
    close() {
      closing ??= (async () => {
        shuttingDown = true;
        // server.close() only reaps sockets idle at that instant; keep reaping the ones that
        // go idle after their in-flight response, or close() would wait for keep-alive timeouts.
        // A connection that never sent a byte is not "idle" to node (no request ended on it)
        // and would hold close() until the client drops it: such sockets go too.
        const reaper = setInterval(() => {
          app.server.closeIdleConnections();
          for (const sock of sockets) if (sock.bytesRead === 0) sock.destroy();
        }, 50);
        try {
          const closed = app.close();
          // Long polls get their (empty) page now, streams a final `event: shutdown`.
          await followers.close();
          await closed;
        } finally {
          clearInterval(reaper);
        }
        await recovered.catch(() => undefined);
        await store.close();
      })();
      return closing;
    },
  };
}
