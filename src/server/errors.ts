/**
 * Error mapping of the HTTP API: every failure leaves as a JSON body
 * `{"error": code, "message": ...}` with a status that says whose fault it is.
 *
 * Guarantees:
 * - Client mistakes are 4xx: HttpError carries its own status; fastify's own 4xx (body
 *   too large, unsupported media type, malformed request) keep their status with a code.
 * - Store refusals map by code: idempotency_conflict 422, repair_conflict 409,
 *   corrupt / failed / not_ready 503 (with the server `state`), storage_full 507 (with
 *   the StoreError's details, e.g. freeBytes/reserveBytes).
 * - Anything else is a 500 `internal`, logged with the URL (store errors are logged by
 *   the store itself).
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../common/logger.ts';
import { StoreError } from '../storage/store.ts';
import type { ServerState } from './context.ts';

export class HttpError extends Error {
  readonly statusCode: number;
  readonly code: string;
  constructor(statusCode: number, code: string, message: string) {
    super(message);
    this.statusCode = statusCode;
    this.code = code;
  }
}

export function storeErrorStatus(code: string): number {
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

/** Installs the error handler (JSON bodies as above) and the JSON 404 for unknown routes. */
export function installErrorHandlers(app: FastifyInstance, log: Logger, state: () => ServerState): void {
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
}
