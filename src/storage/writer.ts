/**
 * The commit path: one group of appends is encoded into one buffer, written with one
 * positioned write, made durable with one fdatasync (durability `fsync`), then published
 * to the indexes and acknowledged.
 *
 * Guarantees:
 * - Nothing is published or acknowledged before the write (and in `fsync` mode the
 *   fdatasync) returned; a group that fails is never partly visible.
 * - A new segment is created only after the previous one was fdatasynced (every mode), so
 *   sealed segments are complete.
 * - After a failed group, `cutBack` truncates the active segment to the acknowledged end
 *   and fdatasyncs that: the bytes of the failed group are gone from disk and page cache
 *   alike, so no later fsync can persist (or falsely report) them.
 *
 * - Only an ENOSPC of the group's own write or fdatasync, cut back and confirmed by statfs,
 *   is survivable (`noSpaceOrFatal`); a failed flush of acknowledged data
 *   (DoubtfulFlushError) never is, whatever its errno.
 */
import { fdatasync, fdatasyncSync, ftruncate, writeSync } from 'node:fs';
import { mkdir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../common/logger.ts';
import { UUID_BYTES, type AppendRequest, type AppendResult, type Durability } from './events.ts';
import { FLAG_BATCH, FLAG_MORE, HASH_BYTES, SEGMENT_DIR, decimalDigits, encodeEventInto, encodeFramedEventInto, eventRecordBound, framedRecordBound, payloadOffset } from './format.ts';
import { hashBytes, hashString } from './id-table.ts';
import { LogIndex } from './log-index.ts';
import { createSegment, DoubtfulFlushError, fsyncDir, type Segment } from './segments.ts';
import { isNoSpace, type SpaceGuard, type StatFsFn } from './space.ts';

export interface StoreIo {
  /**
   * fdatasync the file. `inline` asks for a synchronous call on the event loop (the
   * writer does that while the disk is fast); an implementation may always return a
   * promise instead.
   */
  datasync(fh: FileHandle, inline: boolean): void | Promise<void>;
  /** Positioned write; may return the byte count directly (synchronous) or a promise. */
  write(fh: FileHandle, buf: Buffer, position: number): number | Promise<number>;
  /** ftruncate (cutting a failed group back). */
  truncate(fh: FileHandle, size: number): Promise<void>;
  /** statfs of the data dir (free-space guard). */
  statfs: StatFsFn;
}

export const defaultIo: Omit<StoreIo, 'statfs'> = {
  datasync: (fh, inline) => {
    if (inline) return fdatasyncSync(fh.fd);
    return new Promise<void>((resolve, reject) => fdatasync(fh.fd, (err) => (err ? reject(err) : resolve())));
  },
  // A positioned write into the page cache: synchronous, no threadpool round trip.
  write: (fh, buf, position) => writeSync(fh.fd, buf, 0, buf.length, position),
  truncate: (fh, size) => new Promise<void>((resolve, reject) => ftruncate(fh.fd, size, (err) => (err ? reject(err) : resolve()))),
};

/**
 * Where fdatasync runs. A lone append (its group holds one job, the previous group did
 * too, and nothing else arrived in the turn the last commit ended: a lone client, there
 * is nothing else to do meanwhile) syncs inline on the event loop, saving the two thread
 * hand-offs of a threadpool call (like Redis' appendfsync always), as long as the disk is
 * fast (the last fdatasync took less than this). Any other group, or a slow disk, syncs on
 * the libuv threadpool, so the event loop keeps parsing the next requests meanwhile (they
 * form the next group) and never blocks for long.
 */
const INLINE_FSYNC_MAX_SECONDS = 0.002;

const ZERO_HASH = Buffer.alloc(HASH_BYTES);

export interface CommitInfo {
  events: number;
  bytes: number;
  /** Seconds spent in fdatasync, when the commit synced. */
  fsyncSeconds?: number;
}

export interface Job {
  req: AppendRequest;
  resolve: (r: AppendResult) => void;
  reject: (e: Error) => void;
  /** Upper bound of the encoded bytes (sizes group commits). */
  bytesHint: number;
  /** Estimate admitted by the free-space guard. */
  diskEstimate: number;
}

/** What the store shares with the writer and recovery: the open segments and the index. */
export class LogState {
  index = new LogIndex();
  segments: Segment[] = [];
  nextOrd = 0;
  diskBytes = 0;

  bySegOrd(ord: number): Segment | undefined {
    const first = this.segments[0];
    return first === undefined ? undefined : this.segments[ord - first.ord];
  }
  get active(): Segment | undefined {
    return this.segments[this.segments.length - 1];
  }
}

export interface WriterContext {
  dataDir: string;
  durability: Durability;
  io: StoreIo;
  log: Logger;
  data: LogState;
  segmentMaxBytes: number;
  /** Mutable: duration of the last fdatasync. */
  sync: { lastSeconds: number; dirty: boolean };
  onCommit?: ((info: CommitInfo) => void) | undefined;
  /**
   * A group was published (durable under the mode, in the index, readable): its first
   * sequence and its stored events in order. Called once per group, before the appenders
   * are acknowledged; must not throw. The buffers belong to the group: copy what you keep.
   */
  onPublish?: ((firstSequence: number, payloads: Buffer[]) => void) | undefined;
  onWritten(bytes: number): void;
  /** Admitted bytes (guard estimates) that are settled: written (and counted by onWritten) or refused. */
  onTaken(bytes: number): void;
  onRoll(): void;
}

/** Creates the next segment; ordinals stay contiguous (only a created segment takes one). */
async function addSegment(ctx: WriterContext, baseSequence: number): Promise<Segment> {
  const seg = await createSegment(ctx.dataDir, baseSequence, ctx.data.nextOrd);
  ctx.data.nextOrd++;
  ctx.data.segments.push(seg);
  return seg;
}

/** The active segment, created on first use (an empty log has none: start-up never needs space). */
async function activeSegment(ctx: WriterContext, firstSeq: number, total: number): Promise<Segment> {
  let active = ctx.data.active;
  if (active === undefined) {
    if ((await mkdir(join(ctx.dataDir, SEGMENT_DIR), { recursive: true })) !== undefined) {
      await fsyncDir(ctx.dataDir).catch((err: unknown) => {
        throw new DoubtfulFlushError(`fsync of ${ctx.dataDir} after creating ${SEGMENT_DIR}/ failed: ${(err as Error).message}`, { cause: err });
      });
    }
    return addSegment(ctx, firstSeq);
  }
  if (active.size > 0 && active.size + total > ctx.segmentMaxBytes) {
    try {
      await ctx.io.datasync(active.fh, false);
    } catch (err) {
      throw new DoubtfulFlushError(`fdatasync of ${active.path} before rolling failed: ${(err as Error).message}`, { cause: err });
    }
    active = await addSegment(ctx, firstSeq);
    ctx.log.info({ segment: active.name }, 'rolled to a new segment');
    ctx.onRoll();
  }
  return active;
}

/**
 * Writes, syncs (fsync mode), publishes and acknowledges one group. `inline` allows the
 * fdatasync on the event loop (see INLINE_FSYNC_MAX_SECONDS; a slow last sync vetoes it).
 */
export async function commitGroup(ctx: WriterContext, jobs: Job[], inline = false): Promise<void> {
  const index = ctx.data.index;
  const firstSeq = index.lastSequence + 1;
  let n = 0;
  let bound = 0;
  for (let j = 0; j < jobs.length; j++) {
    const { events, idempotencyKey } = jobs[j]!.req;
    n += events.length;
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!;
      const k = i === 0 ? idempotencyKey : undefined;
      bound += e.framed !== undefined ? framedRecordBound(UUID_BYTES, k, e.framed.preTail, e.framed.json) : eventRecordBound(e.id, k, e.pre, e.body ?? e.post);
    }
  }
  // Encode into one buffer sized by an upper bound; the real sizes come from the writes.
  const buf = Buffer.allocUnsafe(bound);
  const spans = new Uint32Array(n * 2); // payload offset, payload bytes per record
  const idHashes = new Uint32Array(n);
  let at = 0;
  let r = 0;
  let seq = firstSeq;
  let digits = decimalDigits(seq);
  let nextPow10 = 10 ** digits;
  for (let j = 0; j < jobs.length; j++) {
    const { events, batch, idempotencyKey, requestHash: hash } = jobs[j]!.req;
    const last = events.length - 1;
    for (let i = 0; i <= last; i++) {
      const e = events[i]!;
      if (seq === nextPow10) {
        digits++;
        nextPow10 *= 10;
      }
      const flags = batch ? FLAG_BATCH | (i < last ? FLAG_MORE : 0) : 0;
      const first = i === 0 && idempotencyKey !== undefined;
      const key = first ? idempotencyKey : undefined;
      const h = first ? (hash ?? ZERO_HASH) : undefined;
      const f = e.framed;
      let end: number;
      if (f !== undefined) {
        end = encodeFramedEventInto(buf, at, seq, flags, f.idPool, f.idAt, UUID_BYTES, key, h, f.preTail, digits, f.json);
        idHashes[r] = hashBytes(f.idPool, f.idAt, f.idAt + UUID_BYTES);
      } else {
        end = encodeEventInto(buf, at, seq, flags, e.id, key, h, e.pre, digits, e.body === undefined ? e.post : '', e.body);
        idHashes[r] = hashString(e.id);
      }
      const pAt = payloadOffset(buf, at);
      spans[r * 2] = pAt;
      spans[r * 2 + 1] = end - pAt;
      at = end;
      seq++;
      r++;
    }
  }
  const total = at;
  const active = await activeSegment(ctx, firstSeq, total);
  const position = active.size;
  let written = 0;
  try {
    while (written < total) {
      const w = ctx.io.write(active.fh, buf.subarray(written, total), position + written);
      const wn = typeof w === 'number' ? w : await w;
      if (wn <= 0) throw new Error(`writing ${total - written} bytes to ${active.path} at ${position + written}: wrote ${wn}`);
      written += wn;
    }
  } finally {
    ctx.onWritten(written);
  }
  let fsyncSeconds: number | undefined;
  if (ctx.durability === 'fsync') {
    const t0 = process.hrtime.bigint();
    const d = ctx.io.datasync(active.fh, inline && jobs.length === 1 && ctx.sync.lastSeconds < INLINE_FSYNC_MAX_SECONDS);
    if (d !== undefined) await d;
    fsyncSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    ctx.sync.lastSeconds = fsyncSeconds;
  } else {
    ctx.sync.dirty = true;
  }
  // Durable (under the mode): publish, then acknowledge.
  active.size += total;
  ctx.data.diskBytes += total;
  seq = firstSeq;
  r = 0;
  const results: AppendResult[] = new Array(jobs.length);
  for (let j = 0; j < jobs.length; j++) {
    const { events, batch, idempotencyKey, requestHash: hash } = jobs[j]!.req;
    const jobFirst = seq;
    const out: Buffer[] = new Array(events.length);
    for (let i = 0; i < events.length; i++) {
      const pAt = spans[r * 2]!;
      const pB = spans[r * 2 + 1]!;
      index.push(active.ord, position + pAt, pB);
      index.ids.insert(idHashes[r]!, seq);
      out[i] = buf.subarray(pAt, pAt + pB);
      seq++;
      r++;
    }
    if (idempotencyKey !== undefined && !index.keys.has(idempotencyKey)) {
      index.keys.set(idempotencyKey, {
        sequence: jobFirst,
        count: events.length,
        hash: (hash ?? ZERO_HASH).subarray(0, HASH_BYTES).toString('base64'),
        batch,
      });
    }
    results[j] = { replayed: false, batch, firstSequence: jobFirst, payloads: out };
  }
  ctx.onCommit?.({ events: seq - firstSeq, bytes: total, ...(fsyncSeconds !== undefined ? { fsyncSeconds } : {}) });
  if (ctx.onPublish !== undefined) {
    const all = jobs.length === 1 ? results[0]!.payloads : results.flatMap((x) => x.payloads);
    try {
      ctx.onPublish(firstSeq, all);
    } catch (err) {
      ctx.log.error({ err }, 'a commit listener threw');
    }
  }
  for (let j = 0; j < jobs.length; j++) jobs[j]!.resolve(results[j]!);
}

/**
 * After a failed group: truncate the active segment back to its acknowledged end and
 * fdatasync that. Throws (fatal) when either fails: then nothing can be trusted without a
 * restart and a recovery.
 */
export async function cutBack(ctx: WriterContext, cause: Error): Promise<void> {
  const active = ctx.data.active;
  if (active === undefined) return;
  try {
    await ctx.io.truncate(active.fh, active.size);
    const d = ctx.io.datasync(active.fh, false);
    if (d !== undefined) await d;
  } catch (err) {
    throw new DoubtfulFlushError(`${cause.message}; cutting ${active.path} back to its acknowledged ${active.size} bytes failed: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Decides after a failed group: an ENOSPC of the group's own write or sync, cut back and
 * confirmed by a fresh statfs, is survivable (returns undefined: refuse the group as
 * full). Anything else is fatal (returned): another errno, a doubtful flush, a failed
 * cut-back, a failed statfs, or an ENOSPC the figures contradict (the space ran out below
 * the filesystem, e.g. a thin pool, where written pages are in doubt).
 */
export async function noSpaceOrFatal(ctx: WriterContext, space: SpaceGuard, err: Error, jobs: Job[]): Promise<Error | undefined> {
  if (!isNoSpace(err) || err instanceof DoubtfulFlushError) return err;
  try {
    await cutBack(ctx, err);
  } catch (e) {
    return e as Error;
  }
  const f = await space.refresh().catch(() => undefined);
  if (f === undefined) return new Error(`${err.message}; statfs failed too: ${space.statfsError?.message}`, { cause: err });
  let group = 0;
  for (const j of jobs) group += j.diskEstimate;
  if (!space.confirmsNoSpace(f, group)) {
    return new Error(`${err.message}, yet the filesystem reports ${f.freeBytes} bytes free: the space ran out below it (written data is in doubt)`, { cause: err });
  }
  return undefined;
}

/** What the writer loop asks of the store it works for. */
export interface WriterHost {
  /** Groups may be written (ready, closing). */
  writable(): boolean;
  /** Background fdatasyncs may run (ready, full, closing). */
  syncable(): boolean;
  /** A group failed: undefined when handled (refused as full), else the fatal error. */
  onGroupError(err: Error, jobs: Job[]): Promise<Error | undefined>;
  fail(err: Error, jobs: Job[]): void;
}

/**
 * The one writer: owns the queue of admitted appends and, in `interval` mode, the periodic
 * fdatasync. Leader/follower group commit, with no timer:
 * - an append that finds the writer idle starts a group at once (in a microtask: appends
 *   made by the same synchronous code join it), so a lone append waits for nothing;
 * - appends that arrive while a group is being written and synced queue up and form the
 *   next group, started as soon as the previous one is durable (up to maxCommitBytes);
 * - an append that arrives in the same event-loop turn in which a group ended (others
 *   are answering at the same moment: concurrent clients) starts its group at the end of
 *   that turn instead, so every request read in that turn joins it.
 */
export class GroupWriter {
  readonly #ctx: WriterContext;
  readonly #host: WriterHost;
  readonly #maxCommitBytes: number;
  #queue: Job[] = [];
  #loop: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #syncing: Promise<void> | undefined;
  /** A group ended in the current event-loop turn (cleared by a setImmediate). */
  #endedThisTurn = false;
  /** Jobs of the last group (1: appends have been arriving one at a time). */
  #lastGroupJobs = 1;

  constructor(ctx: WriterContext, host: WriterHost, maxCommitBytes: number) {
    this.#ctx = ctx;
    this.#host = host;
    this.#maxCommitBytes = maxCommitBytes;
  }

  enqueue(job: Job): void {
    this.#queue.push(job);
    if (this.#loop === undefined) this.#loop = this.#run(this.#endedThisTurn);
  }

  /** Removes and returns everything queued (to refuse it). */
  takeQueued(): Job[] {
    return this.#taken(this.#queue.splice(0));
  }

  #taken(jobs: Job[]): Job[] {
    let n = 0;
    for (let i = 0; i < jobs.length; i++) n += jobs[i]!.diskEstimate;
    this.#ctx.onTaken(n);
    return jobs;
  }

  /** Resolves when the loop has nothing left to do. */
  async drain(): Promise<void> {
    while (this.#loop !== undefined) await this.#loop;
  }

  async #run(concurrent: boolean): Promise<void> {
    try {
      // Leader: start now (a microtask: never before enqueue() returned). After a group
      // that ended in this very turn: at the end of the turn, with everything read in it.
      if (concurrent) await new Promise<void>((r) => setImmediate(r));
      else await undefined;
      let first = !concurrent;
      while (this.#queue.length > 0 && this.#host.writable()) {
        let take = 0;
        let hint = 0;
        while (take < this.#queue.length && (take === 0 || hint + this.#queue[take]!.bytesHint <= this.#maxCommitBytes)) {
          hint += this.#queue[take]!.bytesHint;
          take++;
        }
        const jobs = this.#queue.splice(0, take);
        // Inline only for a lone append after lone appends; a group formed while another
        // was in flight, or what queued behind it, syncs on the threadpool.
        const inline = first && take === 1 && this.#lastGroupJobs === 1 && this.#queue.length === 0;
        first = false;
        this.#lastGroupJobs = take;
        let fatal: Error | undefined;
        try {
          await commitGroup(this.#ctx, jobs, inline);
        } catch (err) {
          fatal = await this.#host.onGroupError(err instanceof Error ? err : new Error(String(err)), jobs);
        } finally {
          // Only now: until the write returned the group's bytes were neither written nor
          // pending for the guard (counting them twice meanwhile errs on the safe side).
          this.#taken(jobs);
        }
        if (fatal !== undefined) return this.#host.fail(fatal, jobs);
      }
    } finally {
      // Cleared synchronously with the loop's last check: an append queued after it starts a new loop.
      this.#loop = undefined;
      if (!this.#endedThisTurn) {
        this.#endedThisTurn = true;
        setImmediate(() => (this.#endedThisTurn = false));
      }
    }
  }

  startIntervalSync(ms: number): void {
    this.#timer ??= setInterval(() => void this.syncNow(), ms);
    this.#timer.unref();
  }
  stopIntervalSync(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** interval/none modes: fdatasync the active segment if anything was written since the last sync. */
  syncNow(): Promise<void> {
    if (this.#syncing !== undefined) return this.#syncing;
    const seg = this.#ctx.data.active;
    if (!this.#ctx.sync.dirty || seg === undefined || !this.#host.syncable()) return Promise.resolve();
    this.#ctx.sync.dirty = false;
    const t0 = process.hrtime.bigint();
    this.#syncing = Promise.resolve()
      .then(() => this.#ctx.io.datasync(seg.fh, false))
      .then(() => this.#ctx.onCommit?.({ events: 0, bytes: 0, fsyncSeconds: Number(process.hrtime.bigint() - t0) / 1e9 }))
      // Acknowledged events sit in these pages: any failure (ENOSPC too) is fatal.
      .catch((err: unknown) => this.#host.fail(err instanceof Error ? err : new Error(String(err)), []))
      .finally(() => (this.#syncing = undefined));
    return this.#syncing;
  }

  /** Clean shutdown: waits for a running sync, then syncs what interval/none mode left dirty. */
  async finalSync(): Promise<void> {
    this.stopIntervalSync();
    await this.#syncing;
    const active = this.#ctx.data.active;
    if (active !== undefined && this.#ctx.durability !== 'fsync' && this.#ctx.sync.dirty) {
      this.#ctx.sync.dirty = false;
      await this.#ctx.io.datasync(active.fh, false);
    }
  }
}
