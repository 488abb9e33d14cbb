/**
 * Observing the log server: `GET /status` on the pod's IP with the EventLog's token.
 * Updates the EventLog's memory (context.ts): how many polls in a row timed out, so one
 * slow answer does not flip Ready (src/decisions/status.ts decides how many count), and
 * the recent file-system usage the projected time to full is computed from.
 */
import { PollError, type ServerObservation } from '../../decisions/server-status.ts';
import { addUsageSample } from '../../decisions/storage.ts';
import type { PollOptions } from '../poller.ts';
import type { LiveObjects, ReconcileContext } from './context.ts';

export type PollFn = (podIP: string, port: number, opts: PollOptions) => Promise<ServerObservation>;

/** The server's status, or undefined when there is no running pod with an IP to ask. */
export async function observeServer(ctx: ReconcileContext, live: LiveObjects, poll: PollFn, timeoutMs: number | undefined): Promise<ServerObservation | undefined> {
  const ip = live.pod?.status?.podIP;
  if (!live.pod || !ip || live.pod.metadata?.deletionTimestamp) return undefined;
  const server = await poll(ip, ctx.port, { ...(live.token !== undefined ? { token: live.token } : {}), ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
  const memory = ctx.memory;
  memory.pollTimeoutsInARow = !server.ok && server.error === PollError.Timeout ? (memory.pollTimeoutsInARow ?? 0) + 1 : undefined;
  if (!server.ok) ctx.log.debug({ error: server.error, message: server.message }, 'log server poll failed');
  if (server.ok && server.status.storage) memory.usageSamples = addUsageSample(memory.usageSamples ?? [], { atMs: ctx.now().getTime(), usedBytes: server.status.storage.usedBytes });
  return server;
}
