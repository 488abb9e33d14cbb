/**
 * The per-EventLog bearer token: how it is made, read back from its Secret, and
 * fingerprinted for the pod. Pure except `generateToken` (randomness).
 *
 * Guarantees:
 * - The token lives only in the Secret `<name>-token` (key `token`). The operator never
 *   regenerates a token that is there and valid: the desired Secret is built from the
 *   live token (`tokenFromSecret`), and drift detection never compares `data`
 *   (drift.ts), so a token is replaced only when the Secret is deleted or its `token`
 *   key is missing or invalid. Rotation by hand = delete the Secret (or put another
 *   valid token in it).
 * - The pod carries `tokenFingerprint(token)` in the `eventlog.dev/token-hash`
 *   annotation, which is part of the pod's spec hash: a new token is a rollout, and the
 *   pod is recreated so the server reads the new token at start-up.
 * - The fingerprint is 16 hex characters of SHA-256 over a fixed prefix and the token:
 *   it tells two tokens apart without being usable as one (the annotation is readable
 *   by anyone who may read pods).
 */
import { createHash, randomBytes } from 'node:crypto';
import { TOKEN_PATTERN } from '../server/auth.ts';

/** Key of the token in the Secret. */
export const TOKEN_KEY = 'token';

/** 32 random bytes, base64url (43 characters): 256 bits, header-safe. */
export function generateToken(): string {
  return randomBytes(32).toString('base64url');
}

export function isValidToken(token: string): boolean {
  // The rule the server applies to --auth-token / --auth-token-file.
  return TOKEN_PATTERN.test(token);
}

/** The valid token in a live Secret (base64 `data.token`), or undefined (missing, empty, invalid). */
export function tokenFromSecret(secret: { data?: Record<string, string> | null } | undefined): string | undefined {
  const b64 = secret?.data?.[TOKEN_KEY];
  if (typeof b64 !== 'string' || b64 === '') return undefined;
  const token = Buffer.from(b64, 'base64').toString('utf8').trim();
  return isValidToken(token) ? token : undefined;
}

/** Fingerprint of a token for the pod annotation (not the token, not reversible). */
export function tokenFingerprint(token: string): string {
  return createHash('sha256').update(`eventlog-token:${token}`).digest('hex').slice(0, 16);
}
