/**
 * `eventlog-operator/client`: a typed client for EventLog log servers (docs/client.md).
 * Runtime dependencies: none beyond Node's built-in fetch; `fromEventLog` lazily loads
 * `@kubernetes/client-node` for the cluster look-up.
 *
 * ```ts
 * import { createClient } from 'eventlog-operator/client';
 * const log = createClient({ url: 'http://orders.default.svc:8080', token });
 * const stored = await log.append({ type: 'order.created', orderId: 42 });
 * for await (const e of log.follow(0)) console.log(e.sequence, e.type);
 * ```
 */
import { EventLogClient, type EventLogClientOptions } from './client.ts';

export { EventLogClient } from './client.ts';
export type { AppendOptions, EventData, EventLogClientOptions, FollowOptions, PollOptions, ReadOptions, StoredEvent } from './client.ts';
export { Producer } from './producer.ts';
export type { ProducerOptions, ProducerStats } from './producer.ts';
export { DEFAULT_RETRY } from './retry.ts';
export type { RetryPolicy } from './retry.ts';
export { discoverEventLog, fromEventLog } from './discovery.ts';
export type { EventLogEndpoint, FromEventLogOptions } from './discovery.ts';
export {
  BadRequestError,
  EventLogClientError,
  EventLogError,
  EventLogUnavailableError,
  GoneError,
  IdempotencyConflictError,
  NotFoundError,
  ProducerBufferFullError,
  ProducerClosedError,
  StorageFullError,
  UnauthorizedError,
} from './errors.ts';
export type { ErrorBody } from './errors.ts';

/** Same as `new EventLogClient(opts)`. */
export function createClient(opts: EventLogClientOptions): EventLogClient {
  return new EventLogClient(opts);
}
