/**
 * Kubernetes time formats. `metav1.MicroTime` (Lease renewTime, Event eventTime) must
 * carry exactly six fractional digits; the generated client's millisecond format is
 * rejected by the API server.
 */

/** RFC 3339 with exactly six fractional digits, as metav1.MicroTime requires. */
export function formatMicroTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
