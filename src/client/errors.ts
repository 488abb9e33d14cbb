/**
 * Errors of the EventLog client.
 *
 *   EventLogError                      every error the client throws (but an abort by your own signal)
 *   ├─ EventLogClientError             the server refused the request; never retried
 *   │  ├─ BadRequestError              400, 413 (payload_too_large), 415
 *   │  ├─ UnauthorizedError            401: no or a wrong bearer token
 *   │  ├─ NotFoundError                404
 *   │  ├─ GoneError                    410: retention removed events after your position (firstSequence)
 *   │  ├─ IdempotencyConflictError     422: the Idempotency-Key was used for a different request
 *   │  └─ StorageFullError             507: the log's volume is at its reserve (freeBytes, reserveBytes)
 *   ├─ EventLogUnavailableError        5xx or no answer (network, timeout), after the retries
 *   └─ ProducerClosedError, ProducerBufferFullError
 */

/** The JSON error body of the log server: `{"error": code, "message": ..., ...details}`. */
export type ErrorBody = Record<string, unknown> & { error?: string; message?: string };

export class EventLogError extends Error {
  override name = 'EventLogError';
}

/** The server answered with a 4xx (or 507): the request is wrong for this log and is never retried. */
export class EventLogClientError extends EventLogError {
  override name = 'EventLogClientError';
  /** HTTP status. */
  readonly status: number;
  /** The server's error code (`bad_request`, `unauthorized`, `gone`, `storage_full`, ...). */
  readonly code: string;
  readonly body: ErrorBody;
  constructor(status: number, body: ErrorBody, what: string) {
    super(`${what}: ${status} ${body.error ?? 'error'}: ${body.message ?? '(no message)'}`);
    this.status = status;
    this.code = typeof body.error === 'string' ? body.error : 'error';
    this.body = body;
  }
}

export class BadRequestError extends EventLogClientError {
  override name = 'BadRequestError';
}
export class UnauthorizedError extends EventLogClientError {
  override name = 'UnauthorizedError';
}
export class NotFoundError extends EventLogClientError {
  override name = 'NotFoundError';
}
export class IdempotencyConflictError extends EventLogClientError {
  override name = 'IdempotencyConflictError';
}

/** 410: events after the reader's position were removed by retention; `firstSequence` is the first one kept. */
export class GoneError extends EventLogClientError {
  override name = 'GoneError';
  readonly firstSequence: number;
  constructor(status: number, body: ErrorBody, what: string) {
    super(status, body, what);
    this.firstSequence = typeof body.firstSequence === 'number' ? body.firstSequence : NaN;
  }
}

/** 507: the log refuses appends until space is freed (retention, a bigger volume). Not retried. */
export class StorageFullError extends EventLogClientError {
  override name = 'StorageFullError';
  readonly freeBytes: number | undefined;
  readonly reserveBytes: number | undefined;
  constructor(status: number, body: ErrorBody, what: string) {
    super(status, body, what);
    this.freeBytes = typeof body.freeBytes === 'number' ? body.freeBytes : undefined;
    this.reserveBytes = typeof body.reserveBytes === 'number' ? body.reserveBytes : undefined;
  }
}

/** A 5xx or no answer at all, after every retry the policy allowed. */
export class EventLogUnavailableError extends EventLogError {
  override name = 'EventLogUnavailableError';
  /** Attempts made. */
  readonly attempts: number;
  /** HTTP status of the last answer; undefined when the last attempt got none (network, timeout). */
  readonly status: number | undefined;
  readonly body: ErrorBody | undefined;
  constructor(what: string, attempts: number, last: { status?: number; body?: ErrorBody; cause?: unknown }) {
    const why =
      last.status !== undefined
        ? `${last.status} ${last.body?.error ?? ''}${last.body?.message ? `: ${last.body.message}` : ''}`.trim()
        : last.cause instanceof Error
          ? describeCause(last.cause)
          : String(last.cause);
    super(`${what}: unavailable after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${why}`, last.cause !== undefined ? { cause: last.cause } : undefined);
    this.attempts = attempts;
    this.status = last.status;
    this.body = last.body;
  }
}

export class ProducerClosedError extends EventLogError {
  override name = 'ProducerClosedError';
}
export class ProducerBufferFullError extends EventLogError {
  override name = 'ProducerBufferFullError';
}

function describeCause(err: Error): string {
  const c = (err as { cause?: unknown }).cause;
  const inner = c instanceof Error ? ` (${(c as NodeJS.ErrnoException).code ?? c.message})` : '';
  return `${err.message}${inner}`;
}

/** The typed error of a refused request (4xx, 507). */
export function clientError(status: number, body: ErrorBody, what: string): EventLogClientError {
  switch (status) {
    case 401:
    case 403:
      return new UnauthorizedError(status, body, what);
    case 404:
      return new NotFoundError(status, body, what);
    case 410:
      return new GoneError(status, body, what);
    case 422:
      return new IdempotencyConflictError(status, body, what);
    case 507:
      return new StorageFullError(status, body, what);
    default:
      return status === 400 || status === 413 || status === 415 ? new BadRequestError(status, body, what) : new EventLogClientError(status, body, what);
  }
}

/** Statuses that are the request's fault (or a full log): never retried. */
export function isRefusal(status: number): boolean {
  return (status >= 400 && status < 500) || status === 507 || status === 501 || status === 505;
}
