/**
 * In-memory indexes rebuilt by recovery: sequence -> (segment, payload offset, payload
 * length) in growable typed arrays, id -> sequence, idempotency key -> entry.
 * Sequences start at 1 and have no gaps, so sequence s lives at slot s - 1.
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
  count = 0;
  payloadBytes = 0;
  private seg = new Uint32Array(1024);
  private off = new Float64Array(1024);
  private len = new Uint32Array(1024);
  readonly ids = new IdTable();
  readonly keys = new Map<string, KeyEntry>();

  /** Adds the next sequence (count + 1). */
  push(segIndex: number, payloadOffset: number, payloadLen: number): void {
    const i = this.count;
    if (i === this.seg.length) this.grow();
    this.seg[i] = segIndex;
    this.off[i] = payloadOffset;
    this.len[i] = payloadLen;
    this.count = i + 1;
    this.payloadBytes += payloadLen;
  }

  location(sequence: number): { segIndex: number; offset: number; length: number } | undefined {
    if (!Number.isInteger(sequence) || sequence < 1 || sequence > this.count) return undefined;
    const i = sequence - 1;
    return { segIndex: this.seg[i]!, offset: this.off[i]!, length: this.len[i]! };
  }

  segIndexOf(sequence: number): number {
    return this.seg[sequence - 1]!;
  }
  offsetOf(sequence: number): number {
    return this.off[sequence - 1]!;
  }
  lengthOf(sequence: number): number {
    return this.len[sequence - 1]!;
  }

  /** Pre-sizes for about `n` records. */
  reserve(n: number): void {
    while (this.seg.length < n) this.grow();
    this.ids.reserve(n);
  }

  private grow(): void {
    const n = this.seg.length * 2;
    const s = new Uint32Array(n);
    s.set(this.seg);
    const o = new Float64Array(n);
    o.set(this.off);
    const l = new Uint32Array(n);
    l.set(this.len);
    this.seg = s;
    this.off = o;
    this.len = l;
  }
}
