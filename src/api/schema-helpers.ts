/**
 * Reusable pieces of the EventLog schema: CEL rules with their zod twins, quantities,
 * names, label maps, times. Every helper keeps the CRD (generated) and zod (parsing) in
 * step: the same rule, the same message.
 */
import { z } from 'zod';
import { QUANTITY_PATTERN, parseQuantity } from '../kube/quantity.ts';
import { RESERVED_PREFIX } from './vocabulary.ts';

// ---------------------------------------------------------------------------
// Reusable pieces
// ---------------------------------------------------------------------------

/** A CEL validation rule as it appears in `x-kubernetes-validations`. */
export interface CelRule {
  rule: string;
  message: string;
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

/** Quote a string (typically a regex source) as a single-quoted CEL string literal. */
export function celString(s: string): string {
  return `'${s.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

/** Non-negative quantity pattern: Kubernetes' Quantity pattern without a leading minus. */
export const NONNEGATIVE_QUANTITY = new RegExp(QUANTITY_PATTERN.source.replace('^(\\+|-)?', '^\\+?'));
export const QUANTITY_MAX_LENGTH = 64;

/**
 * A Kubernetes quantity (string like "10Gi"/"500m", or a non-negative integer),
 * normalised to a string. In the CRD: `x-kubernetes-int-or-string` with the pattern.
 */
export function quantity(description: string, options: { positive?: string } = {}) {
  const positive = options.positive;
  return z
    .union(
      [
        z
          .string()
          .max(QUANTITY_MAX_LENGTH)
          .regex(NONNEGATIVE_QUANTITY, { message: 'must be a Kubernetes quantity such as "10Gi", "500Mi" or "250m"' }),
        z.int().min(0),
      ],
      { error: 'must be a Kubernetes quantity: a string such as "10Gi" or a non-negative integer' },
    )
    .transform((v) => String(v))
    .refine((v) => positive === undefined || (parseQuantity(v)?.num ?? 0n) > 0n, { message: positive ?? '' })
    .meta({ 'x-kubernetes-int-or-string': true, description });
}

export const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** Kubernetes qualified name (label/annotation key): optional DNS prefix + "/" + name (<= 63). */
export const QUALIFIED_NAME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
export const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
/** DNS-1035 label: what a Service name must be. */
export const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
export const MAX_NAME_LENGTH = 63;

export function dnsSubdomain(description: string) {
  return z
    .string()
    .min(1)
    .max(253)
    .regex(DNS1123_SUBDOMAIN, { message: 'must be a lowercase DNS subdomain (a-z, 0-9, "-", ".")' })
    .describe(description);
}

export const noReservedKeys: CelRule = {
  rule: `self.all(k, !k.startsWith(${celString(RESERVED_PREFIX)}))`,
  message: `keys with the prefix "${RESERVED_PREFIX}" are reserved for the operator`,
};

/**
 * Check map keys with readable messages (zod's own record-key errors only say
 * "Invalid key in record"). `reserved`: also refuse keys under RESERVED_PREFIX.
 */
export function checkKeys(reserved: boolean, maxEntries: number) {
  return (m: Record<string, string>, ctx: z.core.$RefinementCtx<Record<string, string>>) => {
    const keys = Object.keys(m);
    if (keys.length > maxEntries) ctx.addIssue({ code: 'custom', message: `at most ${maxEntries} entries (got ${keys.length})` });
    for (const k of keys) {
      if (k.length > 317 || !QUALIFIED_NAME.test(k)) {
        ctx.addIssue({ code: 'custom', path: [k], message: `key "${k}" must be a qualified name such as "team" or "example.com/team" (name part at most 63 characters)` });
      } else if (reserved && k.startsWith(RESERVED_PREFIX)) {
        ctx.addIssue({ code: 'custom', path: [k], message: `key "${k}": keys with the prefix "${RESERVED_PREFIX}" are reserved for the operator` });
      }
    }
  };
}

export const labelValue = z
  .string()
  .max(63)
  .regex(LABEL_VALUE, { message: 'must be a label value: at most 63 characters a-z, A-Z, 0-9, "-", "_", "." starting and ending alphanumeric' });

/** A label map (labels, nodeSelector, matchLabels). */
export function labelMap(description: string, maxProperties: number, reserved: boolean) {
  return z
    .record(z.string(), labelValue)
    .superRefine(checkKeys(reserved, maxProperties))
    .meta({ description, maxProperties, ...(reserved ? { 'x-kubernetes-validations': [noReservedKeys] } : {}) });
}



/** A metav1.Time (RFC 3339). */
export const Time = z.iso.datetime({ offset: true });
export const int64 = () => z.int().min(0);
