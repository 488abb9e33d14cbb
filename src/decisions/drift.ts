/**
 * Drift detection: compare a live owned object with the desired apply configuration,
 * on the fields the operator owns only. Pure; no I/O.
 *
 * Rules (see docs/controller.md for the full table):
 * - Only fields present in the desired object are compared (recursively). A field the
 *   API server, admission or the kubelet added (defaults such as `protocol: TCP`,
 *   `fieldRef.apiVersion`, `dnsPolicy`, extra volumes, extra labels someone else added)
 *   is never drift.
 * - Maps: only the keys we set, except maps that are atomic in the Kubernetes API
 *   (`Service.spec.selector`, `Pod.spec.nodeSelector`), which must match exactly (an
 *   extra selector key changes which pods are selected).
 * - Lists of named items (containers, env, ports, volumes, volumeMounts) are matched by
 *   `name`; `ownerReferences` by `uid`; `Pod.spec.tolerations` by inclusion (admission
 *   adds the not-ready/unreachable tolerations to every pod); any other list (args,
 *   command, accessModes, capabilities.drop) is compared as a whole, item by item on the
 *   keys we set.
 * - Exact subtrees (`NetworkPolicy.spec.podSelector`, `.ingress`, `.policyTypes`) must
 *   equal the desired value exactly, extra keys and items included: for an access
 *   policy, an added peer or a widened selector is the change that matters. The
 *   desired policy sets every field the API server would default, so a faithful
 *   apply compares equal.
 * - A Secret's `data` is never compared (the token is kept, not reset: token.ts);
 *   its labels, owner reference and `type` are.
 * - Quantities under `resources` are compared by value ("1024Mi" == "1Gi"; the API
 *   server canonicalises what we send).
 * - A missing live object is one item with path "." (expected "present", actual
 *   "deleted").
 *
 * Paths: dotted from the object root, map keys that are not identifiers in brackets
 * (`metadata.labels["app.kubernetes.io/name"]`), named list items as
 * `[name=server]` (`[uid=...]` for owner references).
 *
 * Ownership (managedFields): `takenOver` lists owned fields that another field
 * manager now manages and we do not (someone `kubectl edit`ed, patched or force-applied
 * them). `classifyDifferences` uses the same information to split differences into
 * drift (someone else changed it) and rollout (we still own the field, so the old value
 * is what we applied for an older spec: the EventLog spec changed). For the pod, a
 * different `eventlog.dev/spec-hash` annotation also means rollout.
 *
 * Caveats: fieldsV1 is interpreted only as far as we need it (`f:` field keys, `k:`
 * list keys matched on the keys the desired item has, `v:` set values ignored);
 * managedFields entries for the status subresource are ignored. Without managedFields,
 * every difference counts as drift.
 */
import { isJsonObject, jsonEqual } from '../common/json.ts';
import { compareQuantities, isQuantity } from '../kube/quantity.ts';
import type { DesiredObject, OwnedKind } from './desired.ts';
import { SPEC_HASH_ANNOTATION, TOKEN_HASH_ANNOTATION } from './labels.ts';

/** A difference between desired and live (status adds `firstSeen`). */
export interface DriftFinding {
  kind: OwnedKind;
  name: string;
  /** "." when the whole object is missing. */
  path: string;
  expected?: string;
  actual?: string;
}

/** One entry of `metadata.managedFields`. */
export interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  apiVersion?: string;
  fieldsType?: string;
  fieldsV1?: Record<string, unknown>;
  subresource?: string;
  time?: string;
}

export interface TakeOver {
  path: string;
  /** The manager(s) that own the field now. */
  managers: string[];
}

export const MAX_VALUE_LENGTH = 1024;

type Step = { f: string } | { item: Record<string, unknown> } | { atomic: true };

interface Found extends DriftFinding {
  steps: Step[];
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

function keySeg(k: string): string {
  return IDENT.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`;
}

/** Render a value for `expected`/`actual`: strings as-is, others as JSON, truncated. */
export function renderValue(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > MAX_VALUE_LENGTH ? `${s.slice(0, MAX_VALUE_LENGTH - 3)}...` : s;
}

/** Atomic maps (compared exactly) per kind. */
const ATOMIC_MAPS: Record<OwnedKind, string[]> = {
  PersistentVolumeClaim: [],
  Pod: ['spec.nodeSelector'],
  Service: ['spec.selector'],
  Secret: [],
  NetworkPolicy: [],
};

/** Subtrees compared exactly (deep equality, order of list items included) per kind. */
const EXACT_PATHS: Record<OwnedKind, string[]> = {
  PersistentVolumeClaim: [],
  Pod: [],
  Service: [],
  Secret: [],
  NetworkPolicy: ['spec.podSelector', 'spec.policyTypes', 'spec.ingress'],
};


function scalarEqual(path: string, d: unknown, l: unknown): boolean {
  if (d === l) return true;
  // Quantities: the API server canonicalises them ("1024Mi" -> "1Gi", "0.5" -> "500m").
  if (/(^|\.)resources\./.test(path) && (typeof d === 'string' || typeof d === 'number') && (typeof l === 'string' || typeof l === 'number')) {
    if (isQuantity(d) && isQuantity(l)) return compareQuantities(d, l) === 0;
  }
  return false;
}

/** Does `live` have every key/value of `desired` (recursively, lists item by item)? */
function partialEqual(path: string, d: unknown, l: unknown): boolean {
  if (Array.isArray(d)) {
    return Array.isArray(l) && d.length === l.length && d.every((x, i) => partialEqual(path, x, l[i]));
  }
  if (isJsonObject(d)) {
    return isJsonObject(l) && Object.keys(d).every((k) => partialEqual(`${path}.${k}`, d[k], l[k]));
  }
  return scalarEqual(path, d, l);
}

function listKey(path: string, items: unknown[]): string | undefined {
  if (path.endsWith('metadata.ownerReferences')) return 'uid';
  if (items.length > 0 && items.every((x) => isJsonObject(x) && typeof x.name === 'string')) return 'name';
  return undefined;
}

function walk(kind: OwnedKind, name: string, d: unknown, l: unknown, path: string, steps: Step[], out: Found[]): void {
  const push = (p: string, st: Step[], expected: unknown, actual: unknown) =>
    out.push({ kind, name, path: p, expected: renderValue(expected), actual: renderValue(actual), steps: st });

  if (EXACT_PATHS[kind].includes(path)) {
    if (!jsonEqual(d, l)) push(path, [...steps, { atomic: true }], d, l);
    return;
  }
  if (Array.isArray(d)) {
    if (kind === 'Pod' && path === 'spec.tolerations') {
      const live = Array.isArray(l) ? l : [];
      if (!d.every((t) => live.some((x) => partialEqual(path, t, x)))) push(path, [...steps, { atomic: true }], d, l);
      return;
    }
    const key = listKey(path, d);
    if (key === undefined) {
      if (!partialEqual(path, d, l)) push(path, [...steps, { atomic: true }], d, l);
      return;
    }
    const live = Array.isArray(l) ? l : [];
    for (const item of d as Record<string, unknown>[]) {
      const id = item[key];
      const p = `${path}[${key}=${String(id)}]`;
      const match = live.find((x) => isJsonObject(x) && x[key] === id);
      if (match === undefined) push(p, [...steps, { item }], item, undefined);
      // Ownership lookups follow the live item: managedFields keys (e.g. a Service port's
      // port+protocol) describe what is live, which may be an older value than desired.
      else walk(kind, name, item, match, p, [...steps, { item: match as Record<string, unknown> }], out);
    }
    return;
  }
  if (isJsonObject(d)) {
    if (ATOMIC_MAPS[kind].includes(path)) {
      const same = isJsonObject(l) && Object.keys(d).length === Object.keys(l).length && Object.keys(d).every((k) => scalarEqual(path, d[k], l[k]));
      if (!same) push(path, [...steps, { atomic: true }], d, l);
      return;
    }
    if (!isJsonObject(l)) {
      push(path, steps, d, l);
      return;
    }
    for (const k of Object.keys(d)) {
      if (d[k] === undefined) continue;
      walk(kind, name, d[k], l[k], path === '' ? k : `${path}${keySeg(k)}`, [...steps, { f: k }], out);
    }
    return;
  }
  if (!scalarEqual(path, d, l)) push(path, steps, d, l);
}

/** The fields of the desired object that matter (not apiVersion/kind/name/namespace). */
function owned(desired: DesiredObject): Record<string, unknown> {
  const { labels, annotations, ownerReferences } = desired.metadata;
  const metadata: Record<string, unknown> = { labels, ownerReferences };
  if (annotations) metadata.annotations = annotations;
  // The token (data) is left out on purpose: see token.ts.
  if (desired.kind === 'Secret') return { metadata, type: desired.type };
  return { metadata, spec: desired.spec };
}

function diffFound(kind: OwnedKind, desired: DesiredObject, live: unknown): Found[] {
  const name = desired.metadata.name;
  if (live === undefined || live === null) {
    return [{ kind, name, path: '.', expected: 'present', actual: 'deleted', steps: [] }];
  }
  const out: Found[] = [];
  walk(kind, name, owned(desired), live, '', [], out);
  return out;
}

/** Differences between the desired object and the live one, on owned fields only. */
export function diffOwned(kind: OwnedKind, desired: DesiredObject, live: unknown): DriftFinding[] {
  return diffFound(kind, desired, live).map(({ steps: _steps, ...f }) => f);
}

/**
 * True if correcting these Pod findings needs the pod deleted and created again: a
 * Pod's spec is immutable except container images, activeDeadlineSeconds and added
 * tolerations; metadata (labels, annotations, owner references) can be patched. A
 * deleted pod (path ".") must be created again too.
 */
export function podNeedsRecreate(items: readonly DriftFinding[]): boolean {
  return items.some((i) => {
    if (i.kind !== 'Pod') return false;
    if (i.path === '.') return true;
    if (!i.path.startsWith('spec.')) return false;
    if (/^spec\.containers\[name=[^\]]+\]\.image$/.test(i.path)) return false;
    if (i.path === 'spec.activeDeadlineSeconds' || i.path === 'spec.tolerations') return false;
    return true;
  });
}

/** Path of the pod's token fingerprint annotation in findings. */
export const TOKEN_HASH_PATH = `metadata.annotations${keySeg(TOKEN_HASH_ANNOTATION)}`;

/**
 * True if rolling these Pod differences out needs the pod recreated: immutable spec
 * fields (`podNeedsRecreate`), or a new token (the server reads it only at start-up).
 * Only for rollout findings: a drifted token annotation on a running pod is patched back.
 */
export function podRolloutNeedsRecreate(rollout: readonly DriftFinding[]): boolean {
  return podNeedsRecreate(rollout) || rollout.some((i) => i.kind === 'Pod' && i.path === TOKEN_HASH_PATH);
}

/**
 * Lists whose items server-side apply merges by a key other than the one drift is
 * found on: a Service's `spec.ports` are merged by (port, protocol). Someone who changes
 * a port makes an item the operator does not own, so a forced apply adds the desired
 * port beside it (two ports named "http": the API server answers 422). Correcting drift
 * in such a list replaces the whole list first (see `listsToReplace`).
 */
const REPLACE_ON_DRIFT: Record<OwnedKind, string[]> = {
  PersistentVolumeClaim: [],
  Pod: [],
  Service: ['spec.ports'],
  Secret: [],
  NetworkPolicy: [],
};

/** The list paths (e.g. `spec.ports`) that correcting these findings must replace whole before applying. */
export function listsToReplace(kind: OwnedKind, items: readonly DriftFinding[]): string[] {
  return REPLACE_ON_DRIFT[kind].filter((list) => items.some((i) => i.kind === kind && (i.path === list || i.path.startsWith(`${list}[`) || i.path.startsWith(`${list}.`))));
}

// ---------------------------------------------------------------------------
// managedFields
// ---------------------------------------------------------------------------

function childFor(node: Record<string, unknown>, step: Step): Record<string, unknown> | undefined {
  if ('f' in step) {
    const c = node[`f:${step.f}`];
    return isJsonObject(c) ? c : undefined;
  }
  if ('atomic' in step) return node;
  for (const [k, v] of Object.entries(node)) {
    if (!k.startsWith('k:') || !isJsonObject(v)) continue;
    let keyObj: unknown;
    try {
      keyObj = JSON.parse(k.slice(2));
    } catch {
      continue;
    }
    if (!isJsonObject(keyObj)) continue;
    const entries = Object.entries(keyObj);
    const matches = entries.filter(([kk, vv]) => step.item[kk] === vv).length;
    const conflicts = entries.some(([kk, vv]) => step.item[kk] !== undefined && step.item[kk] !== vv);
    if (matches > 0 && !conflicts) return v;
  }
  return undefined;
}

/** Does a fieldsV1 tree contain the field at `steps`? */
export function managesPath(fieldsV1: Record<string, unknown> | undefined, steps: readonly Step[]): boolean {
  let node: Record<string, unknown> | undefined = fieldsV1;
  for (const s of steps) {
    if (!node) return false;
    node = childFor(node, s);
  }
  return node !== undefined;
}

/** Leaves of the desired object with their fieldsV1 steps (what we own). */
function ownedLeaves(desired: DesiredObject): Found[] {
  const kind = desired.kind;
  const name = desired.metadata.name;
  const out: Found[] = [];
  const leaf = (path: string, steps: Step[]) => out.push({ kind, name, path, steps });
  const visit = (d: unknown, path: string, steps: Step[]): void => {
    if (EXACT_PATHS[kind].includes(path)) return void leaf(path, [...steps, { atomic: true }]);
    if (Array.isArray(d)) {
      const key = kind === 'Pod' && path === 'spec.tolerations' ? undefined : listKey(path, d);
      if (key === undefined) return void leaf(path, [...steps, { atomic: true }]);
      for (const item of d as Record<string, unknown>[]) visit(item, `${path}[${key}=${String(item[key])}]`, [...steps, { item }]);
      return;
    }
    if (isJsonObject(d)) {
      if (ATOMIC_MAPS[kind].includes(path)) return void leaf(path, [...steps, { atomic: true }]);
      for (const k of Object.keys(d)) {
        if (d[k] !== undefined) visit(d[k], path === '' ? k : `${path}${keySeg(k)}`, [...steps, { f: k }]);
      }
      return;
    }
    leaf(path, steps);
  };
  visit(owned(desired), '', []);
  return out;
}

function appliedEntries(managedFields: readonly ManagedFieldsEntry[] | undefined): ManagedFieldsEntry[] {
  return (managedFields ?? []).filter((e) => !e.subresource && (e.fieldsType === undefined || e.fieldsType === 'FieldsV1'));
}

/**
 * Owned fields (leaves of `desired`) that another field manager manages now while
 * `fieldManager` does not: someone took them over (kubectl edit/patch/label, or an
 * apply with --force-conflicts).
 */
export function takenOver(desired: DesiredObject, managedFields: readonly ManagedFieldsEntry[] | undefined, fieldManager: string): TakeOver[] {
  const entries = appliedEntries(managedFields);
  const ours = entries.filter((e) => e.manager === fieldManager);
  const others = entries.filter((e) => e.manager !== fieldManager);
  const result: TakeOver[] = [];
  for (const leaf of ownedLeaves(desired)) {
    if (ours.some((e) => managesPath(e.fieldsV1, leaf.steps))) continue;
    const managers = [...new Set(others.filter((e) => managesPath(e.fieldsV1, leaf.steps)).map((e) => e.manager ?? '<unknown>'))];
    if (managers.length > 0) result.push({ path: leaf.path, managers });
  }
  return result;
}

export interface Classified {
  /** Someone else changed or removed an owned field, or deleted the object. */
  drift: DriftFinding[];
  /** Fields still owned by us with an older value: the EventLog spec changed (not drift). */
  rollout: DriftFinding[];
}

/**
 * Diff and split the differences into drift and rollout.
 * - object missing: drift (the reconciler decides whether it ever existed);
 * - Pod with another spec-hash annotation than desired: all differences are rollout;
 * - a field our manager still manages: rollout (our previous apply set the old value);
 * - otherwise (managed by someone else, or by nobody): drift.
 */
export function classifyDifferences(kind: OwnedKind, desired: DesiredObject, live: unknown, fieldManager: string): Classified {
  const found = diffFound(kind, desired, live);
  const strip = ({ steps: _s, ...f }: Found): DriftFinding => f;
  if (live === undefined || live === null) return { drift: found.map(strip), rollout: [] };
  const meta = (live as { metadata?: { managedFields?: ManagedFieldsEntry[]; annotations?: Record<string, string> } }).metadata;
  if (kind === 'Pod') {
    const want = desired.metadata.annotations?.[SPEC_HASH_ANNOTATION];
    const have = meta?.annotations?.[SPEC_HASH_ANNOTATION];
    if (want !== undefined && have !== undefined && want !== have) return { drift: [], rollout: found.map(strip) };
  }
  const ours = appliedEntries(meta?.managedFields).filter((e) => e.manager === fieldManager);
  const drift: DriftFinding[] = [];
  const rollout: DriftFinding[] = [];
  for (const f of found) {
    // The field must be managed by us *with the live value*: present in live and in our set.
    const liveHasIt = f.actual !== undefined;
    if (liveHasIt && ours.some((e) => managesPath(e.fieldsV1, f.steps))) rollout.push(strip(f));
    else drift.push(strip(f));
  }
  return { drift, rollout };
}
