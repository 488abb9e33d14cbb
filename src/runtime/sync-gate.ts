/**
 * A cache's first sync as something to wait for (client-go's HasSynced plus
 * WaitForCacheSync): closed until the first complete list, then open for good.
 *
 * Guarantees
 * - `wait()` resolves once the gate opens (at once if it is open); it rejects when its
 *   signal aborts or the gate is shut first, and removes its abort listener either way.
 * - `shut()` rejects every pending waiter and every later `wait()` on a gate that never
 *   opened; an opened gate stays open.
 */
interface Waiter {
  resolve: () => void;
  reject: (e: Error) => void;
}

export class SyncGate {
  readonly #name: string;
  #open = false;
  #shut = false;
  #waiters: Waiter[] = [];

  /** `name` goes into the rejection messages ("watcher NAME: ..."). */
  constructor(name: string) {
    this.#name = name;
  }

  get isOpen(): boolean {
    return this.#open;
  }

  /** The first sync happened: release every waiter. Returns false if it already had. */
  open(): boolean {
    if (this.#open) return false;
    this.#open = true;
    for (const w of this.#waiters.splice(0)) w.resolve();
    return true;
  }

  /** The cache stopped: waiters of a gate that never opened are rejected. */
  shut(): void {
    this.#shut = true;
    for (const w of this.#waiters.splice(0)) w.reject(this.#stoppedError());
  }

  /** Resolves at the first sync; rejects if `signal` aborts or the gate is shut first. */
  wait(signal?: AbortSignal): Promise<void> {
    if (this.#open) return Promise.resolve();
    if (this.#shut) return Promise.reject(this.#stoppedError());
    if (signal?.aborted) return Promise.reject(new Error(`watcher ${this.#name}: waitForSync aborted`));
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(`watcher ${this.#name}: waitForSync aborted`));
      };
      const waiter: Waiter = {
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (e: Error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      this.#waiters.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  #stoppedError(): Error {
    return new Error(`watcher ${this.#name}: stopped before the first sync`);
  }
}
