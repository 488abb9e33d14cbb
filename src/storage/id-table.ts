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
  // Slot i: [2i] = hash, [2i + 1] = sequence (0 = empty). Interleaved, so that an insert
  // or a lookup in a table far larger than the CPU caches costs one cache miss, not two.
  #slots = new Float64Array(2 << 12);
  #mask = (1 << 12) - 1;
  size = 0;

  get #capacity(): number {
    return this.#slots.length >> 1;
  }

  /** Pre-sizes the table for about `n` ids (avoids rehashing during recovery). */
  reserve(n: number): void {
    if (n * 2 <= this.#capacity) return;
    let cap = this.#capacity;
    while (cap < n * 2) cap *= 2;
    this.#rehash(cap);
  }

  insert(hash: number, sequence: number): void {
    if ((this.size + 1) * 2 > this.#capacity) this.#rehash(this.#capacity * 2);
    const slots = this.#slots;
    const mask = this.#mask;
    let i = hash & mask;
    while (slots[2 * i + 1] !== 0) i = (i + 1) & mask;
    slots[2 * i] = hash;
    slots[2 * i + 1] = sequence;
    this.size++;
  }

  /** Sequences whose id hashes to `hash`, ascending. */
  candidates(hash: number): number[] {
    const out: number[] = [];
    const slots = this.#slots;
    let i = hash & this.#mask;
    for (;;) {
      const s = slots[2 * i + 1]!;
      if (s === 0) break;
      if (slots[2 * i] === hash) out.push(s);
      i = (i + 1) & this.#mask;
    }
    return out.sort((a, b) => a - b);
  }

  /** A copy holding only the entries with sequence >= `minSequence` (retention forgets the rest). */
  retainFrom(minSequence: number): IdTable {
    const t = new IdTable();
    const slots = this.#slots;
    let keep = 0;
    for (let i = 1; i < slots.length; i += 2) if (slots[i]! >= minSequence) keep++;
    t.reserve(keep);
    for (let i = 1; i < slots.length; i += 2) {
      const s = slots[i]!;
      if (s !== 0 && s >= minSequence) t.insert(slots[i - 1]!, s);
    }
    return t;
  }

  #rehash(cap: number): void {
    const old = this.#slots;
    this.#slots = new Float64Array(2 * cap);
    this.#mask = cap - 1;
    this.size = 0;
    for (let i = 1; i < old.length; i += 2) if (old[i] !== 0) this.insert(old[i - 1]!, old[i]!);
  }
}
