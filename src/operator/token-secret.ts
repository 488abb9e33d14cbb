/**
 * Makes sure an EventLog's token Secret exists and holds a valid token, and says which
 * token is current. The thin edge around src/decisions/token.ts.
 *
 * Guarantees
 * - An existing valid token is never replaced: a missing Secret is *created* (POST,
 *   which fails with 409 if it exists), never applied, so a pass that runs on a cache
 *   that has not seen the Secret yet cannot overwrite the token with a new one. On 409
 *   the Secret is read from the API server and its token used.
 * - A Secret whose `token` key is missing, empty or invalid gets a new token (a forced
 *   server-side apply: whoever wrote the bad value loses the field). The reconciler
 *   records that as drift (`data.token`).
 * - Only the token Secret of this EventLog is ever read or written.
 *
 * Caveat: Secret metadata drift (labels, owner reference, type) is left to the
 * reconciler's generic plan (drift.ts), like the other owned objects.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { EventLog } from '../api/eventlog.ts';
import { desiredTokenSecret, tokenSecretName } from '../decisions/desired.ts';
import { FIELD_MANAGER } from '../decisions/labels.ts';
import { generateToken, tokenFromSecret } from '../decisions/token.ts';
import type { ManifestApplier } from '../kube/apply.ts';
import { Resource, Resources } from '../runtime/resources.ts';
import { statusCodeOf, type KubeHttp } from '../runtime/kube-http.ts';
import type { KubeObject } from '../runtime/store.ts';

export interface TokenSecretDeps {
  http: Pick<KubeHttp, 'json'>;
  applier: Pick<ManifestApplier, 'apply'>;
  /** Token source; tests may replace it. */
  newToken?: () => string;
}

export type SecretObject = KubeObject & { type?: string; data?: Record<string, string> };

export interface EnsuredToken {
  token: string;
  /** The Secret as the API server returned it (or the cached one, unchanged). */
  secret: SecretObject;
  /** The Secret did not exist and was created in this call. */
  created: boolean;
  /** The Secret existed without a valid token; a new one was written. */
  regenerated: boolean;
}

type Evl = Pick<EventLog, 'metadata' | 'spec'>;

export async function ensureTokenSecret(deps: TokenSecretDeps, evl: Evl, live: SecretObject | undefined): Promise<EnsuredToken> {
  const newToken = deps.newToken ?? generateToken;
  const namespace = evl.metadata.namespace ?? '';
  const name = tokenSecretName(evl);
  const resources = new Resources(deps.http);
  let current = live;
  if (current === undefined) {
    const token = newToken();
    try {
      const created = await resources.create<SecretObject>(Resource.secrets, namespace, desiredTokenSecret(evl, token), { query: { fieldManager: FIELD_MANAGER } });
      return { token, secret: created, created: true, regenerated: false };
    } catch (error) {
      // 409: it exists (the cache is behind). Use what is there, never overwrite it.
      if (statusCodeOf(error) !== 409) throw new Error(`creating Secret ${namespace}/${name}: ${(error as Error).message}`, { cause: error });
      current = await resources.get<SecretObject>(Resource.secrets, namespace, name);
    }
  }
  const token = tokenFromSecret(current);
  if (token !== undefined) return { token, secret: current, created: false, regenerated: false };
  const fresh = newToken();
  const applied = await deps.applier.apply(desiredTokenSecret(evl, fresh) as unknown as KubernetesObject, FIELD_MANAGER, { force: true });
  return { token: fresh, secret: applied as unknown as SecretObject, created: false, regenerated: true };
}
