/**
 * Polls one log server's `GET /status` (docs/server.md) and turns the answer into a
 * `ServerObservation` for `computeStatus` (src/decisions/server-status.ts); also sends
 * the human-approved `POST /admin/repair`.
 *
 * Guarantees
 * - Never throws and never hangs: every failure becomes `{ ok: false, error, message }`
 *   with a `PollError` kind (Unreachable, Timeout, Unauthorized, HttpError,
 *   InvalidResponse), and the whole request (connect + body) is bounded by `timeoutMs`
 *   (default 2 s).
 * - Sends `Authorization: Bearer <token>` when a token is given.
 * - One connection per poll (no keep-alive pool): a pod that was replaced at the same
 *   IP never gets a request on a stale socket, and nothing stays open between polls.
 * - The body is capped (1 MiB): a misbehaving endpoint cannot make the operator buffer
 *   without bound.
 */
import { request } from 'node:http';
import { PollError, parseServerStatus, type ServerObservation } from '../decisions/server-status.ts';

export const DEFAULT_POLL_TIMEOUT_MS = 2_000;
const MAX_BODY_BYTES = 1 << 20;

export interface PollOptions {
  /** Bearer token of the log server (its EventLog's token Secret), if it has one. */
  token?: string;
  timeoutMs?: number;
}

/** The URL polled for a pod IP and port (IPv6 addresses in brackets). */
export function statusUrl(podIP: string, port: number): string {
  const host = podIP.includes(':') ? `[${podIP}]` : podIP;
  return `http://${host}:${port}/status`;
}

/** Maps a socket/transport error to a PollError kind. */
export function classifyTransportError(err: unknown): PollError {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ETIMEDOUT' || code === 'ABORT_ERR' || (err as Error | null)?.name === 'TimeoutError') return PollError.Timeout;
  return PollError.Unreachable;
}

/** Maps an HTTP answer to an observation (pure; exported for tests). */
export function observationFromResponse(statusCode: number, body: string): ServerObservation {
  if (statusCode === 401) return { ok: false, error: PollError.Unauthorized, message: `HTTP 401: the log server refused the operator's token (${body.slice(0, 200)})` };
  if (statusCode < 200 || statusCode >= 300) return { ok: false, error: PollError.HttpError, message: `HTTP ${statusCode}: ${body.slice(0, 300)}` };
  const parsed = parseServerStatus(body);
  if (!parsed.success) return { ok: false, error: PollError.InvalidResponse, message: parsed.error };
  return { ok: true, status: parsed.data };
}

/** One bounded HTTP exchange with a log server: status code and body, or a transport failure. */
type Exchange = { ok: true; statusCode: number; body: string } | { ok: false; error: PollError; message: string };

function exchange(url: string, method: 'GET' | 'POST', opts: PollOptions, payload?: unknown): Promise<Exchange> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_POLL_TIMEOUT_MS;
  const what = `${method} ${url}`;
  return new Promise<Exchange>((resolve) => {
    let settled = false;
    const done = (o: Exchange) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(o);
    };
    const body = payload === undefined ? undefined : Buffer.from(JSON.stringify(payload));
    const headers: Record<string, string | number> = { Accept: 'application/json' };
    if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
    if (body) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = body.length;
    }
    const req = request(url, { method, headers, agent: false });
    const timer = setTimeout(() => {
      done({ ok: false, error: PollError.Timeout, message: `${what}: no answer within ${timeoutMs} ms` });
      req.destroy();
    }, timeoutMs);
    req.on('error', (err) => done({ ok: false, error: classifyTransportError(err), message: `${what}: ${err.message}` }));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY_BYTES) {
          done({ ok: false, error: PollError.InvalidResponse, message: `${what}: body larger than ${MAX_BODY_BYTES} bytes` });
          req.destroy();
          return;
        }
        chunks.push(c);
      });
      res.on('error', (err) => done({ ok: false, error: classifyTransportError(err), message: `${what}: ${err.message}` }));
      res.on('end', () => done({ ok: true, statusCode: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.end(body);
  });
}

/** GET http://<podIP>:<port>/status, bounded by the timeout. */
export async function pollServerStatus(podIP: string, port: number, opts: PollOptions = {}): Promise<ServerObservation> {
  const r = await exchange(statusUrl(podIP, port), 'GET', opts);
  return r.ok ? observationFromResponse(r.statusCode, r.body) : r;
}

export const DEFAULT_REPAIR_TIMEOUT_MS = 60_000;

/**
 * POST http://<podIP>:<port>/admin/repair {"corruptionId"}: the human-approved repair.
 * Success carries the server's status document after the repair; a refusal (409: not
 * corrupt, or another corruption id) or any failure carries a message.
 */
export async function requestRepair(podIP: string, port: number, corruptionId: string, opts: PollOptions = {}): Promise<ServerObservation> {
  const host = podIP.includes(':') ? `[${podIP}]` : podIP;
  const r = await exchange(`http://${host}:${port}/admin/repair`, 'POST', { timeoutMs: DEFAULT_REPAIR_TIMEOUT_MS, ...opts }, { corruptionId });
  return r.ok ? observationFromResponse(r.statusCode, r.body) : r;
}
