/**
 * EventStore: the storage engine's state machine. Appends are admitted (free-space guard),
 * queued and written by one writer loop in group commits (writer.ts, commit.ts); reads go through the
 * in-memory index; recovery and repair live in recovery.ts, retention planning in
 * retention.ts, the free-space figures in space.ts.
 *
 * States: recovering -> ready | full | corrupt; ready <-> full; any -> failed; closing.
 *
 * Guarantees:
 * - An append is acknowledged only once durable under the mode; readers only ever see
 *   acknowledged records.
 * - A failed write or fdatasync is never retried. ENOSPC of a group's own write or sync,
 *   confirmed by statfs, is not a crash: the group is refused, the segment cut back to
 *   its acknowledged end and fdatasynced, and the store turns `full`. Every other failure
 *   (or a failed cut-back) turns it `failed`: every pending and later append is rejected
 *   and `onFatal` fires (the server exits; recovery decides from what is on disk).
 * - `full` is left by itself: a statfs every `spaceCheckMs` (1 s) turns the store
 *   `ready` again once the reserve plus one maximal append is free.
 * - Retention deletes only whole sealed segments, oldest first, crash-safely (retention.ts).
 *
 * Caveats: an ENOSPC that statfs contradicts (more than reserve + the group free after
 * the cut-back, and inodes left) is treated as an I/O failure: the space went away below
 * the filesystem (e.g. a thin pool), where written pages are in doubt and `full` could
 * never be left (commit.ts noSpaceOrFatal). While full, every new append is refused, even
 * one that would fit: full is a state, left with hysteresis, not a per-request verdict.
 */
import { mkdir } from 'node:fs/promises';
import type { Logger } from '../common/logger.ts';
import { silentLogger } from '../common/logger.ts';
import { appendDiskEstimate, StoreError, type AppendRequest, type AppendResult, type Durability } from './events.ts';
import { HASH_BYTES } from './format.ts';
import { acquireLock, type DirLock } from './lock.ts';
import type { KeyEntry } from './log-index.ts';
import type { RetentionSnapshot, StatsSnapshot, StorageSnapshot, StoreOptions } from './options.ts';
import { readById, readRange } from './reader.ts';
import { moveCorruptionAside, recoverLog } from './recovery.ts';
import type { RecoveryReport } from './report.ts';
import { retainOnce, RetentionRunner, type RetentionRun } from './retention.ts';
import type { ScanFailure } from './scan.ts';
import { pruneSideFiles, sideFileBytes } from './side-files.ts';
import { defaultSegmentBytes, defaultStatfs, SpaceGuard } from './space.ts';
import { noSpaceOrFatal } from './commit.ts';
import { defaultIo, GroupWriter, LogState, type Job, type StoreIo, type WriterContext } from './writer.ts';

export { DURABILITY_MODES, RESERVED_FIELDS, StoreError, eventBodyJson, eventDraft, eventDraftBytes, requestHash } from './events.ts';
export type { AppendRequest, AppendResult, Durability, EventDraft } from './events.ts';
export type { RetentionSnapshot, StatsSnapshot, StorageSnapshot, StoreOptions } from './options.ts';
export type { CommitInfo, StoreIo } from './writer.ts';

export type StoreState = 'closed' | 'recovering' | 'ready' | 'full' | 'corrupt' | 'failed' | 'closing';

type Repair = { corruptionId: string; movedTo: string; bytesMoved: number };
/** See EventStore.onPublished. */
export type PublishListener = (firstSequence: number, payloads: Buffer[]) => void;
const MiB = 1024 * 1024;

export class EventStore {
  readonly dataDir: string;
  readonly durability: Durability;
  readonly space: SpaceGuard;
  readonly #opts: StoreOptions;
  readonly #log: Logger;
  readonly #io: StoreIo;
  readonly #now: () => number;
  readonly #data = new LogState();
  readonly #ctx: WriterContext;
  #state: StoreState = 'closed';
  #lock: DirLock | undefined;
  readonly #writer: GroupWriter;
  #pendingKeys = new Map<string, Promise<unknown>>();
  #spaceTimer: NodeJS.Timeout | undefined;
  #checking: Promise<void> | undefined;
  #failure: Error | undefined;
  #scanFailure: ScanFailure | undefined;
  #report: RecoveryReport | undefined;
  #repair: Repair | undefined;
  #sideBytes = 0;
  readonly #retention: RetentionRunner;
  readonly #publishListeners = new Set<PublishListener>();

  constructor(opts: StoreOptions) {
    this.#opts = opts;
    this.dataDir = opts.dataDir;
    this.durability = opts.durability ?? 'fsync';
    this.#log = opts.logger ?? silentLogger;
    this.#io = { ...defaultIo, statfs: defaultStatfs, ...opts.io };
    this.#now = opts.now ?? Date.now;
    this.#retention = new RetentionRunner(opts.retention, this.#now);
    const maxAppend = opts.maxAppendBytes ?? MiB;
    this.space = new SpaceGuard({ dir: opts.dataDir, reserve: opts.reserve ?? { default: true }, minReserveBytes: maxAppend, statfs: this.#io.statfs });
    this.#ctx = {
      dataDir: opts.dataDir,
      durability: this.durability,
      io: this.#io,
      log: this.#log,
      data: this.#data,
      segmentMaxBytes: opts.segmentMaxBytes ?? 64 * MiB,
      sync: { lastSeconds: 0, dirty: false },
      onCommit: opts.onCommit,
      onPublish: undefined,
      onWritten: (n) => this.space.wrote(n),
      onTaken: (n) => this.space.release(n),
      onRoll: () => {
        if (opts.retention !== undefined) setImmediate(() => void this.runRetention().catch(() => undefined));
      },
    };
    this.#writer = new GroupWriter(
      this.#ctx,
      {
        writable: () => this.#state === 'ready' || this.#state === 'closing',
        syncable: () => this.#state === 'ready' || this.#state === 'full' || this.#state === 'closing',
        onGroupError: (err, jobs) => this.#onGroupError(err, jobs),
        fail: (err, jobs) => this.#fail(err, jobs),
      },
      opts.maxCommitBytes ?? 16 * MiB,
    );
  }

  get state(): StoreState {
    return this.#state;
  }
  get report(): RecoveryReport | undefined {
    return this.#report;
  }
  /** The last successful repair (moved data), if any. */
  get lastRepair(): Repair | undefined {
    return this.#repair;
  }
  get failureError(): Error | undefined {
    return this.#failure;
  }
  get segmentMaxBytes(): number {
    return this.#ctx.segmentMaxBytes;
  }
  /** Sequence of the newest published event (0 when nothing was ever appended). */
  get lastSequence(): number {
    return this.#data.index.lastSequence;
  }

  /**
   * Calls `listener(firstSequence, payloads)` each time a group commit is published:
   * durable under the store's mode and readable (never earlier), once per group, before
   * its appenders are acknowledged. Returns the unsubscribe function. Listeners run
   * synchronously on the commit path: they must be cheap and must not throw.
   */
  onPublished(listener: PublishListener): () => void {
    this.#publishListeners.add(listener);
    this.#ctx.onPublish ??= (first, payloads) => {
      for (const l of this.#publishListeners) l(first, payloads);
    };
    return () => {
      this.#publishListeners.delete(listener);
      if (this.#publishListeners.size === 0) this.#ctx.onPublish = undefined;
    };
  }

  /** First retained sequence (lastSequence + 1 when the log is empty). */
  get firstSequence(): number {
    return this.#data.index.first;
  }

  /** Locks the data dir. Separate from recover() so a server can refuse early on a held lock. */
  async lockDir(): Promise<void> {
    if (this.#lock !== undefined) return;
    await mkdir(this.dataDir, { recursive: true });
    this.#lock = await acquireLock(this.dataDir);
  }

  /** Locks the data dir and runs recovery. Resolves with the report (state ready, full or corrupt). */
  async open(): Promise<RecoveryReport> {
    await this.lockDir();
    try {
      return await this.recover();
    } catch (err) {
      await this.#closeFiles();
      await this.#lock?.release();
      this.#lock = undefined;
      this.#state = 'closed';
      throw err;
    }
  }

  /** Scans the log, cuts a torn tail aside, rebuilds the indexes. Needs no free space. */
  async recover(): Promise<RecoveryReport> {
    if (this.#lock === undefined) throw new StoreError('not_locked', 'recover() needs the data dir lock: call open()');
    this.#state = 'recovering';
    this.#stopTimers();
    await this.#closeFiles();
    const started = Date.now();
    this.#log.info({ dataDir: this.dataDir }, 'recovery started');
    const fs = await this.space.refresh().then((f) => f.filesystemBytes, (err: unknown) => void this.#log.warn({ err }, 'statfs of the data dir failed'));
    const out = await recoverLog(this.dataDir, this.#data, this.#log, started);
    this.#scanFailure = out.scanFailure;
    if (out.retired.segments > 0) this.#retention.note(out.retired);
    const report = out.report;
    report.durationMs = Date.now() - started;
    this.#report = report;
    this.#ctx.segmentMaxBytes = this.#opts.segmentMaxBytes ?? defaultSegmentBytes(fs, this.#opts.retention?.maxBytes);
    await pruneSideFiles(this.dataDir, fs, this.#log).catch((err: unknown) => this.#log.warn({ err }, 'could not prune side files'));
    this.#sideBytes = await sideFileBytes(this.dataDir);
    if (report.outcome === 'CorruptionDetected') {
      this.#state = 'corrupt';
      this.#log.error({ recovery: report }, 'CORRUPTION DETECTED: the log refuses writes until a human repairs it');
    } else {
      this.#state = 'ready';
      await this.space.refresh().catch(() => undefined);
      if (this.space.belowReserve()) this.#enterFull('the volume is full at start-up');
      if (this.durability === 'interval') this.#writer.startIntervalSync(this.#opts.fsyncIntervalMs ?? 10);
      this.#log.info({ recovery: report, segmentBytes: this.#ctx.segmentMaxBytes, reserveBytes: this.space.reserveBytes }, 'recovery finished');
    }
    this.#startSpaceTimer();
    return report;
  }

  stats(): StatsSnapshot {
    const ix = this.#data.index;
    return { total: ix.count, bytes: ix.payloadBytes, lastSequence: ix.lastSequence, segments: this.#data.segments.length, diskBytes: this.#data.diskBytes };
  }

  /** Storage figures; undefined until the first statfs returned. */
  storage(): StorageSnapshot | undefined {
    this.space.maybeRefresh(); // the next look is fresh; this one never waits for a syscall
    return this.space.snapshot(this.#data.diskBytes, this.#sideBytes);
  }

  retentionStatus(): RetentionSnapshot {
    return this.#retention.snapshot(this.#data.index.first);
  }

  /** Appends (or replays) one request. Resolves once durable under the store's mode. */
  async append(req: AppendRequest): Promise<AppendResult> {
    if (req.events.length === 0) throw new StoreError('empty', 'an append needs at least one event');
    const key = req.idempotencyKey;
    for (;;) {
      this.#assertWritable(true); // a replay needs no space: served while full too
      if (key === undefined) break;
      const existing = this.#data.index.keys.get(key);
      if (existing !== undefined) return this.#replay(existing, req);
      const pending = this.#pendingKeys.get(key);
      if (pending === undefined) break;
      await pending.catch(() => undefined);
    }
    const est = appendDiskEstimate(req);
    if (this.#state !== 'ready' || !this.space.fits(est)) await this.#refuseUnlessRoom(est);
    this.space.admit(est);
    const p = new Promise<AppendResult>((resolve, reject) => {
      this.#writer.enqueue({ req, resolve, reject, bytesHint: 3 * est, diskEstimate: est });
    });
    if (key !== undefined) {
      this.#pendingKeys.set(key, p);
      const done = () => this.#pendingKeys.delete(key);
      p.then(done, done);
    }
    return p;
  }

  /** The guard said no (or the store is full): re-check a stale figure once, then refuse. */
  async #refuseUnlessRoom(bytes: number): Promise<void> {
    if (this.#state === 'ready' && this.space.stale()) {
      await this.space.refresh().catch(() => undefined);
      this.#assertWritable(false);
      if (this.space.fits(bytes)) return;
    }
    this.#assertWritable(false);
    this.#enterFull(`an append of about ${bytes} bytes would leave less than the ${this.space.reserveBytes}-byte reserve`);
    this.space.refused++;
    throw this.space.fullError();
  }

  async hasId(id: string): Promise<boolean> {
    return (await this.getById(id)) !== undefined;
  }

  /** The retained event with this id, or undefined (also when retention removed it: ids are forgotten). */
  getById(id: string): Promise<Buffer | undefined> {
    return readById(this.#data, id, this.maxRead);
  }

  async getBySequence(sequence: number): Promise<Buffer | undefined> {
    if (!this.#data.index.has(sequence)) return undefined;
    return (await readRange(this.#data, sequence, 1, this.maxRead))[0];
  }

  /**
   * Retained events with sequence > after, in order, at most `limit` and at most
   * `maxBytes` of payload (default and cap maxReadBytes; always at least one).
   */
  async readAfter(after: number, limit: number, maxBytes?: number): Promise<Buffer[]> {
    const from = Math.max(this.#data.index.first, Math.floor(after) + 1);
    const last = Math.min(this.#data.index.lastSequence, from + limit - 1);
    if (from > last) return [];
    return readRange(this.#data, from, last - from + 1, maxBytes === undefined ? this.maxRead : Math.min(maxBytes, this.maxRead));
  }

  private get maxRead(): number {
    return this.#opts.maxReadBytes ?? 16 * MiB;
  }

  async #replay(entry: KeyEntry, req: AppendRequest): Promise<AppendResult> {
    const hash = (req.requestHash ?? Buffer.alloc(HASH_BYTES)).subarray(0, HASH_BYTES).toString('base64');
    if (hash !== entry.hash || entry.batch !== req.batch) {
      throw new StoreError('idempotency_conflict', `Idempotency-Key was already used for a different request (first used by sequence ${entry.sequence})`);
    }
    const payloads = await readRange(this.#data, entry.sequence, entry.count, this.maxRead);
    return { replayed: true, batch: entry.batch, firstSequence: entry.sequence, payloads };
  }

  #assertWritable(allowFull: boolean): void {
    if (this.#state === 'ready' || (allowFull && this.#state === 'full')) return;
    if (this.#state === 'full') {
      this.space.refused++;
      throw this.space.fullError();
    }
    if (this.#state === 'failed') {
      throw new StoreError('failed', `the log stopped accepting writes after a storage failure: ${this.#failure?.message}`);
    }
    if (this.#state === 'corrupt') {
      const c = this.#report?.corruption;
      throw new StoreError('corrupt', `the log is corrupt (${c?.segment} offset ${c?.offset}: ${c?.reason}); writes are refused until it is repaired`);
    }
    throw new StoreError('not_ready', `the log is not accepting writes (state ${this.#state})`);
  }

  /** ENOSPC of the group itself, confirmed: refused as full (undefined). Anything else: the fatal error. */
  async #onGroupError(err: Error, jobs: Job[]): Promise<Error | undefined> {
    const fatal = await noSpaceOrFatal(this.#ctx, this.space, err, jobs);
    if (fatal === undefined) this.#enterFull(`the filesystem refused a write: ${err.message}`, jobs);
    return fatal;
  }

  #enterFull(reason: string, refused: Job[] = []): void {
    if (this.#state === 'ready') {
      this.#state = 'full';
      this.#log.warn({ reason, freeBytes: this.space.freeNow(), reserveBytes: this.space.reserveBytes }, 'storage full: refusing appends until space is freed; reads go on');
    }
    const e = this.space.fullError();
    for (const j of [...refused, ...this.#writer.takeQueued()]) {
      this.space.refused++;
      j.reject(e);
    }
  }

  /** One statfs check (the space timer calls it every spaceCheckMs): full <-> ready, retention. */
  checkSpace(): Promise<void> {
    this.#checking ??= (async () => {
      if (this.#state !== 'ready' && this.#state !== 'full') return;
      await this.space.refresh().catch((err: unknown) => this.#log.warn({ err }, 'statfs of the data dir failed'));
      if (this.#retention.due(this.#state === 'full', this.#opts.retentionCheckMs ?? 10_000)) {
        await this.runRetention().catch((err: unknown) => this.#log.error({ err }, 'retention failed'));
      }
      if (this.#state === 'full' && this.space.roomAgain(this.#opts.maxAppendBytes ?? MiB)) {
        this.#state = 'ready';
        this.#log.info({ freeBytes: this.space.freeNow(), reserveBytes: this.space.reserveBytes }, 'storage: space is back, accepting appends');
      } else if (this.#state === 'ready' && this.space.belowReserve()) {
        this.#enterFull('free space fell below the reserve');
      }
    })().finally(() => (this.#checking = undefined));
    return this.#checking;
  }

  /** Deletes what the retention policy allows (whole sealed segments, oldest first). */
  async runRetention(): Promise<RetentionRun | undefined> {
    const r = await this.#retention.run(async (policy, now) => {
      if (this.#state !== 'ready' && this.#state !== 'full') return undefined;
      return retainOnce(this.dataDir, this.#data, policy, now, (seq) => this.getBySequence(seq), this.#log);
    });
    if (r !== undefined) {
      this.#log.info({ ...r }, 'retention removed sealed segments');
      await this.space.refresh().catch(() => undefined);
    }
    return r;
  }

  #startSpaceTimer(): void {
    this.#spaceTimer ??= setInterval(() => void this.checkSpace(), this.#opts.spaceCheckMs ?? 1000);
    this.#spaceTimer.unref();
  }
  #stopTimers(): void {
    this.#writer.stopIntervalSync();
    clearInterval(this.#spaceTimer);
    this.#spaceTimer = undefined;
  }

  /** interval/none modes: fdatasync the active segment if anything was written since the last sync. */
  syncNow(): Promise<void> {
    return this.#writer.syncNow();
  }

  #fail(err: Error, inFlight: Job[]): void {
    if (this.#state === 'failed') return;
    this.#state = 'failed';
    this.#failure = err;
    this.#stopTimers();
    this.#log.fatal({ err }, 'storage write/fsync failed: refusing all writes (never retrying a failed fsync)');
    const e = new StoreError('failed', `storage failure, the append is not durable: ${err.message}`, { cause: err });
    for (const j of inFlight) j.reject(e);
    for (const j of this.#writer.takeQueued()) j.reject(e);
    this.#opts.onFatal?.(err);
  }

  /** Repairs the current corruption, only if `id` names it (recovery.ts), then recovers again. */
  async repair(id: string): Promise<RecoveryReport> {
    const c = this.#report?.corruption;
    const f = this.#scanFailure;
    if (this.#state !== 'corrupt' || c === undefined || f === undefined || f.kind !== 'corrupt') {
      throw new StoreError('repair_conflict', `nothing to repair: the log is ${this.#state}`);
    }
    if (id !== c.id) throw new StoreError('repair_conflict', `corruption id ${JSON.stringify(id)} does not match the current corruption ${c.id}`);
    this.#state = 'recovering';
    this.#stopTimers();
    await this.#closeFiles();
    this.#repair = await moveCorruptionAside(this.dataDir, c.id, f, Date.now());
    this.#log.warn({ ...this.#repair }, 'repair: corrupt data moved aside, re-running recovery');
    return this.recover();
  }

  /** Stops accepting appends, finishes the in-flight commits, syncs, closes, unlocks. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    const wasFailed = this.#state === 'failed';
    if (this.#state === 'ready' || this.#state === 'full') this.#state = 'closing';
    await this.#writer.drain();
    this.#stopTimers();
    await this.#checking;
    await this.#retention.idle();
    if (!wasFailed && this.#state === 'closing') await this.#writer.finalSync();
    await this.#closeFiles();
    await this.#lock?.release();
    this.#lock = undefined;
    if (this.#state !== 'failed') this.#state = 'closed';
  }

  async #closeFiles(): Promise<void> {
    const segs = this.#data.segments;
    this.#data.segments = [];
    for (const s of segs) await s.fh.close().catch(() => undefined);
  }
}
