/**
 * Label, annotation and field-manager conventions of the objects the operator owns
 * (PVC, pod, Service, token Secret and NetworkPolicy of one EventLog).
 *
 * Guarantees:
 * - Every owned object carries the recommended `app.kubernetes.io/*` labels:
 *   name=eventlog, instance=<EventLog name>, managed-by=eventlog-operator and a
 *   component (`log-server` for the pod, Service and NetworkPolicy, `storage` for the
 *   PVC, `auth` for the token Secret). The operator watches Secrets by the managed-by
 *   label, so only its own Secrets are ever cached.
 * - The selector labels (`selectorLabels`) are a fixed subset (name, instance,
 *   component) that never depends on user input, so the Service keeps selecting the
 *   pod whatever the user puts in `spec.podTemplate.labels`, and a selector never has to
 *   change (a Service selector change would be a visible outage).
 * - Labels and annotations of the EventLog itself are never copied to children. That
 *   is what keeps GitOps tools happy: Argo CD (`argocd.argoproj.io/*`, and the
 *   `app.kubernetes.io/instance` label it may use for tracking), Flux
 *   (`kustomize.toolkit.fluxcd.io/*`, `helm.toolkit.fluxcd.io/*`) and
 *   `kubectl.kubernetes.io/last-applied-configuration` would otherwise make the
 *   children look like resources of the Git source (pruned, or shown OutOfSync).
 * - `spec.podTemplate.labels/annotations` go to the pod only, after dropping GitOps
 *   tracking keys (`isGitOpsTrackingKey`); the operator's own labels always win over
 *   user labels with the same key (the API already reserves `eventlog.dev/`).
 *
 * Caveat: `app.kubernetes.io/instance` is ours (the EventLog name). If Argo CD is
 * configured to track with that label (its legacy default), the children carry the
 * EventLog's name there rather than the Argo application name, which is exactly what
 * keeps Argo from claiming them.
 */
import type { EventLog } from '../api/eventlog.ts';

/** Field manager of every server-side apply the operator makes. */
export const FIELD_MANAGER = 'eventlog-operator';

export const LABEL_NAME = 'app.kubernetes.io/name';
export const LABEL_INSTANCE = 'app.kubernetes.io/instance';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const LABEL_COMPONENT = 'app.kubernetes.io/component';

export const APP_NAME = 'eventlog';
export const MANAGED_BY = 'eventlog-operator';

export const Component = {
  /** The log pod and the Service in front of it. */
  LogServer: 'log-server',
  /** The PVC holding the log. */
  Storage: 'storage',
  /** The Secret with the log server's bearer token. */
  Auth: 'auth',
} as const;
export type Component = (typeof Component)[keyof typeof Component];

/** Annotation on the pod: hash of the desired pod (see desired.ts), to detect a rollout. */
export const SPEC_HASH_ANNOTATION = 'eventlog.dev/spec-hash';
/** Annotation on the pod: fingerprint of the token it was started with (token.ts). */
export const TOKEN_HASH_ANNOTATION = 'eventlog.dev/token-hash';

/** Key prefixes (and exact keys) that GitOps tools use to track what they own. */
export const GITOPS_TRACKING_PREFIXES = [
  'argocd.argoproj.io/',
  'kustomize.toolkit.fluxcd.io/',
  'helm.toolkit.fluxcd.io/',
  'fluxcd.io/',
] as const;
export const GITOPS_TRACKING_KEYS = ['kubectl.kubernetes.io/last-applied-configuration', LABEL_INSTANCE] as const;

/** True for a label/annotation key a GitOps tool (or kubectl apply) uses for tracking. */
export function isGitOpsTrackingKey(key: string): boolean {
  if ((GITOPS_TRACKING_KEYS as readonly string[]).includes(key)) return true;
  return GITOPS_TRACKING_PREFIXES.some((p) => key.startsWith(p));
}

/** A copy of `m` without GitOps tracking keys (undefined stays undefined). */
export function withoutGitOpsKeys(m: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!m) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m)) if (!isGitOpsTrackingKey(k)) out[k] = v;
  return out;
}

type Named = Pick<EventLog, 'metadata'>;

/** The stable selector of the log pod (also the Service selector). */
export function selectorLabels(evl: Named): Record<string, string> {
  return {
    [LABEL_NAME]: APP_NAME,
    [LABEL_INSTANCE]: evl.metadata.name,
    [LABEL_COMPONENT]: Component.LogServer,
  };
}

/** Labels of an owned object of the given component. */
export function commonLabels(evl: Named, component: Component): Record<string, string> {
  return {
    [LABEL_NAME]: APP_NAME,
    [LABEL_INSTANCE]: evl.metadata.name,
    [LABEL_MANAGED_BY]: MANAGED_BY,
    [LABEL_COMPONENT]: component,
  };
}

/** Pod labels: user `podTemplate.labels` (GitOps keys dropped), then ours on top. */
export function podLabels(evl: Pick<EventLog, 'metadata' | 'spec'>): Record<string, string> {
  return { ...withoutGitOpsKeys(evl.spec.podTemplate?.labels), ...commonLabels(evl, Component.LogServer) };
}

/** Pod annotations: user `podTemplate.annotations` (GitOps keys dropped), then ours. */
export function podAnnotations(evl: Pick<EventLog, 'spec'>, specHash: string): Record<string, string> {
  return { ...withoutGitOpsKeys(evl.spec.podTemplate?.annotations), [SPEC_HASH_ANNOTATION]: specHash };
}
