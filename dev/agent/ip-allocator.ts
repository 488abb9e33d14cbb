/**
 * Pod IP allocation: every pod gets its own loopback address from 127.1.0.0/16
 * (127.1.x.y with y in 1..254), so each log server can bind its usual port on
 * its own address, the way pods on a real node each have their own network
 * namespace. Addresses are keyed by pod UID and released when the pod is gone.
 */

export interface IpAllocatorOptions {
  /** First two octets of the range; default [127, 1]. */
  prefix?: readonly [number, number];
}

export class PodIpAllocator {
  readonly #prefix: readonly [number, number];
  readonly #byOwner = new Map<string, string>();
  readonly #owners = new Map<string, string>();
  /** Next index to try, so released addresses are not reused immediately. */
  #cursor = 0;

  constructor(opts: IpAllocatorOptions = {}) {
    this.#prefix = opts.prefix ?? [127, 1];
  }

  static readonly capacity = 256 * 254;

  #ipAt(index: number): string {
    const x = Math.floor(index / 254);
    const y = (index % 254) + 1;
    return `${this.#prefix[0]}.${this.#prefix[1]}.${x}.${y}`;
  }

  /** Whether `ip` is an address this allocator hands out. */
  inRange(ip: string): boolean {
    const parts = ip.split('.').map((p) => Number(p));
    if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p))) return false;
    const [a, b, x, y] = parts as [number, number, number, number];
    return a === this.#prefix[0] && b === this.#prefix[1] && x >= 0 && x <= 255 && y >= 1 && y <= 254;
  }

  /** The address held by `owner`, allocating a fresh one if it has none. */
  allocate(owner: string): string {
    const held = this.#byOwner.get(owner);
    if (held !== undefined) return held;
    for (let i = 0; i < PodIpAllocator.capacity; i++) {
      const index = (this.#cursor + i) % PodIpAllocator.capacity;
      const ip = this.#ipAt(index);
      if (!this.#owners.has(ip)) {
        this.#cursor = (index + 1) % PodIpAllocator.capacity;
        this.#byOwner.set(owner, ip);
        this.#owners.set(ip, owner);
        return ip;
      }
    }
    throw new Error(`pod IP range ${this.#prefix.join('.')}.0.0/16 is exhausted (${this.#owners.size} addresses in use)`);
  }

  /**
   * Claim a specific address for `owner` (e.g. the podIP already recorded in a
   * pod's status when the agent restarts). Returns false when the address is
   * outside the range or held by someone else.
   */
  reserve(owner: string, ip: string): boolean {
    if (!this.inRange(ip)) return false;
    const holder = this.#owners.get(ip);
    if (holder !== undefined) return holder === owner;
    if (this.#byOwner.has(owner)) return false;
    this.#byOwner.set(owner, ip);
    this.#owners.set(ip, owner);
    return true;
  }

  release(owner: string): void {
    const ip = this.#byOwner.get(owner);
    if (ip === undefined) return;
    this.#byOwner.delete(owner);
    this.#owners.delete(ip);
  }

  get(owner: string): string | undefined {
    return this.#byOwner.get(owner);
  }

  get size(): number {
    return this.#byOwner.size;
  }
}
