/**
 * The pure figures of `npm run bench:operator` (bench/operator.ts): Prometheus text
 * parsing, histogram_quantile over the difference of two scrapes, and counting one
 * user's write requests in a time window of a kube-apiserver JSON audit log.
 * Unit-tested in test/unit/bench/operator-figures.test.ts. Also the V8 heap sizing of a
 * memory limit (`heapFlagsForLimit`).
 */
import { z } from 'zod';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parseProm(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1]!, x[2]!]));
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

export const sum = (samples: Sample[], name: string, match: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);

/** Cumulative bucket counts by upper bound (le); series of several scrapes (process restarts) add up. */
export function buckets(samples: Sample[], name: string, match: Record<string, string>): Map<number, number> {
  const m = new Map<number, number>();
  for (const s of samples) {
    if (s.name !== `${name}_bucket` || !Object.entries(match).every(([k, v]) => s.labels[k] === v)) continue;
    const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
    m.set(le, (m.get(le) ?? 0) + s.value);
  }
  return m;
}

/** histogram_quantile over the difference of two scrapes (linear within a bucket). */
export function quantileBetween(q: number, before: Map<number, number>, after: Map<number, number>): number | undefined {
  const les = [...after.keys()].sort((a, b) => a - b);
  const cum = les.map((le) => (after.get(le) ?? 0) - (before.get(le) ?? 0));
  const total = cum.at(-1) ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  for (let i = 0; i < les.length; i++) {
    if (cum[i]! >= rank) {
      const upper = les[i]!;
      const lower = i === 0 ? 0 : les[i - 1]!;
      if (upper === Infinity) return lower; // like Prometheus: the highest finite bound
      const below = i === 0 ? 0 : cum[i - 1]!;
      const inBucket = cum[i]! - below;
      return inBucket > 0 ? lower + ((upper - lower) * (rank - below)) / inBucket : upper;
    }
  }
  return undefined;
}

const AuditEvent = z.object({
  auditID: z.string().optional(),
  stage: z.string(),
  verb: z.string(),
  user: z.object({ username: z.string().optional() }).optional(),
  objectRef: z.object({ resource: z.string().optional(), subresource: z.string().optional() }).optional(),
  requestReceivedTimestamp: z.string(),
  responseStatus: z.object({ code: z.number().optional() }).optional(),
});

/** Write requests by `user` received in [fromMs, toMs), counted per "verb resource[/sub]". */
export function countWrites(auditText: string, user: string, fromMs: number, toMs: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of auditText.split('\n')) {
    if (!line.trim()) continue;
    const parsed = AuditEvent.safeParse(JSON.parse(line));
    if (!parsed.success) continue;
    const e = parsed.data;
    if (e.stage !== 'ResponseComplete' || e.user?.username !== user) continue;
    if (!['create', 'update', 'patch', 'delete', 'deletecollection'].includes(e.verb)) continue;
    const t = Date.parse(e.requestReceivedTimestamp);
    if (t < fromMs || t >= toMs) continue;
    const key = `${e.verb} ${e.objectRef?.resource ?? '?'}${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ''}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}


/**
 * Every request (reads, watches and writes) by `user` received in [fromMs, toMs),
 * counted once each (by auditID, whatever stages were logged) per "verb resource[/sub]".
 * Needs an audit policy that logs the user's requests of every verb.
 */
export function countRequests(auditText: string, user: string, fromMs: number, toMs: number): Map<string, number> {
  const counts = new Map<string, number>();
  const seen = new Set<string>();
  for (const line of auditText.split('\n')) {
    if (!line.trim() || !line.includes(user)) continue;
    const parsed = AuditEvent.safeParse(JSON.parse(line));
    if (!parsed.success) continue;
    const e = parsed.data;
    if (e.user?.username !== user) continue;
    const id = e.auditID ?? line;
    if (seen.has(id)) continue;
    const t = Date.parse(e.requestReceivedTimestamp);
    if (t < fromMs || t >= toMs) continue;
    seen.add(id);
    const key = `${e.verb} ${e.objectRef?.resource ?? '?'}${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ''}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/**
 * The V8 heap sizing Node gives itself inside a memory limit of `mib` MiB (libuv reads the
 * cgroup limit, V8 sizes the heap from it), as flags for a process outside that limit:
 * old generation max(256, limit / 2) MiB; semi space 1 MiB while the old generation is at
 * most 256 MiB, else old / 32 (at most 64). Measured with `docker run -m <limit>
 * eventlog:dev` (heap_size_limit, largest new space): 384Mi -> 259 MiB and 1 MiB,
 * 1024Mi -> 560 and 16, 4096Mi -> 2240 and 64, which these flags reproduce exactly.
 */
export function heapFlagsForLimit(mib: number): string[] {
  const old = Math.max(256, Math.floor(mib / 2));
  const semi = old <= 256 ? 1 : Math.min(64, Math.floor(old / 32));
  return [`--max-old-space-size=${old}`, `--max-semi-space-size=${semi}`];
}
