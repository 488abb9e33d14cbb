/**
 * The commit path: one group of appends is encoded into one buffer, written with one
 * positioned write, made durable with one fdatasync (durability `fsync`), then published
 * to the indexes and acknowledged. GroupWriter (writer.ts) decides what a group is.
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
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { UUID_BYTES, type AppendResult } from './events.ts';
import { FLAG_BATCH, FLAG_MORE, HASH_BYTES, SEGMENT_DIR, decimalDigits, encodeEventInto, encodeFramedEventInto, eventRecordBound, framedRecordBound, payloadOffset } from './format.ts';
import { hashBytes, hashString } from './id-table.ts';
import { createSegment, DoubtfulFlushError, fsyncDir, type Segment } from './segments.ts';
import { isNoSpace, type SpaceGuard } from './space.ts';
import type { Job, WriterContext } from './writer.ts';

/**
 * Where fdatasync runs. A lone append (its group holds one job and started at once, after
 * a streak of such groups: a lone client, there is nothing else to do meanwhile; the
 * writer decides, `inline`) syncs inline on the event loop, saving the two thread
 * hand-offs of a threadpool call (like Redis' appendfsync always), as long as the disk is
 * fast (the last fdatasync took less than this). Any other group, or a slow disk, syncs on
 * the libuv threadpool, so the event loop keeps parsing the next requests meanwhile (they
 * form the next group) and never blocks for long.
 */
const INLINE_FSYNC_MAX_SECONDS = 0.002;

const ZERO_HASH = Buffer.alloc(HASH_BYTES);

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
