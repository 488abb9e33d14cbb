/**
 * The EventLog API (`eventlog.dev/v1alpha1`, kind `EventLog`, namespaced).
 *
 * This module is the single source of truth for the API: the zod schemas below are
 * what the operator parses objects with, the TypeScript types are inferred from them,
 * and the CRD in `crds/` is generated from them (`src/api/crd.ts`,
 * `scripts/generate-crd.ts`). Descriptions given with `.describe()` / `.meta()` become
 * the `kubectl explain` text; `x-kubernetes-validations` in `.meta()` become CEL rules
 * enforced by the API server.
 *
 * Guarantees:
 * - Parsing a spec applies the same defaults the API server applies from the CRD
 *   (retentionPolicy Retain, durability Fsync, driftPolicy Correct, suspend false), so
 *   code reading a parsed spec never sees those fields missing.
 * - Every CEL rule on the spec has a zod twin (a refinement) with the same message, so
 *   `EventLogSpecSchema.safeParse` rejects what the API server rejects, except:
 *   transition rules (size can only grow, storageClassName immutable) need the old
 *   object and live in `validateSpecUpdate`; and label/annotation key syntax is checked
 *   only by zod (a CEL check per map key is too costly for the API server's budget) -
 *   the Pod API validates it again when the operator applies the pod.
 * - Unknown fields are stripped, not rejected, when parsing: the API server already
 *   prunes them, and an older operator must keep working against a newer CRD.
 *
 * Caveats:
 * - Quantities accept a string or a non-negative integer (like `resource.Quantity`)
 *   and are normalised to a string by parsing; the stored object keeps what the user
 *   wrote.
 * - `podTemplate.affinity` sub-trees are passed through unvalidated (the Pod API
 *   validates them when the pod is applied).
 */
import { z } from 'zod';
import { compareQuantities } from '../kube/quantity.ts';
import { API_VERSION, ConditionType, KIND } from './vocabulary.ts';
import { DNS1035_LABEL, MAX_NAME_LENGTH, celString, type CelRule } from './schema-helpers.ts';
import { AffinitySchema, ClientsSchema, EventLogSpecSchema, LabelSelectorSchema, PodTemplateSchema, ResourcesSchema, StorageSpecSchema, TolerationSchema, AutoGrowSchema, RetentionSchema } from './spec.ts';
import { ConditionSchema, CorruptionSchema, DriftItemSchema, DriftStatusSchema, EventLogStatusSchema, LogStatsSchema, PodStatusSchema, RecoveryHistoryEntrySchema, RecoveryStatusSchema, RepairSchema, StorageStatusSchema, StorageGrowthSchema, RolloutStatusSchema } from './status-schema.ts';

export { GROUP, VERSION, API_VERSION, EVENTLOG_RESOURCE, KIND, LIST_KIND, PLURAL, SINGULAR, SHORT_NAMES, CATEGORIES, CRD_NAME, FINALIZER, APPROVE_REPAIR_ANNOTATION, RESERVED_PREFIX, RetentionPolicy, Durability, DriftPolicy, RecoveryOutcome, Phase, ConditionStatus, ConditionType, ReadyReason, ReconcilingReason, StalledReason, RecoveredReason, DriftedReason, ConditionReasons, RolloutState } from './vocabulary.ts';
export type { ConditionReason } from './vocabulary.ts';
export { celString, QUALIFIED_NAME, DNS1035_LABEL, MAX_NAME_LENGTH } from './schema-helpers.ts';
export type { CelRule } from './schema-helpers.ts';
export { StorageSpecSchema, ResourcesSchema, TolerationSchema, AffinitySchema, PodTemplateSchema, LabelSelectorRequirementSchema, LabelSelectorSchema, ClientsSchema, EventLogSpecSchema, AutoGrowSchema, RetentionSchema, DURATION_PATTERN, INCREMENT_PERCENT } from './spec.ts';
export { ConditionSchema, CorruptionSchema, RecoveryHistoryEntrySchema, RepairSchema, MAX_RECOVERY_HISTORY, MAX_DRIFT_ITEMS, RecoveryStatusSchema, DriftItemSchema, DriftStatusSchema, PodStatusSchema, StorageStatusSchema, LogStatsSchema, EventLogStatusSchema, StorageGrowthSchema, MAX_GROWTH_HISTORY, RolloutStatusSchema } from './status-schema.ts';

// ---------------------------------------------------------------------------
// The whole object
// ---------------------------------------------------------------------------

/** The parts of ObjectMeta the operator reads. Other fields pass through. */
export const ObjectMetaSchema = z.looseObject({
  name: z.string(),
  namespace: z.string().optional(),
  uid: z.string().optional(),
  generation: z.int().optional(),
  resourceVersion: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  finalizers: z.array(z.string()).optional(),
  deletionTimestamp: z.string().optional(),
  creationTimestamp: z.string().optional(),
});

export const EventLogSchema = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal(KIND),
  metadata: ObjectMetaSchema,
  spec: EventLogSpecSchema,
  status: EventLogStatusSchema.optional(),
});

/** Root-level CEL rules of the CRD (on the whole object). */
export const ROOT_VALIDATIONS: CelRule[] = [
  {
    rule: `size(self.metadata.name) <= ${MAX_NAME_LENGTH} && self.metadata.name.matches(${celString(DNS1035_LABEL.source)})`,
    message: `metadata.name must be a DNS-1035 label (lowercase letters, digits and "-", starting with a letter, at most ${MAX_NAME_LENGTH} characters): it names the Service and labels the pod`,
    // no fieldPath: the API server only accepts paths declared in the schema, and metadata is opaque
  },
];

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/** Spec as written by a user (defaults not applied, quantities string | number). */
export type EventLogSpecInput = z.input<typeof EventLogSpecSchema>;
/** Spec after parsing: defaults applied, quantities as strings. */
export type EventLogSpec = z.output<typeof EventLogSpecSchema>;
export type StorageSpec = z.output<typeof StorageSpecSchema>;
export type AutoGrow = z.output<typeof AutoGrowSchema>;
export type Retention = z.output<typeof RetentionSchema>;
export type StorageGrowth = z.output<typeof StorageGrowthSchema>;
export type Resources = z.output<typeof ResourcesSchema>;
export type PodTemplate = z.output<typeof PodTemplateSchema>;
export type Toleration = z.output<typeof TolerationSchema>;
export type Affinity = z.output<typeof AffinitySchema>;
export type LabelSelector = z.output<typeof LabelSelectorSchema>;
export type Clients = z.output<typeof ClientsSchema>;
export type Condition = z.output<typeof ConditionSchema>;
export type Corruption = z.output<typeof CorruptionSchema>;
export type RecoveryHistoryEntry = z.output<typeof RecoveryHistoryEntrySchema>;
export type Repair = z.output<typeof RepairSchema>;
export type RecoveryStatus = z.output<typeof RecoveryStatusSchema>;
export type DriftItem = z.output<typeof DriftItemSchema>;
export type DriftStatus = z.output<typeof DriftStatusSchema>;
export type PodStatus = z.output<typeof PodStatusSchema>;
export type StorageStatus = z.output<typeof StorageStatusSchema>;
export type LogStats = z.output<typeof LogStatsSchema>;
export type RolloutStatus = z.output<typeof RolloutStatusSchema>;
export type EventLogStatus = z.output<typeof EventLogStatusSchema>;
export type ObjectMeta = z.output<typeof ObjectMetaSchema>;
export type EventLog = z.output<typeof EventLogSchema>;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

export type ParseResult<T> = { success: true; data: T } | { success: false; error: string };

/**
 * Parse an EventLog spec; on failure `error` is a readable, multi-line message naming
 * each bad field (zod's prettified error), prefixed with `where` (e.g. "ns/name").
 */
export function parseEventLogSpec(input: unknown, where = 'spec'): ParseResult<EventLogSpec> {
  const r = EventLogSpecSchema.safeParse(input);
  if (r.success) return { success: true, data: r.data };
  return { success: false, error: `invalid EventLog ${where}:\n${z.prettifyError(r.error)}` };
}

/** Parse a whole EventLog object (e.g. from the informer cache). */
export function parseEventLog(input: unknown): ParseResult<EventLog> {
  const r = EventLogSchema.safeParse(input);
  if (r.success) return { success: true, data: r.data };
  const meta = (input as { metadata?: { namespace?: string; name?: string } } | null)?.metadata;
  const where = meta ? `${meta.namespace ?? ''}/${meta.name ?? '?'}` : '<no metadata>';
  return { success: false, error: `invalid EventLog ${where}:\n${z.prettifyError(r.error)}` };
}

/**
 * The transition rules the CRD enforces with `oldSelf`, for code paths that have both
 * objects (tests, a future webhook, a dry-run check). Returns readable messages, empty
 * if the update is allowed. Both specs must already be valid.
 */
export function validateSpecUpdate(oldSpec: EventLogSpecInput, newSpec: EventLogSpecInput): string[] {
  const errors: string[] = [];
  if (compareQuantities(newSpec.storage.size, oldSpec.storage.size) < 0) {
    errors.push('storage.size can only grow: a PersistentVolumeClaim cannot be shrunk');
  }
  if (oldSpec.storage.storageClassName !== newSpec.storage.storageClassName) {
    errors.push('storage.storageClassName is immutable: it cannot be added, changed or removed after creation');
  }
  return errors;
}

/** Find a condition by type. */
export function findCondition(status: EventLogStatus | undefined, type: ConditionType): Condition | undefined {
  return status?.conditions?.find((c) => c.type === type);
}

