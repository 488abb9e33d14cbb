/**
 * A batching producer, like Kafka's: concurrent `append` calls in one process are
 * collected for up to `lingerMs` (or until `maxBatchEvents` / `maxBatchBytes`) and sent
 * as one NDJSON batch request (`POST /events`, `application/x-ndjson`), which the server
 * stores all-or-nothing in one group commit.
 *
 * Guarantees:
 * - Each caller's promise resolves with its own stored event, only once the whole batch
 *   is durable; a batch that fails rejects every caller in it with the same error.
 * - A batch is retried like any append (5xx, network; never 4xx/507) with one
 *   Idempotency-Key per batch, reused for its retries: a retry after a lost answer is a
 *   replay, never a duplicate.
 * - With `maxInFlight: 1` (the default) batches go out one at a time in call order, so
 *   the events of one producer are stored in the order `append` was called (a failed
 *   batch leaves a hole in that order, never a reordering).
 * - A value that is not a JSON object is refused to its caller alone (TypeError), never
 *   sent, so it cannot fail the batch of others.
 * - Memory is bounded: beyond `maxBufferedBytes` waiting to be sent, `append` rejects
 *   with ProducerBufferFullError at once.
 */
import type { EventData, EventLogClient, StoredEvent } from './client.ts';
import { eventLine } from './lines.ts';
import { ProducerBufferFullError, ProducerClosedError } from './errors.ts';

export interface ProducerOptions {
  /** How long the first event of a batch waits for company (default 5 ms; 0: only what queues during a request). */
  lingerMs?: number;
  /** A batch is sent once it has this many events (default 1000). */
  maxBatchEvents?: number;
  /** ...or this many bytes of NDJSON (default 256 KiB; keep it below the server's --max-body-bytes, 1 MiB by default). */
  maxBatchBytes?: number;
  /** Batch requests in flight at once (default 1: call order is kept). */
  maxInFlight?: number;
  /** Bytes waiting to be sent beyond which append() is refused (default 64 MiB). */
  maxBufferedBytes?: number;
}

export interface ProducerStats {
  /** Batch requests completed (each with its retries counted once). */
  batches: number;
  /** Events acknowledged. */
  events: number;
  /** Batches that failed (their callers were rejected). */
  failedBatches: number;
}

interface Pending {
  line: string;
  bytes: number;
  resolve: (e: StoredEvent) => void;
  reject: (err: unknown) => void;
}

export class Producer {
  readonly #client: EventLogClient;
  readonly lingerMs: number;
  readonly maxBatchEvents: number;
  readonly maxBatchBytes: number;
  readonly maxInFlight: number;
  readonly maxBufferedBytes: number;
  #queue: Pending[] = [];
  #queuedBytes = 0;
  #oldestAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #inFlight = 0;
  #flushing = 0;
  #closed = false;
  #idleWaiters: (() => void)[] = [];
  readonly stats: ProducerStats = { batches: 0, events: 0, failedBatches: 0 };

  constructor(client: EventLogClient, opts: ProducerOptions = {}) {
    this.#client = client;
    this.lingerMs = opts.lingerMs ?? 5;
    this.maxBatchEvents = opts.maxBatchEvents ?? 1000;
    this.maxBatchBytes = opts.maxBatchBytes ?? 256 * 1024;
    this.maxInFlight = opts.maxInFlight ?? 1;
    this.maxBufferedBytes = opts.maxBufferedBytes ?? 64 * 1024 * 1024;
    for (const [k, v, min] of [
      ['lingerMs', this.lingerMs, 0],
      ['maxBatchEvents', this.maxBatchEvents, 1],
      ['maxBatchBytes', this.maxBatchBytes, 1],
      ['maxInFlight', this.maxInFlight, 1],
      ['maxBufferedBytes', this.maxBufferedBytes, 1],
    ] as const) {
      if (!Number.isFinite(v) || v < min) throw new RangeError(`producer: ${k} must be a number >= ${min}, got ${v}`);
    }
  }

  /** Queues one event; resolves with its stored form once its batch is durable. */
  append<T extends EventData>(event: T): Promise<StoredEvent<T>> {
    if (this.#closed) return Promise.reject(new ProducerClosedError('producer: append after close()'));
    let line: string;
    try {
      line = eventLine(event);
    } catch (err) {
      return Promise.reject(err);
    }
    const bytes = Buffer.byteLength(line) + 1;
    if (this.#queuedBytes + bytes > this.maxBufferedBytes && this.#queue.length > 0) {
      return Promise.reject(new ProducerBufferFullError(`producer: ${this.#queuedBytes} bytes are waiting to be sent (maxBufferedBytes ${this.maxBufferedBytes}); the log server is slow or unreachable`));
    }
    return new Promise<StoredEvent<T>>((resolve, reject) => {
      if (this.#queue.length === 0) this.#oldestAt = Date.now();
      this.#queue.push({ line, bytes, resolve: resolve as (e: StoredEvent) => void, reject });
      this.#queuedBytes += bytes;
      this.#dispatch();
    });
  }

  /** Sends everything queued now (no linger) and resolves once nothing is queued or in flight. */
  async flush(): Promise<void> {
    this.#flushing++;
    try {
      this.#dispatch();
      while (this.#queue.length > 0 || this.#inFlight > 0) {
        await new Promise<void>((r) => this.#idleWaiters.push(r));
        this.#dispatch();
      }
    } finally {
      this.#flushing--;
    }
  }

  /** Refuses new appends, sends what is queued, waits for it. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
  }

  /** Events waiting to be sent (not yet in a request). */
  get queued(): number {
    return this.#queue.length;
  }

  #full(): boolean {
    return this.#queue.length >= this.maxBatchEvents || this.#queuedBytes >= this.maxBatchBytes;
  }

  #dispatch(): void {
    while (this.#queue.length > 0 && this.#inFlight < this.maxInFlight) {
      const due = this.#full() || this.#flushing > 0 || this.#closed || Date.now() - this.#oldestAt >= this.lingerMs;
      if (!due) {
        if (this.#timer === undefined) {
          this.#timer = setTimeout(() => {
            this.#timer = undefined;
            this.#dispatch();
          }, Math.max(0, this.#oldestAt + this.lingerMs - Date.now()));
        }
        return;
      }
      clearTimeout(this.#timer);
      this.#timer = undefined;
      void this.#send(this.#take());
    }
  }

  /** The next batch from the front of the queue: up to maxBatchEvents and maxBatchBytes, at least one. */
  #take(): Pending[] {
    let n = 0;
    let bytes = 0;
    while (n < this.#queue.length && n < this.maxBatchEvents && (n === 0 || bytes + this.#queue[n]!.bytes <= this.maxBatchBytes)) {
      bytes += this.#queue[n]!.bytes;
      n++;
    }
    const batch = this.#queue.splice(0, n);
    this.#queuedBytes -= bytes;
    // What stays has waited since before this batch went: it is due as soon as a slot frees.
    return batch;
  }

  async #send(batch: Pending[]): Promise<void> {
    this.#inFlight++;
    try {
      const stored = await this.#client.appendLines(batch.map((p) => p.line));
      this.stats.batches++;
      this.stats.events += batch.length;
      for (let i = 0; i < batch.length; i++) batch[i]!.resolve(stored[i]!);
    } catch (err) {
      this.stats.batches++;
      this.stats.failedBatches++;
      for (const p of batch) p.reject(err);
    } finally {
      this.#inFlight--;
      this.#dispatch();
      if (this.#queue.length === 0 || this.#inFlight === 0) {
        const w = this.#idleWaiters.splice(0);
        for (const r of w) r();
      }
    }
  }
}
