/**
 * What the route modules share: the server's state as clients see it, the status body,
 * and the guards every route applies before touching the store.
 *
 * Guarantees:
 * - `state()` is the one place that maps the store's state plus a fatal error to what
 *   `/status`, `/readyz` and 503 bodies report (`recovering`, `ready`, `full`, `corrupt`,
 *   `failed`).
 * - `requireReadable` / `assertWritable` throw an HttpError (errors.ts) before a route
 *   has read the body or changed anything.
 */
import type { Logger } from '../common/logger.ts';
import type { RecoveryReport } from '../storage/report.ts';
import type { EventStore, RetentionSnapshot, StatsSnapshot, StorageSnapshot } from '../storage/store.ts';
import type { ServerConfig } from './config.ts';
import { HttpError } from './errors.ts';
import type { FollowerHub } from './follow.ts';
import type { ServerMetrics } from './metrics.ts';

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

/** Handed to every route module by startServer (app.ts). */
export interface RouteContext {
  store: EventStore;
  followers: FollowerHub;
  metrics: ServerMetrics;
  log: Logger;
  state(): ServerState;
  status(): StatusBody;
  /** True once close() began. */
  shuttingDown(): boolean;
  /** After a recovery (start-up or repair): reports corruption loudly. */
  onRecovered(report: RecoveryReport): void;
}

/** Reads need a finished recovery. */
export function requireReadable(ctx: RouteContext): void {
  if (ctx.state() === 'recovering') throw new HttpError(503, 'not_ready', 'recovery is still running');
}

/** The 503 of a store that is neither ready nor full (full is refused by the store: 507). */
export function assertWritable(ctx: RouteContext): never {
  const s = ctx.state();
  if (s === 'corrupt') {
    const c = ctx.store.report?.corruption;
    throw new HttpError(503, 'corrupt', `the log is corrupt (${c?.segment} offset ${c?.offset}: ${c?.reason}); writes are refused until it is repaired`);
  }
  if (s === 'failed') throw new HttpError(503, 'failed', 'the log stopped accepting writes after a storage failure');
  throw new HttpError(503, 'not_ready', `the log is not accepting writes (${ctx.store.state})`);
}
