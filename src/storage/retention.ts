/**
 * Retention: which whole sealed segments may go, and the on-disk marker that makes their
 * deletion crash-safe.
 *
 * Guarantees:
 * - Only sealed segments go, oldest first, as a contiguous prefix: never the active
 *   (last) segment, never a segment after one that is kept.
 * - By age, a segment goes only when its newest write is older than maxAge (the later of
 *   its file mtime and the createdAt of its last event). By bytes, oldest sealed
 *   segments go while the segment bytes exceed maxBytes. Either limit removes.
 * - Deletion order: (1) the marker `FIRST_SEQUENCE` names the new first retained
 *   sequence (a symlink written under a temporary name, renamed over the old one, data
 *   dir fsynced); (2) the segments before it are unlinked oldest first; (3) the segment
 *   dir is fsynced. A crash after (1) leaves segments recovery knows to finish deleting
 *   (the marker says they are gone); a crash before (1) leaves the log as it was. Either
 *   way recovery is Clean. Without a marker a log must start at sequence 1, so a segment
 *   lost by accident at the head is still reported as corruption, never skipped.
 * - The marker is a symlink because its target lives in the inode: writing it needs no
 *   free data block, so retention can run (and free space) on a full volume.
 */
import { readlink, rename, symlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../common/logger.ts';
import { SEGMENT_DIR } from './format.ts';
import type { RetentionSnapshot } from './options.ts';
import { closeWhenIdle, fsyncDir, type Segment } from './segments.ts';
import type { LogState } from './writer.ts';

export const FIRST_SEQUENCE_MARKER = 'FIRST_SEQUENCE';
const MARKER_PREFIX = 'first-sequence:';

export interface RetentionPolicy {
  maxAgeMs?: number;
  maxBytes?: number;
}

export interface RetentionCandidate {
  baseSequence: number;
  size: number;
  /** Newest write in the segment (ms since epoch); undefined when unknown (kept by age). */
  newestMs: number | undefined;
}

/**
 * How many segments from the front may be deleted. `segments` is the whole log in order;
 * the last one is the active segment and is never counted.
 */
export function planRetention(segments: RetentionCandidate[], policy: RetentionPolicy, now: number): number {
  if (policy.maxAgeMs === undefined && policy.maxBytes === undefined) return 0;
  let total = 0;
  for (const s of segments) total += s.size;
  let k = 0;
  while (k < segments.length - 1) {
    const s = segments[k]!;
    const tooBig = policy.maxBytes !== undefined && total > policy.maxBytes;
    const tooOld = policy.maxAgeMs !== undefined && s.newestMs !== undefined && now - s.newestMs > policy.maxAgeMs;
    if (!tooBig && !tooOld) break;
    total -= s.size;
    k++;
  }
  return k;
}

/** The first retained sequence from the marker; 1 when there is none (nothing was ever removed). */
export async function readFirstSequence(dataDir: string): Promise<number> {
  let target: string;
  try {
    target = await readlink(join(dataDir, FIRST_SEQUENCE_MARKER));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 1;
    throw new Error(`reading the retention marker ${join(dataDir, FIRST_SEQUENCE_MARKER)}: ${(err as Error).message}`, { cause: err });
  }
  const m = /^first-sequence:(\d{1,16})$/.exec(target);
  const n = m === null ? NaN : Number(m[1]);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new Error(`the retention marker ${join(dataDir, FIRST_SEQUENCE_MARKER)} is not understood (${JSON.stringify(target)})`);
  }
  return n;
}

/** Durably records `first` as the first retained sequence (step 1 above). */
export async function writeFirstSequence(dataDir: string, first: number): Promise<void> {
  const tmp = join(dataDir, `${FIRST_SEQUENCE_MARKER}.tmp`);
  await unlink(tmp).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
  });
  await symlink(`${MARKER_PREFIX}${first}`, tmp);
  await rename(tmp, join(dataDir, FIRST_SEQUENCE_MARKER));
  await fsyncDir(dataDir);
}

/** The createdAt of a stored event as ms since epoch, or undefined when absent or unparsable. */
export function createdAtMs(payload: Buffer): number | undefined {
  // Read once per sealed segment (the result is cached), so a full parse is affordable and
  // exact for imported events too, whose createdAt may sit anywhere in the object.
  try {
    const v = (JSON.parse(payload.toString('utf8')) as { createdAt?: unknown }).createdAt;
    if (typeof v !== 'string') return undefined;
    const t = Date.parse(v);
    return Number.isFinite(t) ? t : undefined;
  } catch {
    return undefined;
  }
}

export interface RetentionRun {
  segments: number;
  events: number;
  bytes: number;
  firstSequence: number;
}

/**
 * One retention pass over the open log (the store serializes passes): plans, writes the
 * marker, forgets the removed prefix in memory, unlinks oldest first, fsyncs the dir.
 * Returns undefined when nothing was due.
 */
export async function retainOnce(
  dataDir: string,
  data: LogState,
  policy: RetentionPolicy,
  now: number,
  read: (sequence: number) => Promise<Buffer | undefined>,
  log: Logger,
): Promise<RetentionRun | undefined> {
  const segs = data.segments;
  const cands: RetentionCandidate[] = [];
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i]!;
    const aged = policy.maxAgeMs !== undefined && i < segs.length - 1;
    cands.push({ baseSequence: s.baseSequence, size: s.size, newestMs: aged ? await newestMs(s, segs[i + 1]!.baseSequence - 1, read) : undefined });
  }
  const k = planRetention(cands, policy, now);
  if (k === 0 || data.segments !== segs || segs[k] === undefined) return undefined;
  const victims = segs.slice(0, k);
  const first = segs[k]!.baseSequence;
  await writeFirstSequence(dataDir, first); // durable before anything goes
  // From here on the prefix is gone for readers (a read in progress keeps its handle).
  const dropped = data.index.dropBefore(first);
  data.segments.splice(0, k);
  let bytes = 0;
  for (const v of victims) bytes += v.size;
  data.diskBytes -= bytes;
  for (const v of victims) {
    v.retired = true;
    await unlink(v.path).catch((err: unknown) => log.warn({ err, segment: v.name }, 'could not delete a retired segment; recovery deletes it'));
    closeWhenIdle(v);
  }
  await fsyncDir(join(dataDir, SEGMENT_DIR)).catch((err: unknown) => log.warn({ err }, 'fsync of the segment dir after retention failed'));
  return { segments: k, events: dropped.records, bytes, firstSequence: first };
}

/** Newest write of a sealed segment: the later of its mtime and its last event's createdAt (cached). */
async function newestMs(seg: Segment, lastSeq: number, read: (sequence: number) => Promise<Buffer | undefined>): Promise<number> {
  if (seg.newestMs !== undefined) return seg.newestMs;
  const mtime = (await seg.fh.stat()).mtimeMs;
  const last = await read(lastSeq);
  const created = last === undefined ? undefined : createdAtMs(last);
  seg.newestMs = Math.max(mtime, created ?? mtime);
  return seg.newestMs;
}

/**
 * Retention bookkeeping for one store: serializes passes, remembers when the last one ran
 * and what retention removed since start (including what recovery finished for it).
 */
export class RetentionRunner {
  readonly policy: RetentionPolicy | undefined;
  readonly #now: () => number;
  #running: Promise<RetentionRun | undefined> | undefined;
  #lastRunAt = 0;
  readonly removed = { segments: 0, events: 0, bytes: 0, at: null as string | null };

  constructor(policy: RetentionPolicy | undefined, now: () => number) {
    this.policy = policy;
    this.#now = now;
  }

  /** Whether a periodic pass is due (always while full: it may free the space). */
  due(full: boolean, everyMs: number): boolean {
    return this.policy !== undefined && (full || Date.now() - this.#lastRunAt >= everyMs);
  }

  /** One pass (joins a running one). `pass` does the work against the open log. */
  run(pass: (policy: RetentionPolicy, now: number) => Promise<RetentionRun | undefined>): Promise<RetentionRun | undefined> {
    const policy = this.policy;
    if (policy === undefined) return Promise.resolve(undefined);
    this.#running ??= (async () => {
      this.#lastRunAt = Date.now();
      const r = await pass(policy, this.#now());
      if (r !== undefined) this.note(r);
      return r;
    })().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async idle(): Promise<void> {
    await this.#running?.catch(() => undefined);
  }

  note(r: { segments: number; events: number; bytes: number }): void {
    this.removed.segments += r.segments;
    this.removed.events += r.events;
    this.removed.bytes += r.bytes;
    this.removed.at = new Date(this.#now()).toISOString();
  }

  snapshot(firstSequence: number): RetentionSnapshot {
    const p = this.policy;
    return {
      maxAgeSeconds: p?.maxAgeMs === undefined ? null : Math.round(p.maxAgeMs / 1000),
      maxBytes: p?.maxBytes ?? null,
      firstSequence,
      removedSegments: this.removed.segments,
      removedEvents: this.removed.events,
      removedBytes: this.removed.bytes,
      lastRemovedAt: this.removed.at,
    };
  }
}
