/**
 * Kubernetes time formats. `metav1.MicroTime` (Lease renewTime, Event eventTime) must
 * carry exactly six fractional digits; the generated client's millisecond format is
 * rejected by the API server.
 */

/** RFC 3339 with exactly six fractional digits, as metav1.MicroTime requires. */
export function formatMicroTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** RFC 3339, UTC, whole seconds, as metav1.Time (conditions, status times) carries it. */
export function formatTime(d: Date | number | string): string {
  const ms = new Date(d).getTime();
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}
