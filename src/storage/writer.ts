/**
 * The writer: the one queue of admitted appends and the loop that turns it into group
 * commits (commit.ts writes, syncs and publishes one group), plus the periodic fdatasync
 * of `interval` mode; the I/O seam (StoreIo) and the state shared with recovery.
 *
 * Guarantees: one writer assigns positions (never concurrent O_APPEND writes); groups are
 * committed one at a time, in queue order, so sequences follow acknowledgement order;
 * a failed group is handed to the store (onGroupError) before anything else is written.
 */
import { fdatasync, fdatasyncSync, ftruncate, writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { Logger } from '../common/logger.ts';
import { commitGroup } from './commit.ts';
import type { AppendRequest, AppendResult, Durability } from './events.ts';
import { LogIndex } from './log-index.ts';
import type { Segment } from './segments.ts';
import type { StatFsFn } from './space.ts';

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

/** Lone groups in a row before lone appends sync inline (see GroupWriter). */
const LONE_STREAK = 4;

/**
 * The one writer: owns the queue of admitted appends and, in `interval` mode, the periodic
 * fdatasync. Leader/follower group commit, with no timer:
 * - an append that finds the writer idle starts a group at once (in a microtask: appends
 *   made by the same synchronous code join it), so a lone append waits for nothing;
 * - appends that arrive while a group is being written and synced queue up and form the
 *   next group, started as soon as the previous one is durable (up to maxCommitBytes);
 * - an append that arrives in the same event-loop turn in which a group ended (others
 *   are answering at the same moment: concurrent clients) starts its group at the end of
 *   that turn instead, so every request read in that turn joins it;
 * - a group's fdatasync runs inline on the event loop only for a lone append after more
 *   than LONE_STREAK lone groups in a row (a lone client: nothing else to do meanwhile),
 *   else on the threadpool (commit.ts).
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
  /**
   * Groups in a row that held one append and started at once (no concurrency seen):
   * beyond LONE_STREAK, a lone append syncs inline.
   */
  #loneStreak = LONE_STREAK;

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
        // Inline only for a lone append after a streak of lone appends (a lone client);
        // a group formed while another was in flight, or what queued behind it, or any
        // group soon after concurrency was seen, syncs on the threadpool.
        const lone = first && take === 1 && this.#queue.length === 0;
        this.#loneStreak = lone ? this.#loneStreak + 1 : 0;
        const inline = lone && this.#loneStreak > LONE_STREAK;
        first = false;
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
