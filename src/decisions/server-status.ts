/**
 * The log server's `GET /status` document (docs/server.md) as the operator reads it,
 * and the container termination message the server writes when it refuses to run.
 *
 * Guarantees:
 * - `parseServerStatus` returns a typed document or a readable one-paragraph error
 *   naming the bad fields; it never throws.
 * - Unknown fields are stripped (a newer server keeps working with an older operator);
 *   an unknown `state` is an error (the operator must not guess what it means).
 * - `recovery` is `null` while the first recovery of the boot runs.
 *
 * `ServerObservation` is what the reconciler hands to `computeStatus`: either the parsed
 * document or why there is none (the poll failed, timed out, was refused, or returned
 * something unparsable).
 */
import { z } from 'zod';
import { RecoveryOutcome } from '../api/eventlog.ts';

const count = () => z.number().int().min(0);

export const ServerRecoverySchema = z.object({
  outcome: z.enum([RecoveryOutcome.Clean, RecoveryOutcome.TornTailTruncated, RecoveryOutcome.CorruptionDetected]),
  startedAt: z.string().min(1),
  durationMs: z.number().min(0),
  segmentsScanned: count().optional(),
  bytesScanned: count().optional(),
  recordsRecovered: count(),
  bytesTruncated: count(),
  truncatedTo: z.string().optional(),
  corruption: z
    .object({
      id: z.string().min(1),
      segment: z.string(),
      offset: count(),
      reason: z.string(),
    })
    .optional(),
});

export const ServerStateSchema = z.enum(['recovering', 'ready', 'full', 'corrupt', 'failed']);

/** The server's file system and reserve (statfs of the data directory). */
export const ServerStorageSchema = z.object({
  filesystemBytes: count(),
  freeBytes: count(),
  usedBytes: count(),
  reserveBytes: count(),
  logBytes: count().optional(),
  sideFileBytes: count().optional(),
  appendsRefused: count().optional(),
});

/** What retention keeps and has removed. */
export const ServerRetentionSchema = z.object({
  maxAgeSeconds: count().nullable().optional(),
  maxBytes: count().nullable().optional(),
  firstSequence: count(),
  removedSegments: count().optional(),
  removedEvents: count().optional(),
  removedBytes: count().optional(),
  lastRemovedAt: z.string().nullable().optional(),
});

export const ServerStatusSchema = z.object({
  state: ServerStateSchema,
  version: z.string().optional(),
  durability: z.enum(['fsync', 'interval', 'none']).optional(),
  startedAt: z.string().min(1),
  bootId: z.string().min(1),
  recovery: ServerRecoverySchema.nullable(),
  stats: z.object({
    total: count(),
    bytes: count(),
    lastSequence: count(),
    segments: count().optional(),
    diskBytes: count().optional(),
  }),
  storage: ServerStorageSchema.optional(),
  retention: ServerRetentionSchema.optional(),
  repair: z
    .object({
      corruptionId: z.string(),
      movedTo: z.string().optional(),
      bytesMoved: count().optional(),
    })
    .optional(),
});

/** What the server writes to the termination-message path (one JSON line). */
export const TerminationReportSchema = z.object({
  state: z.enum(['corrupt', 'failed']),
  bootId: z.string().min(1).optional(),
  recovery: ServerRecoverySchema.optional(),
  error: z.string().optional(),
});

export type ServerState = z.infer<typeof ServerStateSchema>;
export type ServerRecovery = z.infer<typeof ServerRecoverySchema>;
export type ServerStatus = z.infer<typeof ServerStatusSchema>;
export type TerminationReport = z.infer<typeof TerminationReportSchema>;

export type ParseResult<T> = { success: true; data: T } | { success: false; error: string };

/** Parse a `/status` body (already JSON-decoded, or a string to decode). */
export function parseServerStatus(input: unknown): ParseResult<ServerStatus> {
  let value = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch (e) {
      return { success: false, error: `log server /status is not JSON: ${(e as Error).message}` };
    }
  }
  const r = ServerStatusSchema.safeParse(value);
  if (r.success) return { success: true, data: r.data };
  return { success: false, error: `log server /status document is invalid: ${z.prettifyError(r.error).replaceAll('\n', '; ')}` };
}

/**
 * Parse a container termination message. Returns undefined for anything that is not
 * the server's report (e.g. the log tail of FallbackToLogsOnError, or an empty string).
 */
export function parseTerminationMessage(message: string | undefined): TerminationReport | undefined {
  if (!message) return undefined;
  const line = message.trim().split('\n')[0] ?? '';
  if (!line.startsWith('{')) return undefined;
  try {
    const r = TerminationReportSchema.safeParse(JSON.parse(line));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

/** Why there is no status document. */
export const PollError = {
  /** Connection refused/reset, no route. */
  Unreachable: 'Unreachable',
  /** No answer within the poll timeout. */
  Timeout: 'Timeout',
  /** 401: the operator's token was refused. */
  Unauthorized: 'Unauthorized',
  /** Another non-2xx status. */
  HttpError: 'HttpError',
  /** 2xx but the body did not parse (see message). */
  InvalidResponse: 'InvalidResponse',
  /** Not polled: the pod has no IP yet. */
  NoPodIP: 'NoPodIP',
} as const;
export type PollError = (typeof PollError)[keyof typeof PollError];

export type ServerObservation = { ok: true; status: ServerStatus } | { ok: false; error: PollError; message: string };
