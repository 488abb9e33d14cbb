/** The EventLog spec schema (what users write); see src/api/eventlog.ts for the guarantees. */
import { z } from 'zod';
import { compareQuantities, isQuantity } from '../kube/quantity.ts';
import { DriftPolicy, Durability, RetentionPolicy } from './vocabulary.ts';
import { celString, checkKeys, dnsSubdomain, labelMap, noReservedKeys, quantity, type CelRule } from './schema-helpers.ts';

// ---------------------------------------------------------------------------
// Spec
// ---------------------------------------------------------------------------

/** A percentage of the current capacity ("50%") or a quantity ("1Gi"). */
export const INCREMENT_PERCENT = /^[1-9][0-9]{0,2}%$/;
const INCREMENT_MESSAGE = 'storage.autoGrow.increment must be a percentage of the current capacity such as "50%" (1-999) or a positive quantity such as "1Gi"';

export const AutoGrowSchema = z
  .object({
    usedPercent: z
      .int()
      .min(50)
      .max(99)
      .default(80)
      .describe('Grow the PVC when the log\'s filesystem is at least this full (percent of its size, 50-99). Default 80.'),
    increment: z
      .string()
      .max(64)
      .default('50%')
      .refine((v) => INCREMENT_PERCENT.test(v) || (isQuantity(v) && compareQuantities(v, '0') > 0), { message: INCREMENT_MESSAGE })
      .meta({
        description: 'How much to grow each time: a percentage of the current capacity ("50%", default) or a quantity ("1Gi"). Rounded up to a whole MiB.',
        'x-kubernetes-validations': [
          { rule: `self.matches(${celString(INCREMENT_PERCENT.source)}) || (isQuantity(self) && quantity(self).isGreaterThan(quantity('0')))`, message: INCREMENT_MESSAGE },
        ] satisfies CelRule[],
      }),
    maxSize: quantity('The PVC is never grown beyond this (required). A full log at maxSize is Stalled=True/StorageFull.', {
      positive: 'storage.autoGrow.maxSize must be greater than zero',
    }),
  })
  .describe(
    'Grow the PVC automatically as the log fills (the StorageClass must allow volume expansion). The operator changes the PVC only; spec.storage.size stays what you wrote (a PVC larger than it is not drift). Each growth is recorded in status.storage.growth and an Event.',
  );

const MAX_SIZE_MESSAGE = 'storage.autoGrow.maxSize must be at least storage.size';

export const StorageSpecSchema = z
  .object({
    size: quantity(
      'Size of the PersistentVolumeClaim that holds the log, e.g. "10Gi". Can only grow; growing it expands the PVC (the StorageClass must allow volume expansion).',
      { positive: 'storage.size must be greater than zero' },
    ).meta({
      'x-kubernetes-validations': [
        {
          rule: "!isQuantity(string(self)) || quantity(string(self)).isGreaterThan(quantity('0'))",
          message: 'storage.size must be greater than zero',
        },
        {
          rule: '!isQuantity(string(self)) || !isQuantity(string(oldSelf)) || quantity(string(self)).compareTo(quantity(string(oldSelf))) >= 0',
          message: 'storage.size can only grow: a PersistentVolumeClaim cannot be shrunk',
        },
      ] satisfies CelRule[],
    }),
    storageClassName: dnsSubdomain(
      'StorageClass for the PVC. Omit to use the cluster default. Immutable after creation (it cannot be added, changed or removed).',
    ).optional(),
    retentionPolicy: z
      .enum([RetentionPolicy.Retain, RetentionPolicy.Delete])
      .default(RetentionPolicy.Retain)
      .describe('What happens to the PVC (and the data) when the EventLog is deleted: Retain keeps it (owner reference removed), Delete lets it be garbage-collected.'),
    autoGrow: AutoGrowSchema.optional(),
    restartPodForResize: z
      .boolean()
      .default(false)
      .describe(
        'When a volume expansion waits for the file system (PVC condition FileSystemResizePending: the driver can only resize offline), allow the operator to delete the log pod once so the resize completes before it starts again. Default false: the operator reports Reconciling=True/FileSystemResizePending and waits for you.',
      ),
  })
  .superRefine((st, ctx) => {
    const max = st.autoGrow?.maxSize;
    if (max !== undefined && isQuantity(max) && isQuantity(st.size) && compareQuantities(max, st.size) < 0) {
      ctx.addIssue({ code: 'custom', path: ['autoGrow', 'maxSize'], message: MAX_SIZE_MESSAGE });
    }
  })
  .meta({
    description: 'The persistent volume that holds the log.',
    'x-kubernetes-validations': [
      {
        rule: 'has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)',
        message: 'storage.storageClassName is immutable: it cannot be added, changed or removed after creation',
        fieldPath: '.storageClassName',
      },
      {
        rule: '!has(self.autoGrow) || !isQuantity(string(self.size)) || !isQuantity(string(self.autoGrow.maxSize)) || quantity(string(self.autoGrow.maxSize)).compareTo(quantity(string(self.size))) >= 0',
        message: MAX_SIZE_MESSAGE,
        fieldPath: '.autoGrow.maxSize',
      },
    ] satisfies CelRule[],
  });

/** Whole-unit durations ("168h", "90m", "45s", "7d", "1h30m"): what the server's --retention-max-age takes. */
export const DURATION_PATTERN = /^([0-9]+(d|h|m|s))+$/;
const ZERO_DURATION = /^(0+[dhms])+$/;
const DURATION_MESSAGE = 'retention.maxAge must be a positive duration of whole units such as "168h", "7d", "90m" or "1h30m"';

export const RetentionSchema = z
  .object({
    maxAge: z
      .string()
      .max(32)
      .regex(DURATION_PATTERN, { message: DURATION_MESSAGE })
      .refine((v) => !ZERO_DURATION.test(v), { message: DURATION_MESSAGE })
      .meta({ 'x-kubernetes-validations': [{ rule: `!self.matches(${celString(ZERO_DURATION.source)})`, message: DURATION_MESSAGE }] satisfies CelRule[] })
      .optional()
      .describe('Delete whole sealed segments whose newest event is older than this ("168h", "7d"). Readers behind the first kept sequence get 410 Gone.'),
    maxBytes: quantity('Keep the log under about this many bytes by deleting the oldest whole sealed segments ("10Gi").', {
      positive: 'retention.maxBytes must be greater than zero',
    }).optional(),
  })
  .describe(
    'Retention: the log server deletes whole sealed segments, oldest first, never the segment being written, never an event newer than the limits allow. Without it the log only grows (see storage.autoGrow).',
  );

export const ResourceListSchema = z
  .object({
    cpu: quantity('CPU, e.g. "500m" or "1".').optional(),
    memory: quantity('Memory, e.g. "256Mi".').optional(),
  })
  .describe('CPU and memory quantities.');

export function requestWithinLimit(res: string): CelRule {
  return {
    rule: `!has(self.requests) || !has(self.limits) || !has(self.requests.${res}) || !has(self.limits.${res}) || !isQuantity(string(self.requests.${res})) || !isQuantity(string(self.limits.${res})) || quantity(string(self.requests.${res})).compareTo(quantity(string(self.limits.${res}))) <= 0`,
    message: `resources.requests.${res} must not exceed resources.limits.${res}`,
    fieldPath: `.requests.${res}`,
  };
}

export const ResourcesSchema = z
  .object({
    requests: ResourceListSchema.optional().describe('Minimum resources the log server is scheduled with.'),
    limits: ResourceListSchema.optional().describe('Maximum resources the log server may use.'),
  })
  .superRefine((r, ctx) => {
    for (const res of ['cpu', 'memory'] as const) {
      const req = r.requests?.[res];
      const lim = r.limits?.[res];
      // Only compare well-formed values; malformed ones already have their own issue.
      if (req !== undefined && lim !== undefined && isQuantity(req) && isQuantity(lim) && compareQuantities(req, lim) > 0) {
        ctx.addIssue({ code: 'custom', path: ['requests', res], message: `resources.requests.${res} must not exceed resources.limits.${res}` });
      }
    }
  })
  .meta({
    description: 'Compute resources of the log server container.',
    'x-kubernetes-validations': [requestWithinLimit('cpu'), requestWithinLimit('memory')],
  });

export const TolerationSchema = z
  .object({
    key: z.string().max(317).optional().describe('Taint key; empty with operator Exists matches every taint.'),
    operator: z.enum(['Exists', 'Equal']).optional().describe('Exists or Equal (default Equal).'),
    value: z.string().max(63).optional().describe('Taint value for operator Equal; must be empty for Exists.'),
    effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional().describe('Taint effect to match; empty matches all effects.'),
    tolerationSeconds: z.int().optional().describe('For NoExecute: how long the pod stays bound after the taint appears.'),
  })
  .superRefine((t, ctx) => {
    if (t.operator === 'Exists' && t.value) ctx.addIssue({ code: 'custom', path: ['value'], message: 'value must be empty when operator is Exists' });
    if (!t.key && t.operator !== 'Exists') ctx.addIssue({ code: 'custom', path: ['operator'], message: 'operator must be Exists when key is empty' });
    if (t.tolerationSeconds !== undefined && t.effect !== 'NoExecute') {
      ctx.addIssue({ code: 'custom', path: ['tolerationSeconds'], message: 'tolerationSeconds is only allowed with effect NoExecute' });
    }
  })
  .meta({
    description: 'A toleration, as in a Pod spec.',
    'x-kubernetes-validations': [
      { rule: "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''", message: 'value must be empty when operator is Exists', fieldPath: '.value' },
      { rule: "(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')", message: 'operator must be Exists when key is empty', fieldPath: '.operator' },
      { rule: "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')", message: 'tolerationSeconds is only allowed with effect NoExecute', fieldPath: '.tolerationSeconds' },
    ] satisfies CelRule[],
  });

export const PreservedObject = (description: string) => z.looseObject({}).describe(description);

export const AffinitySchema = z
  .object({
    nodeAffinity: PreservedObject('Node affinity, as in a Pod spec (passed through; the Pod API validates it).').optional(),
    podAffinity: PreservedObject('Pod affinity, as in a Pod spec (passed through).').optional(),
    podAntiAffinity: PreservedObject('Pod anti-affinity, as in a Pod spec (passed through).').optional(),
  })
  .describe('Scheduling affinity of the log pod, as in a Pod spec.');

export const PodTemplateSchema = z
  .object({
    labels: labelMap('Extra labels for the log pod. Keys under "eventlog.dev/" are reserved.', 64, true).optional(),
    annotations: z
      .record(z.string(), z.string())
      .superRefine(checkKeys(true, 64))
      .meta({ description: 'Extra annotations for the log pod. Keys under "eventlog.dev/" are reserved.', maxProperties: 64, 'x-kubernetes-validations': [noReservedKeys] })
      .optional(),
    nodeSelector: labelMap('Node labels the log pod must be scheduled on.', 32, false).optional(),
    tolerations: z.array(TolerationSchema).max(32).optional().describe('Tolerations of the log pod.'),
    affinity: AffinitySchema.optional(),
    priorityClassName: dnsSubdomain('PriorityClass of the log pod.').optional(),
  })
  .describe('What a user may set on the log pod. Everything else about the pod is owned by the operator.');

export const LabelSelectorRequirementSchema = z
  .object({
    key: z.string().min(1).max(317).describe('Label key.'),
    operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']).describe('In, NotIn, Exists or DoesNotExist.'),
    values: z.array(z.string().max(63)).max(64).optional().describe('Values for In/NotIn (non-empty); must be empty for Exists/DoesNotExist.'),
  })
  .superRefine((r, ctx) => {
    const n = r.values?.length ?? 0;
    if ((r.operator === 'In' || r.operator === 'NotIn') && n === 0) ctx.addIssue({ code: 'custom', path: ['values'], message: 'values must be non-empty for operator In or NotIn' });
    if ((r.operator === 'Exists' || r.operator === 'DoesNotExist') && n > 0) ctx.addIssue({ code: 'custom', path: ['values'], message: 'values must be empty for operator Exists or DoesNotExist' });
  })
  .meta({
    description: 'A label selector requirement (metav1.LabelSelectorRequirement).',
    'x-kubernetes-validations': [
      { rule: "!(self.operator in ['In', 'NotIn']) || (has(self.values) && size(self.values) > 0)", message: 'values must be non-empty for operator In or NotIn', fieldPath: '.values' },
      { rule: "!(self.operator in ['Exists', 'DoesNotExist']) || !has(self.values) || size(self.values) == 0", message: 'values must be empty for operator Exists or DoesNotExist', fieldPath: '.values' },
    ] satisfies CelRule[],
  });

export const LabelSelectorSchema = z
  .object({
    matchLabels: labelMap('Labels a pod must have (ANDed with matchExpressions).', 64, false).optional(),
    matchExpressions: z.array(LabelSelectorRequirementSchema).max(32).optional().describe('Label selector requirements (ANDed).'),
  })
  .meta({ description: 'A label selector (metav1.LabelSelector). An empty selector selects every pod in the namespace.', 'x-kubernetes-map-type': 'atomic' });

export const ClientsSchema = z
  .object({
    podSelector: LabelSelectorSchema.optional().describe(
      'Pods in the EventLog\'s namespace allowed to connect to the log server (the NetworkPolicy the operator owns admits them and the operator\'s namespace). Omit to allow every pod in the namespace; {} also selects every pod. Clients still need the bearer token (status.tokenSecret).',
    ),
  })
  .describe('Who may talk to the log server.');

export const EventLogSpecSchema = z
  .object({
    storage: StorageSpecSchema,
    retention: RetentionSchema.optional(),
    durability: z
      .enum([Durability.Fsync, Durability.Interval, Durability.None])
      .default(Durability.Fsync)
      .describe(
        'When an append is acknowledged. Fsync: after the bytes are fsync\'d (group commit; survives power loss). Interval: after the write, fsync\'d on a short timer (a crash of the node can lose the last interval). None: after the write, never explicitly fsync\'d (survives a process crash, not a node crash).',
      ),
    image: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^\S+$/, { message: 'must be an image reference without whitespace' })
      .optional()
      .describe('Container image of the log server. Default: the operator\'s own image.'),
    resources: ResourcesSchema.optional(),
    podTemplate: PodTemplateSchema.optional(),
    clients: ClientsSchema.optional(),
    driftPolicy: z
      .enum([DriftPolicy.Correct, DriftPolicy.Report])
      .default(DriftPolicy.Correct)
      .describe('What to do when someone changes the owned PVC, pod, Service, token Secret or NetworkPolicy: Correct puts it back and records it; Report only marks Drifted=True and lists it.'),
    suspend: z
      .boolean()
      .default(false)
      .describe('Stop reconciling: the operator leaves owned objects alone (the log keeps running) and reports Reconciling=False/Suspended.'),
  })
  .describe('Desired state of the EventLog.');

