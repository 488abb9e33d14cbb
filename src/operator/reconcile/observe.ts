/**
 * Observing the log server: `GET /status` on the pod's IP with the EventLog's token.
 * Remembers, per EventLog and in memory only, how many polls in a row timed out, so one
 * slow answer does not flip Ready (src/decisions/status.ts decides how many count).
 */
import { PollError, type ServerObservation } from '../../decisions/server-status.ts';
import type { LiveObjects, ReconcileContext } from './context.ts';
import type { PollOptions } from '../poller.ts';
import { addUsageSample, type UsageSample } from '../../decisions/storage.ts';

export type PollFn = (podIP: string, port: number, opts: PollOptions) => Promise<ServerObservation>;

export class ServerObserver {
  readonly #poll: PollFn;
  readonly #timeoutMs: number | undefined;
  /** Polls that timed out in a row, per EventLog key (a restart starts afresh). */
  readonly #timeouts = new Map<string, number>();
  /** Recent file-system usage per EventLog key, oldest first, for the projected time to full. */
  readonly #usage = new Map<string, UsageSample[]>();

  constructor(poll: PollFn, timeoutMs: number | undefined) {
    this.#poll = poll;
    this.#timeoutMs = timeoutMs;
  }

  /** The server's status, or undefined when there is no running pod with an IP to ask. */
  async observe(ctx: ReconcileContext, live: LiveObjects): Promise<ServerObservation | undefined> {
    const ip = live.pod?.status?.podIP;
    if (!live.pod || !ip || live.pod.metadata?.deletionTimestamp) return undefined;
    const server = await this.#poll(ip, ctx.port, { ...(live.token !== undefined ? { token: live.token } : {}), ...(this.#timeoutMs !== undefined ? { timeoutMs: this.#timeoutMs } : {}) });
    if (!server.ok && server.error === PollError.Timeout) this.#timeouts.set(ctx.key, (this.#timeouts.get(ctx.key) ?? 0) + 1);
    else this.#timeouts.delete(ctx.key);
    if (!server.ok) ctx.log.debug({ error: server.error, message: server.message }, 'log server poll failed');
    if (server.ok && server.status.storage) this.#sample(ctx.key, ctx.now().getTime(), server.status.storage.usedBytes);
    return server;
  }

  timeoutsInARow(key: string): number | undefined {
    return this.#timeouts.get(key);
  }

  /** Usage samples of the last USAGE_WINDOW_MS, oldest first. */
  usageSamples(key: string): readonly UsageSample[] {
    return this.#usage.get(key) ?? [];
  }

  forget(key: string): void {
    this.#timeouts.delete(key);
    this.#usage.delete(key);
  }

  #sample(key: string, atMs: number, usedBytes: number): void {
    this.#usage.set(key, addUsageSample(this.#usage.get(key) ?? [], { atMs, usedBytes }));
  }
}
