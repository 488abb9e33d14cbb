/**
 * EventStore: the storage engine. One writer loop assigns sequences and file positions,
 * takes everything queued, writes it with one positioned write, makes it durable with
 * one fdatasync (durability `fsync`), then publishes it to the indexes and acknowledges
 * every waiting append (group commit). Readers only ever see published records.
 *
 * A failed write or fdatasync is never retried: the store turns `failed`, rejects every
 * pending and later append, and calls `onFatal` (the server exits so the pod restarts
 * and recovery decides from what is really on disk).
 */
import { randomUUID, createHash } from 'node:crypto';
import { fdatasync, fdatasyncSync, writeSync } from 'node:fs';
import { mkdir, open, rename, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../common/logger.ts';
import { silentLogger } from '../common/logger.ts';
import {
  FLAG_BATCH,
  FLAG_MORE,
  HASH_BYTES,
  HEADER_BYTES,
  SEGMENT_DIR,
  decimalDigits,
  encodeEventInto,
  eventRecordBound,
  payloadOffset,
  segmentFileName,
} from './format.ts';
import { acquireLock, type DirLock } from './lock.ts';
import { hashString } from './id-table.ts';
import { LogIndex, type KeyEntry } from './log-index.ts';
import { corruptionId, type RecoveryReport } from './report.ts';
import { listSegments, scanLog, type ScanFailure } from './scan.ts';

export const DURABILITY_MODES = ['fsync', 'interval', 'none'] as const;
export type Durability = (typeof DURABILITY_MODES)[number];
export type StoreState = 'closed' | 'recovering' | 'ready' | 'corrupt' | 'failed' | 'closing';

/** Fields the server assigns; a client's values for them are dropped. */
export const RESERVED_FIELDS = ['id', 'createdAt', 'sequence'] as const;

export interface StoreIo {
  /**
   * fdatasync the file. `inline` asks for a synchronous call on the event loop (the
   * writer does that while the disk is fast); an implementation may always return a
   * promise instead.
   */
  datasync(fh: FileHandle, inline: boolean): void | Promise<void>;
  /** Positioned write; may return the byte count directly (synchronous) or a promise. */
  write(fh: FileHandle, buf: Buffer, position: number): number | Promise<number>;
}

const defaultIo: StoreIo = {
  datasync: (fh, inline) => {
    if (inline) return fdatasyncSync(fh.fd);
    return new Promise<void>((resolve, reject) => fdatasync(fh.fd, (err) => (err ? reject(err) : resolve())));
  },
  // A positioned write into the page cache: synchronous, no threadpool round trip.
  write: (fh, buf, position) => writeSync(fh.fd, buf, 0, buf.length, position),
};

/**
 * Where fdatasync runs. A group holding a single append (a lone client: there is nothing
 * else to do meanwhile) syncs inline on the event loop, saving the two thread hand-offs
 * of a threadpool call (like Redis' appendfsync always), as long as the disk is fast (the
 * last fdatasync took less than this). Bigger groups, or a slow disk, sync on the libuv
 * threadpool so the event loop keeps parsing (and batching) the next requests meanwhile
 * and never blocks for long.
 */
const INLINE_FSYNC_MAX_SECONDS = 0.002;

const ZERO_HASH = Buffer.alloc(HASH_BYTES);

export interface CommitInfo {
  events: number;
  bytes: number;
  /** Seconds spent in fdatasync, when the commit synced. */
  fsyncSeconds?: number;
}

export interface StoreOptions {
  dataDir: string;
  durability?: Durability;
  /** `interval` mode: fdatasync period (default 10 ms). */
  fsyncIntervalMs?: number;
  /** Roll to a new segment when the active one would exceed this (default 64 MiB). */
  segmentMaxBytes?: number;
  /** Upper bound of one group commit (default 16 MiB; one append is never split). */
  maxCommitBytes?: number;
  /** Upper bound of bytes returned by one readAfter() (default 16 MiB; at least one event). */
  maxReadBytes?: number;
  logger?: Logger;
  onFatal?: (err: Error) => void;
  onCommit?: (info: CommitInfo) => void;
  /** Fault injection for tests. */
  io?: Partial<StoreIo>;
}

/** One event as the writer needs it: payload = pre + sequence + post. */
export interface EventDraft {
  id: string;
  pre: string;
  post: string;
  /**
   * Optional: the client's compact JSON object, with post === ',' + body.slice(1) (or '}'
   * for '{}'). The writer then writes this flat string instead of building `post`.
   */
  body?: string;
}

class ClientEventDraft implements EventDraft {
  readonly id: string;
  readonly pre: string;
  readonly body: string;
  constructor(id: string, pre: string, body: string) {
    this.id = id;
    this.pre = pre;
    this.body = body;
  }
  get post(): string {
    return this.body.length <= 2 ? '}' : ',' + this.body.slice(1);
  }
}

export interface AppendRequest {
  events: EventDraft[];
  /** An all-or-nothing batch (recovery never exposes part of one). */
  batch: boolean;
  idempotencyKey?: string;
  /** 16+ bytes identifying the request (for the same-key-different-body check). */
  requestHash?: Buffer;
}

export interface AppendResult {
  /** True when an idempotency key matched an earlier append: nothing was written. */
  replayed: boolean;
  batch: boolean;
  firstSequence: number;
  /** The stored events, UTF-8 JSON bytes, in sequence order. */
  payloads: Buffer[];
}

export interface StatsSnapshot {
  total: number;
  bytes: number;
  lastSequence: number;
  segments: number;
  diskBytes: number;
}

export class StoreError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StoreError';
    this.code = code;
  }
}

/** Builds the draft of a client event. `bodyJson` is the compact JSON object without reserved fields. */
export function eventDraft(bodyJson: string, createdAt: string = new Date().toISOString(), id?: string): EventDraft {
  // A random UUID needs no JSON escaping; a caller's id is quoted by JSON.stringify.
  const theId = id ?? randomUUID();
  const quoted = id === undefined ? `"${theId}"` : JSON.stringify(theId);
  return new ClientEventDraft(theId, `{"id":${quoted},"createdAt":"${createdAt}","sequence":`, bodyJson);
}

/** Compact JSON of a client object minus the reserved fields. */
export function eventBodyJson(obj: Record<string, unknown>): string {
  if (!('id' in obj) && !('createdAt' in obj) && !('sequence' in obj)) return JSON.stringify(obj);
  const copy: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (k !== 'id' && k !== 'createdAt' && k !== 'sequence') Object.defineProperty(copy, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return JSON.stringify(copy);
}

export function requestHash(kind: string, body: Buffer | string): Buffer {
  return createHash('sha256').update(kind).update('\n').update(body).digest().subarray(0, HASH_BYTES);
}

interface Segment {
  name: string;
  path: string;
  baseSequence: number;
  fh: FileHandle;
  size: number;
}

interface Job {
  req: AppendRequest;
  resolve: (r: AppendResult) => void;
  reject: (e: Error) => void;
  bytesHint: number;
}

export class EventStore {
  readonly dataDir: string;
  readonly durability: Durability;
  private readonly opts: StoreOptions;
  private readonly log: Logger;
  private readonly io: StoreIo;
  private _state: StoreState = 'closed';
  private lock: DirLock | undefined;
  private index = new LogIndex();
  private segments: Segment[] = [];
  private queue: Job[] = [];
  private writer: Promise<void> | undefined;
  private pendingKeys = new Map<string, Promise<unknown>>();
  private timer: NodeJS.Timeout | undefined;
  private dirty = false;
  private syncing: Promise<void> | undefined;
  private failure: Error | undefined;
  private scanFailure: ScanFailure | undefined;
  private _report: RecoveryReport | undefined;
  private _repair: { corruptionId: string; movedTo: string; bytesMoved: number } | undefined;
  private diskBytes = 0;
  private lastFsyncSeconds = 0;

  constructor(opts: StoreOptions) {
    this.opts = opts;
    this.dataDir = opts.dataDir;
    this.durability = opts.durability ?? 'fsync';
    this.log = opts.logger ?? silentLogger;
    this.io = { ...defaultIo, ...opts.io };
  }

  get state(): StoreState {
    return this._state;
  }
  get report(): RecoveryReport | undefined {
    return this._report;
  }
  /** The last successful repair (moved data), if any. */
  get lastRepair(): { corruptionId: string; movedTo: string; bytesMoved: number } | undefined {
    return this._repair;
  }
  get failureError(): Error | undefined {
    return this.failure;
  }

  /** Locks the data dir. Separate from recover() so a server can refuse early on a held lock. */
  async lockDir(): Promise<void> {
    if (this.lock !== undefined) return;
    await mkdir(this.dataDir, { recursive: true });
    this.lock = await acquireLock(this.dataDir);
  }

  /** Locks the data dir and runs recovery. Resolves with the report (state ready or corrupt). */
  async open(): Promise<RecoveryReport> {
    await this.lockDir();
    try {
      return await this.recover();
    } catch (err) {
      await this.closeFiles();
      await this.lock?.release();
      this.lock = undefined;
      this._state = 'closed';
      throw err;
    }
  }

  /** Scans the log, cuts a torn tail aside, rebuilds the indexes. */
  async recover(): Promise<RecoveryReport> {
    if (this.lock === undefined) throw new StoreError('not_locked', 'recover() needs the data dir lock: call open()');
    this._state = 'recovering';
    await this.closeFiles();
    const started = Date.now();
    const startedAt = new Date(started).toISOString();
    this.log.info({ dataDir: this.dataDir }, 'recovery started');
    if ((await mkdir(join(this.dataDir, SEGMENT_DIR), { recursive: true })) !== undefined) await fsyncDir(this.dataDir);
    const index = new LogIndex();
    const scan = await scanLog(this.dataDir, { index });
    const report: RecoveryReport = {
      outcome: 'Clean',
      startedAt,
      durationMs: 0,
      segmentsScanned: scan.segmentsScanned,
      bytesScanned: scan.bytesScanned,
      recordsRecovered: scan.recordsRecovered,
      bytesTruncated: 0,
    };
    this.scanFailure = scan.failure;
    const f = scan.failure;
    if (f?.kind === 'torn') {
      const seg = scan.segments[f.segIndex]!;
      const side = join(this.dataDir, 'torn', `${seg.name}.${f.offset}.${started}.bin`);
      const cut = seg.size - f.offset;
      if ((await mkdir(join(this.dataDir, 'torn'), { recursive: true })) !== undefined) await fsyncDir(this.dataDir);
      await copyRange(seg.path, f.offset, cut, side);
      await fsyncDir(join(this.dataDir, 'torn'));
      const fh = await open(seg.path, 'r+');
      try {
        await fh.truncate(f.offset);
        await fh.datasync();
      } finally {
        await fh.close();
      }
      seg.size = f.offset;
      report.outcome = 'TornTailTruncated';
      report.bytesTruncated = cut;
      report.truncatedTo = side;
      this.log.warn({ segment: f.segment, offset: f.offset, bytes: cut, keptIn: side, reason: f.reason }, 'torn tail cut off');
    } else if (f?.kind === 'corrupt') {
      report.outcome = 'CorruptionDetected';
      report.corruption = { id: corruptionId(f.segment, f.offset, f.reason), segment: f.segment, offset: f.offset, reason: f.reason };
    }
    // Open the segments: every segment readable; the last one also written (when ready).
    const segs: Segment[] = [];
    try {
      const usable = f?.kind === 'corrupt' ? scan.segments.slice(0, f.segIndex + 1) : scan.segments;
      for (let i = 0; i < usable.length; i++) {
        const s = usable[i]!;
        const writable = f?.kind !== 'corrupt' && i === usable.length - 1;
        const fh = await open(s.path, writable ? 'r+' : 'r');
        segs.push({ name: s.name, path: s.path, baseSequence: s.baseSequence, fh, size: s.size });
      }
      if (f?.kind !== 'corrupt' && segs.length === 0) segs.push(await this.createSegment(1));
    } catch (err) {
      for (const s of segs) await s.fh.close().catch(() => undefined);
      throw err;
    }
    this.segments = segs;
    this.index = index;
    this.diskBytes = segs.reduce((n, s) => n + s.size, 0);
    report.durationMs = Date.now() - started;
    this._report = report;
    if (report.outcome === 'CorruptionDetected') {
      this._state = 'corrupt';
      this.log.error({ recovery: report }, 'CORRUPTION DETECTED: the log refuses writes until a human repairs it');
    } else {
      this._state = 'ready';
      if (this.durability === 'interval') this.startIntervalSync();
      this.log.info({ recovery: report }, 'recovery finished');
    }
    return report;
  }

  stats(): StatsSnapshot {
    return {
      total: this.index.count,
      bytes: this.index.payloadBytes,
      lastSequence: this.index.count,
      segments: this.segments.length,
      diskBytes: this.diskBytes,
    };
  }

  /** Appends (or replays) one request. Resolves once durable under the store's mode. */
  async append(req: AppendRequest): Promise<AppendResult> {
    if (req.events.length === 0) throw new StoreError('empty', 'an append needs at least one event');
    const key = req.idempotencyKey;
    for (;;) {
      this.assertWritable();
      if (key === undefined) break;
      const existing = this.index.keys.get(key);
      if (existing !== undefined) return this.replay(existing, req);
      const pending = this.pendingKeys.get(key);
      if (pending === undefined) break;
      await pending.catch(() => undefined);
    }
    let bytesHint = 0;
    for (const e of req.events) bytesHint += HEADER_BYTES + e.id.length * 3 + e.pre.length * 3 + (e.body ?? e.post).length * 3 + 40;
    const p = new Promise<AppendResult>((resolve, reject) => {
      this.queue.push({ req, resolve, reject, bytesHint });
    });
    if (key !== undefined) {
      this.pendingKeys.set(key, p);
      p.then(
        () => this.pendingKeys.delete(key),
        () => this.pendingKeys.delete(key),
      );
    }
    if (this.writer === undefined) this.writer = this.runWriter();
    return p;
  }

  async hasId(id: string): Promise<boolean> {
    return (await this.getById(id)) !== undefined;
  }

  /** The stored event with this id (the first one, should an imported id repeat), or undefined. */
  async getById(id: string): Promise<Buffer | undefined> {
    const index = this.index;
    for (const seq of index.ids.candidates(hashString(id))) {
      if (seq > index.count) continue;
      const payload = (await this.readRange(seq, 1))[0];
      if (payload === undefined) continue;
      // Cheap check first: server events start with {"id":"<id>", imported ones carry "id" inside.
      if (payload.includes(JSON.stringify(id))) {
        const stored = (JSON.parse(payload.toString('utf8')) as { id?: unknown }).id;
        if (stored === id) return payload;
      }
    }
    return undefined;
  }

  async getBySequence(sequence: number): Promise<Buffer | undefined> {
    if (!Number.isInteger(sequence) || sequence < 1 || sequence > this.index.count) return undefined;
    return (await this.readRange(sequence, 1))[0];
  }

  /** Events with sequence > after, in order, at most `limit` (and at most maxReadBytes, at least one). */
  async readAfter(after: number, limit: number): Promise<Buffer[]> {
    const from = Math.max(1, Math.floor(after) + 1);
    const last = Math.min(this.index.count, from + limit - 1);
    if (from > last) return [];
    return this.readRange(from, last - from + 1);
  }

  private async readRange(from: number, count: number): Promise<Buffer[]> {
    const index = this.index;
    const segments = this.segments;
    const maxBytes = this.opts.maxReadBytes ?? 16 * 1024 * 1024;
    const out: Buffer[] = [];
    let seq = from;
    const end = from + count; // exclusive
    let total = 0;
    while (seq < end) {
      const segIndex = index.segIndexOf(seq);
      const start = index.offsetOf(seq);
      // Extend over following records of the same segment (they are contiguous on disk).
      let last = seq;
      let bytes = index.lengthOf(seq);
      while (last + 1 < end && index.segIndexOf(last + 1) === segIndex) {
        const nb = total + bytes + index.lengthOf(last + 1);
        if (nb > maxBytes) break;
        last++;
        bytes += index.lengthOf(last);
      }
      const span = index.offsetOf(last) + index.lengthOf(last) - start;
      const buf = Buffer.allocUnsafe(span);
      const seg = segments[segIndex];
      if (seg === undefined) throw new StoreError('read', `reading sequence ${seq}: segment #${segIndex} is not open`);
      let got = 0;
      while (got < span) {
        const { bytesRead } = await seg.fh.read(buf, got, span - got, start + got);
        if (bytesRead === 0) throw new StoreError('read', `reading sequence ${seq} from ${seg.path}: unexpected end of file`);
        got += bytesRead;
      }
      for (let s = seq; s <= last; s++) {
        const o = index.offsetOf(s) - start;
        out.push(buf.subarray(o, o + index.lengthOf(s)));
      }
      total += bytes;
      seq = last + 1;
      if (total >= maxBytes) break;
    }
    return out;
  }

  private async replay(entry: KeyEntry, req: AppendRequest): Promise<AppendResult> {
    const hash = (req.requestHash ?? Buffer.alloc(HASH_BYTES)).subarray(0, HASH_BYTES).toString('base64');
    if (hash !== entry.hash || entry.batch !== req.batch) {
      throw new StoreError(
        'idempotency_conflict',
        `Idempotency-Key was already used for a different request (first used by sequence ${entry.sequence})`,
      );
    }
    const payloads = await this.readRange(entry.sequence, entry.count);
    return { replayed: true, batch: entry.batch, firstSequence: entry.sequence, payloads };
  }

  private assertWritable(): void {
    if (this._state === 'ready') return;
    if (this._state === 'failed') {
      throw new StoreError('failed', `the log stopped accepting writes after a storage failure: ${this.failure?.message}`);
    }
    if (this._state === 'corrupt') {
      const c = this._report?.corruption;
      throw new StoreError('corrupt', `the log is corrupt (${c?.segment} offset ${c?.offset}: ${c?.reason}); writes are refused until it is repaired`);
    }
    throw new StoreError('not_ready', `the log is not accepting writes (state ${this._state})`);
  }

  private async runWriter(): Promise<void> {
    const maxCommit = this.opts.maxCommitBytes ?? 16 * 1024 * 1024;
    try {
      // Start the group at the end of this event-loop turn: every request whose bytes
      // arrived in this turn joins it. Later groups start as soon as the previous one is
      // durable (classic group commit: what queued meanwhile is the next group).
      await new Promise<void>((r) => setImmediate(r));
      while (this.queue.length > 0 && (this._state === 'ready' || this._state === 'closing')) {
        let take = 0;
        let hint = 0;
        while (take < this.queue.length && (take === 0 || hint + this.queue[take]!.bytesHint <= maxCommit)) {
          hint += this.queue[take]!.bytesHint;
          take++;
        }
        const jobs = this.queue.splice(0, take);
        try {
          await this.commit(jobs);
        } catch (err) {
          const e = err instanceof Error ? err : new Error(String(err));
          this.fail(e, jobs);
          return;
        }
      }
    } finally {
      this.writer = undefined;
    }
  }

  private async commit(jobs: Job[]): Promise<void> {
    const firstSeq = this.index.count + 1;
    let n = 0;
    let bound = 0;
    for (let j = 0; j < jobs.length; j++) {
      const { events, idempotencyKey } = jobs[j]!.req;
      n += events.length;
      for (let i = 0; i < events.length; i++) {
        const e = events[i]!;
        bound += eventRecordBound(e.id, i === 0 ? idempotencyKey : undefined, e.pre, e.body ?? e.post);
      }
    }
    // Encode into one buffer sized by an upper bound; the real sizes come from the writes.
    const buf = Buffer.allocUnsafe(bound);
    const spans = new Uint32Array(n * 2); // payload offset, payload bytes per record
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
        const end = encodeEventInto(buf, at, seq, flags, e.id, first ? idempotencyKey : undefined, first ? (hash ?? ZERO_HASH) : undefined, e.pre, digits, e.body === undefined ? e.post : '', e.body);
        const pAt = payloadOffset(buf, at);
        spans[r * 2] = pAt;
        spans[r * 2 + 1] = end - pAt;
        at = end;
        seq++;
        r++;
      }
    }
    const total = at;
    let active = this.segments[this.segments.length - 1]!;
    if (active.size > 0 && active.size + total > (this.opts.segmentMaxBytes ?? 64 * 1024 * 1024)) {
      active = await this.roll(firstSeq);
    }
    const position = active.size;
    let written = 0;
    while (written < total) {
      const w = this.io.write(active.fh, buf.subarray(written, total), position + written);
      const n = typeof w === 'number' ? w : await w;
      if (n <= 0) throw new StoreError('write', `writing ${total - written} bytes to ${active.path} at ${position + written}: wrote ${n}`);
      written += n;
    }
    let fsyncSeconds: number | undefined;
    if (this.durability === 'fsync') {
      const t0 = process.hrtime.bigint();
      const d = this.io.datasync(active.fh, jobs.length === 1 && this.lastFsyncSeconds < INLINE_FSYNC_MAX_SECONDS);
      if (d !== undefined) await d;
      fsyncSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
      this.lastFsyncSeconds = fsyncSeconds;
    } else {
      this.dirty = true;
    }
    // Durable (under the mode): publish, then acknowledge.
    active.size += total;
    this.diskBytes += total;
    const segIndex = this.segments.length - 1;
    const index = this.index;
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
        index.push(segIndex, position + pAt, pB);
        index.ids.insert(hashString(events[i]!.id), seq);
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
    this.opts.onCommit?.({ events: seq - firstSeq, bytes: total, ...(fsyncSeconds !== undefined ? { fsyncSeconds } : {}) });
    for (let j = 0; j < jobs.length; j++) jobs[j]!.resolve(results[j]!);
  }

  private async roll(baseSequence: number): Promise<Segment> {
    const old = this.segments[this.segments.length - 1]!;
    await this.io.datasync(old.fh, false);
    const seg = await this.createSegment(baseSequence);
    this.segments.push(seg);
    this.log.info({ segment: seg.name }, 'rolled to a new segment');
    return seg;
  }

  private async createSegment(baseSequence: number): Promise<Segment> {
    const dir = join(this.dataDir, SEGMENT_DIR);
    const name = segmentFileName(baseSequence);
    const path = join(dir, name);
    const fh = await open(path, 'wx+');
    await fsyncDir(dir);
    return { name, path, baseSequence, fh, size: 0 };
  }

  private startIntervalSync(): void {
    if (this.timer !== undefined) return;
    const ms = this.opts.fsyncIntervalMs ?? 10;
    this.timer = setInterval(() => {
      void this.syncNow();
    }, ms);
    this.timer.unref();
  }

  /** interval/none modes: fdatasync the active segment if anything was written since the last sync. */
  async syncNow(): Promise<void> {
    if (this.syncing !== undefined) return this.syncing;
    if (!this.dirty || (this._state !== 'ready' && this._state !== 'closing')) return;
    this.dirty = false;
    const seg = this.segments[this.segments.length - 1]!;
    const t0 = process.hrtime.bigint();
    this.syncing = Promise.resolve()
      .then(() => this.io.datasync(seg.fh, false))
      .then(() => {
        this.opts.onCommit?.({ events: 0, bytes: 0, fsyncSeconds: Number(process.hrtime.bigint() - t0) / 1e9 });
      })
      .catch((err: unknown) => {
        this.fail(err instanceof Error ? err : new Error(String(err)), []);
      })
      .finally(() => {
        this.syncing = undefined;
      });
    return this.syncing;
  }

  private fail(err: Error, inFlight: Job[]): void {
    if (this._state === 'failed') return;
    this._state = 'failed';
    this.failure = err;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.log.fatal({ err }, 'storage write/fsync failed: refusing all writes (never retrying a failed fsync)');
    const e = new StoreError('failed', `storage failure, the append is not durable: ${err.message}`, { cause: err });
    for (const j of inFlight) j.reject(e);
    for (const j of this.queue.splice(0)) j.reject(e);
    this.opts.onFatal?.(err);
  }

  /**
   * Repairs the current corruption, only if `id` names it: the bytes from the corrupt
   * record to the end of its segment, and every later segment, are moved into
   * `repair/<id>-<time>/` in the data dir, the segment is truncated there and recovery
   * runs again.
   */
  async repair(id: string): Promise<RecoveryReport> {
    const c = this._report?.corruption;
    const f = this.scanFailure;
    if (this._state !== 'corrupt' || c === undefined || f === undefined || f.kind !== 'corrupt') {
      throw new StoreError('repair_conflict', `nothing to repair: the log is ${this._state}`);
    }
    if (id !== c.id) {
      throw new StoreError('repair_conflict', `corruption id ${JSON.stringify(id)} does not match the current corruption ${c.id}`);
    }
    this._state = 'recovering';
    await this.closeFiles();
    const dest = join(this.dataDir, 'repair', `${c.id}-${Date.now()}`);
    await mkdir(dest, { recursive: true });
    await fsyncDir(join(this.dataDir, 'repair'));
    await fsyncDir(this.dataDir);
    const segDir = join(this.dataDir, SEGMENT_DIR);
    const all = await listSegments(this.dataDir);
    const at = all.findIndex((s) => s.rel === f.segment);
    if (at < 0) throw new StoreError('repair', `repair: segment ${f.segment} is gone`);
    let bytesMoved = 0;
    const bad = all[at]!;
    const fh = await open(bad.path, 'r+');
    try {
      const size = (await fh.stat()).size;
      if (f.offset === 0) {
        await fh.close().catch(() => undefined);
        await rename(bad.path, join(dest, bad.name));
        bytesMoved += size;
      } else {
        await copyRange(bad.path, f.offset, size - f.offset, join(dest, `${bad.name}.from-${f.offset}.bin`));
        bytesMoved += size - f.offset;
      }
      for (const later of all.slice(at + 1)) {
        const st = await open(later.path, 'r').then(async (h) => {
          try {
            return (await h.stat()).size;
          } finally {
            await h.close();
          }
        });
        await rename(later.path, join(dest, later.name));
        bytesMoved += st;
      }
      await fsyncDir(dest);
      await fsyncDir(segDir);
      if (f.offset > 0) {
        await fh.truncate(f.offset);
        await fh.datasync();
      }
    } finally {
      await fh.close().catch(() => undefined);
    }
    this.log.warn({ corruptionId: c.id, movedTo: dest, bytesMoved }, 'repair: corrupt data moved aside, re-running recovery');
    this._repair = { corruptionId: c.id, movedTo: dest, bytesMoved };
    return this.recover();
  }

  /** Stops accepting appends, finishes the in-flight commits, syncs, closes, unlocks. */
  async close(): Promise<void> {
    if (this._state === 'closed') return;
    const wasFailed = this._state === 'failed';
    if (this._state === 'ready') this._state = 'closing';
    while (this.writer !== undefined) await this.writer;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (this.syncing !== undefined) await this.syncing;
    const active = this.segments[this.segments.length - 1];
    if (!wasFailed && this._state === 'closing' && active !== undefined && this.durability !== 'fsync' && this.dirty) {
      this.dirty = false;
      await this.io.datasync(active.fh, false);
    }
    await this.closeFiles();
    await this.lock?.release();
    this.lock = undefined;
    if (this._state !== 'failed') this._state = 'closed';
  }

  private async closeFiles(): Promise<void> {
    const segs = this.segments;
    this.segments = [];
    for (const s of segs) await s.fh.close().catch(() => undefined);
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Copies [offset, offset+length) of `src` into a new file `dest` and fsyncs it. */
async function copyRange(src: string, offset: number, length: number, dest: string): Promise<void> {
  const inp = await open(src, 'r');
  const out = await open(dest, 'wx');
  try {
    const chunk = Buffer.allocUnsafe(Math.min(Math.max(length, 1), 8 * 1024 * 1024));
    let done = 0;
    while (done < length) {
      const { bytesRead } = await inp.read(chunk, 0, Math.min(chunk.length, length - done), offset + done);
      if (bytesRead === 0) break;
      let w = 0;
      while (w < bytesRead) w += (await out.write(chunk, w, bytesRead - w, done + w)).bytesWritten;
      done += bytesRead;
    }
    await out.sync();
  } finally {
    await inp.close();
    await out.close();
  }
}
