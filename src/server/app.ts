/**
 * The log server: fastify HTTP API over one EventStore. This module composes it: the
 * store, the hooks (auth, shutdown, request metrics), the routes (append-route.ts,
 * read-routes.ts, stream-route.ts, status-routes.ts, repair-route.ts; errors as JSON:
 * errors.ts), listening, recovery and shutdown.
 *
 * startServer() locks the data dir (a held lock fails fast), starts listening (so
 * /healthz and /status answer while recovery runs), then recovers in the background.
 *
 * Guarantees: a bad token file fails the start (the API is never left open by mistake);
 * close() stops accepting, answers in-flight requests, long polls and streams, finishes
 * the in-flight commits and closes the store, in that order, within bounded time.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { silentLogger, type Logger } from '../common/logger.ts';
import type { RecoveryReport } from '../storage/report.ts';
import { EventStore, type StoreIo } from '../storage/store.ts';
import { registerAppendRoute } from './append-route.ts';
import { challenge, checkBearer, presentedCredentials, readTokenFile, routeNeedsToken, sha256, TOKEN_HEADER } from './auth.ts';
import { serverConfigSchema, type ServerConfigInput } from './config.ts';
import type { RouteContext, ServerState, StatusBody } from './context.ts';
import { HttpError, installErrorHandlers } from './errors.ts';
import { FollowerHub } from './follow.ts';
import { createMetrics, type ServerMetrics } from './metrics.ts';
import { registerReadRoutes } from './read-routes.ts';
import { registerRepairRoute } from './repair-route.ts';
import { registerStatusRoutes } from './status-routes.ts';
import { registerStreamRoute } from './stream-route.ts';
import { writeTerminationMessage } from './termination.ts';

export type { ServerState, StatusBody } from './context.ts';

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

  installErrorHandlers(app, log, state);

  const ctx: RouteContext = { store, followers, metrics, log, state, status, shuttingDown: () => shuttingDown, onRecovered };
  registerStatusRoutes(app, ctx);
  registerAppendRoute(app, ctx);
  registerReadRoutes(app, ctx);
  registerStreamRoute(app, ctx);
  registerRepairRoute(app, ctx);

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
