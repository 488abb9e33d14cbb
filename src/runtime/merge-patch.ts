/**
 * The JSON merge patch (RFC 7386) that turns one JSON value into another: what the
 * reconciler sends to the status subresource.
 *
 * Why not send the new status as-is: a merge patch merges objects, so a key that is
 * gone from the new status (e.g. `drift.items` after a correction, `recovery.corruption`
 * after a repair) would survive on the server. The patch sets such keys to `null`.
 *
 * Guarantees: `applyMergePatch(old, mergePatch(old, new))` deep-equals `new` for JSON
 * values without nulls (status never contains null); lists are replaced whole (merge
 * patch has no list merge); `undefined` means "no change".
 */

import { isJsonObject, jsonEqual } from '../common/json.ts';

type Json = unknown;


/** The merge patch from `from` to `to`, or undefined when they are equal. */
export function mergePatch(from: Json, to: Json): Json | undefined {
  if (jsonEqual(from, to)) return undefined;
  if (!isJsonObject(from) || !isJsonObject(to)) return to === undefined ? null : to;
  const out: Record<string, Json> = {};
  for (const k of Object.keys(from)) {
    if (from[k] !== undefined && to[k] === undefined) out[k] = null;
  }
  for (const [k, v] of Object.entries(to)) {
    if (v === undefined) continue;
    const p = from[k] === undefined ? v : mergePatch(from[k], v);
    if (p !== undefined) out[k] = p;
  }
  return out;
}

/** RFC 7386 apply (for tests and as the executable definition of the format). */
export function applyMergePatch(target: Json, patch: Json): Json {
  if (!isJsonObject(patch)) return patch;
  const out: Record<string, Json> = isJsonObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}
