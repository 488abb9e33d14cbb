/**
 * Followers: long polls (`GET /events?after=&wait=`) and Server-Sent Events streams
 * (`GET /events/stream`), woken by the store's commit publication.
 *
 * Guarantees:
 * - A follower is woken only by `EventStore.onPublished`, i.e. once a group commit is
 *   durable under the store's mode and readable; never by the write alone. One commit
 *   wakes every waiting follower exactly once, right after its appenders were answered.
 * - Idle followers cost no timers and no polling: an idle stream is an entry in a Set; one
 *   shared interval timer sends the heartbeats of all streams; all long-poll deadlines
 *   share one timer (a min-heap armed at the earliest deadline).
 * - Streams deliver every retained event after their position, in order, each once
 *   (`id:` = sequence). A caught-up stream gets the committed group from memory (the SSE
 *   frame is encoded once per commit and written to every caught-up stream); a stream
 *   that is behind reads pages from the log.
 * - Backpressure: a stream holds at most one page (pageEvents / pageBytes) beyond what
 *   the socket accepted. When a write does not drain, nothing else is read or queued for
 *   that stream until the socket drains, so a slow consumer lags instead of growing the
 *   server's memory. Heartbeats skip streams that are not drained.
 * - A stream whose next event was removed by retention gets `event: gone` with
 *   `{"firstSequence":F}` and ends: never a silent skip.
 * - close(): every long poll is answered (an empty page), every stream gets
 *   `event: shutdown` and is ended; sockets that do not finish within `endGraceMs` are
 *   destroyed, so shutdown stays bounded.
 *
 * Caveats: a follower ahead of the log (possible only after a repair, or after a power
 * loss in `interval`/`none` mode lost acknowledged events) waits until the log passes its
 * position.
 */
import type { ServerResponse } from 'node:http';
import type { Logger } from '../common/logger.ts';
import type { EventStore } from '../storage/store.ts';

export interface FollowOptions {
  store: EventStore;
  log: Logger;
  /** Heartbeat comment period of streams (default 15 s). */
  heartbeatMs?: number;
  /** One page of a stream that is behind: at most this many events (default 256)... */
  pageEvents?: number;
  /** ...and this many payload bytes (default 64 KiB; always at least one event). */
  pageBytes?: number;
  /** Streams still open this long after close() are destroyed (default 2 s). */
  endGraceMs?: number;
}

const HEARTBEAT = Buffer.from(': heartbeat\n\n');
const ID = Buffer.from('id: ');
const DATA = Buffer.from('\ndata: ');
const END = Buffer.from('\n\n');

/**
 * The SSE frame of consecutive events from `first`: `id: N\ndata: <json>\n\n` each. Stored
 * events are one-line JSON; a raw CR or LF (possible only as insignificant whitespace
 * in an imported event) would break the framing and is written as a space.
 */
export function sseFrame(first: number, payloads: Buffer[]): Buffer {
  const ids: string[] = new Array(payloads.length);
  let len = 0;
  for (let i = 0; i < payloads.length; i++) {
    ids[i] = String(first + i);
    len += ID.length + ids[i]!.length + DATA.length + payloads[i]!.length + END.length;
  }
  const out = Buffer.allocUnsafe(len);
  let at = 0;
  for (let i = 0; i < payloads.length; i++) {
    at += ID.copy(out, at);
    at += out.write(ids[i]!, at, 'latin1');
    at += DATA.copy(out, at);
    const p = payloads[i]!;
    const start = at;
    at += p.copy(out, at);
    if (p.indexOf(0x0a) !== -1 || p.indexOf(0x0d) !== -1) {
      for (let j = start; j < at; j++) if (out[j] === 0x0a || out[j] === 0x0d) out[j] = 0x20;
    }
    at += END.copy(out, at);
  }
  return out;
}

/** One SSE event that is not a log record (`event: gone`, `event: shutdown`). */
export function sseControl(event: string, data: unknown): Buffer {
  return Buffer.from(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

type StreamState = 'reading' | 'idle' | 'blocked' | 'closed';

class Stream {
  readonly res: ServerResponse;
  /** Sequence of the next event to send. */
  next: number;
  state: StreamState = 'reading';
  wrote = false;
  constructor(res: ServerResponse, next: number) {
    this.res = res;
    this.next = next;
  }
}

interface Waiter {
  after: number;
  limit: number;
  deadline: number;
  done: boolean;
  resolve: (page: Buffer[] | undefined) => void;
}

/** A binary min-heap of waiters by deadline, with lazy deletion of answered ones. */
class DeadlineHeap {
  #a: Waiter[] = [];
  live = 0;
  get size(): number {
    return this.#a.length;
  }
  peek(): Waiter | undefined {
    return this.#a[0];
  }
  push(w: Waiter): void {
    const a = this.#a;
    a.push(w);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]!.deadline <= w.deadline) break;
      a[i] = a[p]!;
      i = p;
    }
    a[i] = w;
  }
  pop(): Waiter | undefined {
    const a = this.#a;
    const top = a[0];
    const last = a.pop();
    if (top === undefined || last === undefined || a.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= a.length) break;
      const r = l + 1;
      const c = r < a.length && a[r]!.deadline < a[l]!.deadline ? r : l;
      if (a[c]!.deadline >= last.deadline) break;
      a[i] = a[c]!;
      i = c;
    }
    a[i] = last;
    return top;
  }
  /** Drops answered waiters once they are most of the heap. */
  compact(): void {
    if (this.#a.length < 64 || this.#a.length < 2 * this.live) return;
    const keep = this.#a.filter((w) => !w.done);
    this.#a = [];
    for (const w of keep) this.push(w);
  }
  clear(): Waiter[] {
    const all = this.#a;
    this.#a = [];
    return all;
  }
}

export class FollowerHub {
  readonly #store: EventStore;
  readonly #log: Logger;
  readonly #heartbeatMs: number;
  readonly #pageEvents: number;
  readonly #pageBytes: number;
  readonly #endGraceMs: number;
  readonly #streams = new Set<Stream>();
  readonly #idle = new Set<Stream>();
  readonly #waiters = new Set<Waiter>();
  readonly #heap = new DeadlineHeap();
  #heartbeat: NodeJS.Timeout | undefined;
  #deadlineTimer: NodeJS.Timeout | undefined;
  #armedAt = Infinity;
  readonly #unsubscribe: () => void;
  #closing: Promise<void> | undefined;
  /** Events written to streams since start. */
  eventsStreamed = 0;

  constructor(opts: FollowOptions) {
    this.#store = opts.store;
    this.#log = opts.log;
    this.#heartbeatMs = opts.heartbeatMs ?? 15_000;
    this.#pageEvents = opts.pageEvents ?? 256;
    this.#pageBytes = opts.pageBytes ?? 64 * 1024;
    this.#endGraceMs = opts.endGraceMs ?? 2000;
    // Fanned out right after the commit's appenders got their answers (setImmediate), so
    // a thousand followers never delay an acknowledgement. Safe: whatever runs in between
    // sees the new lastSequence (pump, waitFor) and the fan-out skips what it then covers.
    this.#unsubscribe = this.#store.onPublished((first, payloads) => setImmediate(() => this.#onPublish(first, payloads)));
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }
  get streamCount(): number {
    return this.#streams.size;
  }
  get pollCount(): number {
    return this.#waiters.size;
  }
  /** Streams waiting for their socket to drain (a consumer slower than the log). */
  get blockedCount(): number {
    let n = 0;
    for (const s of this.#streams) if (s.state === 'blocked') n++;
    return n;
  }

  // ---- long polls ----

  /**
   * Waits up to `waitMs` for an event after `after`. Resolves with the first page (the
   * committed group, when it starts right after `after`) or `[]` meaning "read it from the
   * log now", or undefined when the wait ended (timeout, `signal`, shutdown).
   */
  waitFor(after: number, limit: number, waitMs: number, signal?: AbortSignal): Promise<Buffer[] | undefined> {
    if (this.closed || waitMs <= 0 || signal?.aborted) return Promise.resolve(undefined);
    // Published since the caller looked (a commit may run between its read and this call).
    if (this.#store.lastSequence > after) return Promise.resolve([]);
    return new Promise((resolve) => {
      const w: Waiter = { after, limit, deadline: Date.now() + waitMs, done: false, resolve };
      this.#waiters.add(w);
      this.#heap.push(w);
      this.#heap.live++;
      this.#armDeadlines();
      signal?.addEventListener('abort', () => this.#answer(w, undefined), { once: true });
    });
  }

  #answer(w: Waiter, page: Buffer[] | undefined): void {
    if (w.done) return;
    w.done = true;
    this.#waiters.delete(w);
    this.#heap.live--;
    w.resolve(page);
  }

  #armDeadlines(): void {
    const top = this.#heap.peek();
    if (top === undefined) {
      clearTimeout(this.#deadlineTimer);
      this.#deadlineTimer = undefined;
      this.#armedAt = Infinity;
      return;
    }
    if (this.#deadlineTimer !== undefined && this.#armedAt <= top.deadline) return;
    clearTimeout(this.#deadlineTimer);
    this.#armedAt = top.deadline;
    this.#deadlineTimer = setTimeout(() => this.#onDeadline(), Math.max(0, top.deadline - Date.now()));
    this.#deadlineTimer.unref();
  }

  #onDeadline(): void {
    this.#deadlineTimer = undefined;
    this.#armedAt = Infinity;
    const now = Date.now();
    for (let top = this.#heap.peek(); top !== undefined && (top.done || top.deadline <= now); top = this.#heap.peek()) {
      this.#heap.pop();
      this.#answer(top, undefined);
    }
    this.#heap.compact();
    this.#armDeadlines();
  }

  // ---- streams ----

  /** Registers a stream whose headers were sent; it starts reading after `after`. */
  addStream(res: ServerResponse, after: number): void {
    if (res.destroyed || res.writableEnded) return; // the client went away already
    const s = new Stream(res, after + 1);
    this.#streams.add(s);
    res.once('close', () => this.#dropStream(s));
    res.on('error', (err) => this.#log.debug({ err }, 'event stream socket error'));
    if (this.#heartbeat === undefined) {
      this.#heartbeat = setInterval(() => this.#beat(), this.#heartbeatMs);
      this.#heartbeat.unref();
    }
    void this.#pump(s);
  }

  #dropStream(s: Stream): void {
    s.state = 'closed';
    this.#streams.delete(s);
    this.#idle.delete(s);
    if (this.#streams.size === 0 && this.#heartbeat !== undefined) {
      clearInterval(this.#heartbeat);
      this.#heartbeat = undefined;
    }
  }

  #beat(): void {
    for (const s of this.#streams) {
      if (s.wrote) s.wrote = false;
      else if (s.state !== 'blocked' && s.state !== 'closed' && !s.res.writableNeedDrain) s.res.write(HEARTBEAT);
    }
  }

  /** Writes `frame` (events up to `last`); false when the socket asked us to wait for 'drain'. */
  #send(s: Stream, frame: Buffer, count: number): boolean {
    s.next += count;
    s.wrote = true;
    this.eventsStreamed += count;
    return s.res.write(frame);
  }

  /** Reads and sends pages until the stream is caught up (idle), blocked, gone or closed. */
  async #pump(s: Stream): Promise<void> {
    s.state = 'reading';
    try {
      while (s.state === 'reading') {
        const first = this.#store.firstSequence;
        if (s.next < first) return this.#end(s, sseControl('gone', { error: 'gone', firstSequence: first, message: `events from ${s.next} to ${first - 1} were removed by retention` }));
        if (s.next > this.#store.lastSequence) {
          // Caught up. Checked synchronously with the last publication: no commit is missed.
          s.state = 'idle';
          this.#idle.add(s);
          return;
        }
        const page = await this.#store.readAfter(s.next - 1, this.#pageEvents, this.#pageBytes);
        if (s.state !== 'reading') return;
        if (page.length === 0) continue; // retention raced the read: the loop says gone
        if (!this.#send(s, sseFrame(s.next, page), page.length)) return this.#block(s);
      }
    } catch (err) {
      this.#log.warn({ err, next: s.next }, 'event stream read failed; ending the stream');
      s.res.destroy();
    }
  }

  #block(s: Stream): void {
    if (s.state === 'closed') return;
    s.state = 'blocked';
    this.#idle.delete(s);
    s.res.once('drain', () => {
      if (s.state === 'blocked') void this.#pump(s);
    });
  }

  #end(s: Stream, last: Buffer): void {
    if (s.state === 'closed') return;
    s.state = 'closed';
    this.#idle.delete(s);
    s.res.end(last);
  }

  #onPublish(first: number, payloads: Buffer[]): void {
    if (this.closed) return;
    const last = first + payloads.length - 1;
    if (this.#waiters.size > 0) {
      for (const w of this.#waiters) {
        if (w.after >= last) continue;
        this.#answer(w, w.after + 1 === first ? (payloads.length <= w.limit ? payloads : payloads.slice(0, w.limit)) : []);
      }
    }
    if (this.#idle.size === 0) return;
    let frame: Buffer | undefined;
    for (const s of this.#idle) {
      if (s.next > last) continue; // ahead of the log
      if (s.next === first) {
        frame ??= sseFrame(first, payloads);
        if (!this.#send(s, frame, payloads.length)) this.#block(s);
      } else {
        this.#idle.delete(s);
        void this.#pump(s);
      }
    }
  }

  /** Answers every long poll, ends every stream with `event: shutdown`; resolves when the streams are closed. */
  close(reason = 'the server is shutting down'): Promise<void> {
    this.#closing ??= (async () => {
      this.#unsubscribe();
      clearTimeout(this.#deadlineTimer);
      clearInterval(this.#heartbeat);
      this.#heartbeat = undefined;
      for (const w of [...this.#waiters]) this.#answer(w, undefined);
      this.#heap.clear();
      const open = [...this.#streams];
      const bye = sseControl('shutdown', { reason });
      const closed = open.map((s) => new Promise<void>((r) => (s.res.closed ? r() : s.res.once('close', () => r()))));
      for (const s of open) {
        if (s.state === 'closed') continue;
        s.state = 'closed';
        s.res.end(bye);
      }
      this.#idle.clear();
      if (open.length === 0) return;
      const timer = setTimeout(() => {
        for (const s of open) if (!s.res.closed) s.res.destroy();
      }, this.#endGraceMs);
      await Promise.all(closed);
      clearTimeout(timer);
    })();
    return this.#closing;
  }
}
