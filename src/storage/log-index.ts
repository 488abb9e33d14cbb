/**
 * In-memory indexes rebuilt by recovery: sequence -> (segment ordinal, payload offset,
 * payload length) in growable typed arrays, id -> sequence, idempotency key -> entry.
 *
 * Guarantees:
 * - Sequences have no gaps between `first` and `lastSequence`; sequence s lives at slot
 *   `start + s - first`, so a lookup is two array reads.
 * - `dropBefore` (retention) forgets whole prefixes: their ids and idempotency keys are
 *   forgotten too, so a deleted event is never half-known.
 *
 * Caveats: the segment field is an ordinal that keeps counting across retention (the
 * store maps it to its current segment list), never an array position.
 */
import { IdTable } from './id-table.ts';

export interface KeyEntry {
  /** First sequence the key produced. */
  sequence: number;
  /** Number of events (1 for a single append, n for a batch). */
  count: number;
  /** base64 of the 16-byte request hash. */
  hash: string;
  batch: boolean;
}

export class LogIndex {
  /** First retained sequence (1 until retention removed something; lastSequence + 1 when empty). */
  first = 1;
  /** Records held (lastSequence - first + 1). */
  count = 0;
  payloadBytes = 0;
  #start = 0;
  #seg = new Uint32Array(1024);
  #off = new Float64Array(1024);
  #len = new Uint32Array(1024);
  ids = new IdTable();
  readonly keys = new Map<string, KeyEntry>();

  constructor(first = 1) {
    this.first = first;
  }

  get lastSequence(): number {
    return this.first + this.count - 1;
  }

  /** Adds the next sequence (lastSequence + 1). */
  push(segOrd: number, payloadOffset: number, payloadLen: number): void {
    let i = this.#start + this.count;
    if (i === this.#seg.length) {
      this.#grow();
      i = this.#start + this.count;
    }
    this.#seg[i] = segOrd;
    this.#off[i] = payloadOffset;
    this.#len[i] = payloadLen;
    this.count++;
    this.payloadBytes += payloadLen;
  }

  has(sequence: number): boolean {
    return Number.isInteger(sequence) && sequence >= this.first && sequence <= this.lastSequence;
  }

  location(sequence: number): { segIndex: number; offset: number; length: number } | undefined {
    if (!this.has(sequence)) return undefined;
    const i = this.#start + sequence - this.first;
    return { segIndex: this.#seg[i]!, offset: this.#off[i]!, length: this.#len[i]! };
  }

  segIndexOf(sequence: number): number {
    return this.#seg[this.#start + sequence - this.first]!;
  }
  offsetOf(sequence: number): number {
    return this.#off[this.#start + sequence - this.first]!;
  }
  lengthOf(sequence: number): number {
    return this.#len[this.#start + sequence - this.first]!;
  }

  /** Pre-sizes for about `n` records. */
  reserve(n: number): void {
    while (this.#seg.length < n) this.#double();
    this.ids.reserve(n);
  }

  /**
   * Forgets every sequence below `sequence` (retention removed their segments), with their
   * ids and idempotency keys. Returns how many records and payload bytes went.
   */
  dropBefore(sequence: number): { records: number; payloadBytes: number } {
    const n = Math.min(Math.max(0, sequence - this.first), this.count);
    let bytes = 0;
    for (let i = this.#start; i < this.#start + n; i++) bytes += this.#len[i]!;
    this.#start += n;
    this.count -= n;
    this.payloadBytes -= bytes;
    this.first = Math.max(this.first, sequence);
    if (this.count === 0) this.#start = 0;
    if (n > 0) {
      this.ids = this.ids.retainFrom(this.first);
      for (const [k, e] of this.keys) if (e.sequence < this.first) this.keys.delete(k);
    }
    return { records: n, payloadBytes: bytes };
  }

  #grow(): void {
    // Reclaim the slots retention freed before doubling.
    if (this.#start > 0 && this.#start * 2 >= this.#seg.length) {
      this.#seg.copyWithin(0, this.#start, this.#start + this.count);
      this.#off.copyWithin(0, this.#start, this.#start + this.count);
      this.#len.copyWithin(0, this.#start, this.#start + this.count);
      this.#start = 0;
      return;
    }
    this.#double();
  }

  #double(): void {
    const n = this.#seg.length * 2;
    const s = new Uint32Array(n);
    s.set(this.#seg.subarray(this.#start, this.#start + this.count));
    const o = new Float64Array(n);
    o.set(this.#off.subarray(this.#start, this.#start + this.count));
    const l = new Uint32Array(n);
    l.set(this.#len.subarray(this.#start, this.#start + this.count));
    this.#seg = s;
    this.#off = o;
    this.#len = l;
    this.#start = 0;
  }
}
