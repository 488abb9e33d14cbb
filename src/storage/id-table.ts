/**
 * id -> sequence without building a JS string per record during recovery: an
 * open-addressing table of (32-bit FNV-1a hash of the id's UTF-8 bytes -> sequence) in
 * typed arrays. A hash may have several candidates; the caller verifies each against the
 * stored event (the payload's `id`).
 */
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

export function hashBytes(buf: Uint8Array, start: number, end: number): number {
  let h = FNV_OFFSET;
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, FNV_PRIME);
  return h >>> 0;
}

export function hashString(s: string): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) {
      const b = Buffer.from(s, 'utf8');
      return hashBytes(b, 0, b.length);
    }
    h = Math.imul(h ^ c, FNV_PRIME);
  }
  return h >>> 0;
}

export class IdTable {
  #hashes = new Uint32Array(1 << 12);
  #seqs = new Float64Array(1 << 12); // 0 = empty slot
  #mask = (1 << 12) - 1;
  size = 0;

  /** Pre-sizes the table for about `n` ids (avoids rehashing during recovery). */
  reserve(n: number): void {
    if (n * 2 <= this.#seqs.length) return;
    let cap = this.#seqs.length;
    while (cap < n * 2) cap *= 2;
    const oldH = this.#hashes;
    const oldS = this.#seqs;
    this.#hashes = new Uint32Array(cap);
    this.#seqs = new Float64Array(cap);
    this.#mask = cap - 1;
    this.size = 0;
    for (let i = 0; i < oldS.length; i++) if (oldS[i] !== 0) this.insert(oldH[i]!, oldS[i]!);
  }

  insert(hash: number, sequence: number): void {
    if ((this.size + 1) * 2 > this.#seqs.length) this.#grow();
    let i = hash & this.#mask;
    while (this.#seqs[i] !== 0) i = (i + 1) & this.#mask;
    this.#hashes[i] = hash;
    this.#seqs[i] = sequence;
    this.size++;
  }

  /** Sequences whose id hashes to `hash`, ascending. */
  candidates(hash: number): number[] {
    const out: number[] = [];
    let i = hash & this.#mask;
    for (;;) {
      const s = this.#seqs[i]!;
      if (s === 0) break;
      if (this.#hashes[i] === hash) out.push(s);
      i = (i + 1) & this.#mask;
    }
    return out.sort((a, b) => a - b);
  }

  /** A copy holding only the entries with sequence >= `minSequence` (retention forgets the rest). */
  retainFrom(minSequence: number): IdTable {
    const t = new IdTable();
    let keep = 0;
    for (let i = 0; i < this.#seqs.length; i++) if (this.#seqs[i]! >= minSequence) keep++;
    t.reserve(keep);
    for (let i = 0; i < this.#seqs.length; i++) {
      const s = this.#seqs[i]!;
      if (s !== 0 && s >= minSequence) t.insert(this.#hashes[i]!, s);
    }
    return t;
  }

  #grow(): void {
    const oldH = this.#hashes;
    const oldS = this.#seqs;
    const n = oldS.length * 2;
    this.#hashes = new Uint32Array(n);
    this.#seqs = new Float64Array(n);
    this.#mask = n - 1;
    this.size = 0;
    for (let i = 0; i < oldS.length; i++) if (oldS[i] !== 0) this.insert(oldH[i]!, oldS[i]!);
  }
}
