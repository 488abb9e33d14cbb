/**
 * Bearer-token authentication of the log server's data API.
 *
 * Guarantees:
 * - Deny by default: with a token configured, every route except the open ones
 *   (`/healthz`, `/readyz`, `/metrics`: probes and scraping) needs
 *   `Authorization: Bearer <token>`, including unknown routes (401, not 404, so route
 *   names are not probed anonymously). The check uses the matched route, not the raw
 *   URL, so query strings, trailing slashes or encodings cannot slip past it.
 * - Constant-time comparison: SHA-256 of both sides (equal-length digests), compared
 *   with `crypto.timingSafeEqual`; neither the token nor its length leaks by timing.
 * - Without a token the server is open (local use, the playground).
 * - The same token is also accepted as `X-EventLog-Token: <token>`: the Kubernetes API
 *   server's pod proxy (which `kubectl eventlog` uses) removes the `Authorization`
 *   header after authenticating the caller, so a proxied request cannot carry it.
 *
 * Caveats:
 * - The token is read once at start-up (`--auth-token-file` included). A new token
 *   needs a restart; the operator recreates the pod when the token Secret changes.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';

/** Routes that stay open when a token is configured. */
export const OPEN_ROUTES: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics']);

/** A token: visible ASCII without spaces (it travels in an HTTP header), 1..4096 characters. */
export const TOKEN_PATTERN = /^[\x21-\x7e]{1,4096}$/;

export function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** Does this matched route (fastify's route pattern; undefined: no route) need the token? */
export function routeNeedsToken(routePattern: string | undefined): boolean {
  return routePattern === undefined || !OPEN_ROUTES.has(routePattern);
}

export type BearerResult = { ok: true } | { ok: false; reason: 'missing' | 'invalid' };

/** The header that carries the token when Authorization cannot (an API-server proxy strips it). */
export const TOKEN_HEADER = 'x-eventlog-token';

/** The Authorization value to check: the header itself, else `Bearer <X-EventLog-Token>`. */
export function presentedCredentials(authorization: string | undefined, tokenHeader: string | string[] | undefined): string | undefined {
  if (authorization !== undefined && authorization !== '') return authorization;
  const t = Array.isArray(tokenHeader) ? tokenHeader[0] : tokenHeader;
  return t === undefined || t === '' ? undefined : `Bearer ${t.trim()}`;
}

/** Checks an Authorization header against the SHA-256 of the expected token (pure). */
export function checkBearer(header: string | undefined, tokenHash: Buffer): BearerResult {
  if (header === undefined || header === '') return { ok: false, reason: 'missing' };
  // RFC 7235: the scheme is case-insensitive; one or more spaces before the credentials.
  const m = /^bearer +([^ ]+) *$/i.exec(header);
  if (m === null) return { ok: false, reason: 'invalid' };
  return timingSafeEqual(sha256(m[1]!), tokenHash) ? { ok: true } : { ok: false, reason: 'invalid' };
}

/** The WWW-Authenticate challenge of a 401 (RFC 6750 section 3). */
export function challenge(reason: 'missing' | 'invalid'): string {
  return reason === 'missing' ? 'Bearer realm="eventlog"' : 'Bearer realm="eventlog", error="invalid_token"';
}

export class TokenFileError extends Error {
  override name = 'TokenFileError';
}

/**
 * The token in a file (e.g. a mounted Secret): surrounding whitespace and one trailing
 * newline are dropped (`echo t > file`, `kubectl create secret --from-file`). Throws a
 * TokenFileError with one line when the file cannot be read or holds no valid token.
 */
export async function readTokenFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    throw new TokenFileError(`cannot read ${path}: ${e.code ?? e.message}`);
  }
  const token = text.trim();
  if (token === '') throw new TokenFileError(`${path} is empty`);
  if (!TOKEN_PATTERN.test(token)) throw new TokenFileError(`${path} does not hold a token (visible ASCII without spaces, at most 4096 characters)`);
  return token;
}
