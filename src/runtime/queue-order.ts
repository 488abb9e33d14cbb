/**
 * The two orderings under the work queue (workqueue.ts): a FIFO of keys ready to be
 * handed out, and a min-heap of keys waiting for an `addAfter` time.
 *
 * Guarantees
 * - `Fifo`: O(1) amortised push/shift; the consumed prefix is dropped once it is both
 *   over 1024 entries and over half the array.
 * - `DelayHeap`: pops by (at, seq), so keys due at the same time come out in the order
 *   they were delayed. It never removes entries: the queue skips stale ones lazily.
 */

/** FIFO with O(1) amortised push/shift. */
export class Fifo<T> {
  #items: T[] = [];
  #head = 0;
  get length(): number {
    return this.#items.length - this.#head;
  }
  push(v: T): void {
    this.#items.push(v);
  }
  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const v = this.#items[this.#head] as T;
    this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return v;
  }
  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}

export interface Delayed<K> {
  key: K;
  at: number;
  seq: number;
}

/** Binary min-heap of delayed keys by (at, seq). Stale entries are skipped lazily. */
export class DelayHeap<K> {
  #h: Delayed<K>[] = [];
  get size(): number {
    return this.#h.length;
  }
  peek(): Delayed<K> | undefined {
    return this.#h[0];
  }
  push(d: Delayed<K>): void {
    const h = this.#h;
    h.push(d);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(h[i] as Delayed<K>, h[p] as Delayed<K>)) break;
      [h[i], h[p]] = [h[p] as Delayed<K>, h[i] as Delayed<K>];
      i = p;
    }
  }
  pop(): Delayed<K> | undefined {
    const h = this.#h;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last !== undefined) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l] as Delayed<K>, h[m] as Delayed<K>)) m = l;
        if (r < h.length && less(h[r] as Delayed<K>, h[m] as Delayed<K>)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m] as Delayed<K>, h[i] as Delayed<K>];
        i = m;
      }
    }
    return top;
  }
  clear(): void {
    this.#h = [];
  }
}

function less<K>(a: Delayed<K>, b: Delayed<K>): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
