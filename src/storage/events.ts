/**
 * What an append is made of: event drafts, the request around them, the result, and the
 * store's error type. Split out of store.ts so the writer, recovery and the HTTP layer
 * share one definition.
 *
 * Guarantees:
 * - `eventDraft` never lets a client choose `id`, `createdAt` or `sequence`: the server
 *   values come first in the stored JSON and `eventBodyJson` drops the client's copies.
 * - `requestHash` covers the content type and the exact request bytes, so a retry with
 *   the same Idempotency-Key must resend the same bytes to be a replay.
 */
import { createHash, randomFillSync, randomUUID } from 'node:crypto';
import { HASH_BYTES, HEADER_BYTES } from './format.ts';

export const DURABILITY_MODES = ['fsync', 'interval', 'none'] as const;
export type Durability = (typeof DURABILITY_MODES)[number];

/** Fields the server assigns; a client's values for them are dropped. */
export const RESERVED_FIELDS = ['id', 'createdAt', 'sequence'] as const;

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
  /**
   * Optional, instead of `pre`/`body`: the event as bytes the writer copies as they are
   * (format.ts encodeFramedEventInto): payload = `{"id":"` + id + preTail + sequence +
   * json with its `{` made a `,` (or `}` for `{}`). `id`, `pre` and `post` still answer,
   * built on demand.
   */
  framed?: FramedDraft;
}

export interface FramedDraft {
  /** The id: UUID_BYTES ASCII bytes at idAt in idPool. */
  idPool: Buffer;
  idAt: number;
  /** `","createdAt":"<time>","sequence":` as bytes (shared by the events of a request). */
  preTail: Buffer;
  /** The client's compact JSON object without reserved fields, UTF-8 (a slice of the request). */
  json: Buffer;
}

/** Bytes of a UUID in its text form. */
export const UUID_BYTES = 36;

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

class FramedEventDraft implements EventDraft, FramedDraft {
  readonly idPool: Buffer;
  readonly idAt: number;
  readonly preTail: Buffer;
  readonly json: Buffer;
  constructor(idPool: Buffer, idAt: number, preTail: Buffer, json: Buffer) {
    this.idPool = idPool;
    this.idAt = idAt;
    this.preTail = preTail;
    this.json = json;
  }
  get framed(): FramedDraft {
    return this;
  }
  get id(): string {
    return this.idPool.toString('latin1', this.idAt, this.idAt + UUID_BYTES);
  }
  get pre(): string {
    return `{"id":"${this.id}${this.preTail.toString('latin1')}`;
  }
  get post(): string {
    const b = this.json;
    return b.length <= 2 ? '}' : ',' + b.toString('utf8', 1);
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

export class StoreError extends Error {
  readonly code: string;
  /** Extra fields for the HTTP error body (e.g. freeBytes/reserveBytes of storage_full). */
  readonly details: Record<string, number | string> | undefined;
  constructor(code: string, message: string, options?: ErrorOptions & { details?: Record<string, number | string> }) {
    super(message, options);
    this.name = 'StoreError';
    this.code = code;
    this.details = options?.details;
  }
}

/** Builds the draft of a client event. `bodyJson` is the compact JSON object without reserved fields. */
export function eventDraft(bodyJson: string, createdAt: string = new Date().toISOString(), id?: string): EventDraft {
  // A random UUID needs no JSON escaping; a caller's id is quoted by JSON.stringify.
  const theId = id ?? randomUUID();
  const quoted = id === undefined ? `"${theId}"` : JSON.stringify(theId);
  return new ClientEventDraft(theId, `{"id":${quoted},"createdAt":"${createdAt}","sequence":`, bodyJson);
}

let tailFor = '';
let tail = Buffer.alloc(0);
const HEX = Buffer.from('0123456789abcdef', 'latin1');
const RANDOM_POOL = 16 * 256;
let random = Buffer.alloc(0);
let randomAt = RANDOM_POOL;
let ids = Buffer.alloc(0);
let idsAt = 0;

/**
 * A random (version 4) UUID written as text into the shared pool `ids`; returns its offset
 * (UUID_BYTES bytes; read `ids` right after the call: a full pool is replaced). Same
 * format and randomness as crypto.randomUUID (which also draws from a pooled
 * randomFillSync), without building a string per id.
 */
function uuidInto(): number {
  if (randomAt === RANDOM_POOL) {
    random = randomFillSync(Buffer.allocUnsafe(RANDOM_POOL));
    randomAt = 0;
  }
  if (idsAt + UUID_BYTES > ids.length) {
    ids = Buffer.allocUnsafe(UUID_BYTES * 1024);
    idsAt = 0;
  }
  const out = ids;
  let o = idsAt;
  const r = randomAt;
  for (let i = 0; i < 16; i++) {
    let b = random[r + i]!;
    if (i === 6) b = (b & 0x0f) | 0x40;
    else if (i === 8) b = (b & 0x3f) | 0x80;
    if (i === 4 || i === 6 || i === 8 || i === 10) out[o++] = 0x2d;
    out[o++] = HEX[b >> 4]!;
    out[o++] = HEX[b & 15]!;
  }
  randomAt += 16;
  const at = idsAt;
  idsAt = o;
  return at;
}

/**
 * Like eventDraft, from the UTF-8 bytes of a compact JSON object without reserved fields
 * (exactly what eventBodyJson would return for it: canonicalObject in
 * server/canonical-json.ts checks that). The bytes are kept, not copied: the caller must
 * not change them before the append is done. `createdAt` must be a toISOString() time.
 */
export function eventDraftBytes(body: Buffer, createdAt: string): EventDraft {
  if (createdAt !== tailFor) {
    tail = Buffer.from(`","createdAt":"${createdAt}","sequence":`, 'latin1');
    tailFor = createdAt;
  }
  const at = uuidInto();
  return new FramedEventDraft(ids, at, tail, body);
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

/**
 * Bytes the append will take on disk, for the free-space guard: exact for ASCII, an
 * underestimate by at most 3x for multi-byte text (the reserve absorbs that; see
 * space.ts). Cheap: string lengths only, no encoding pass on the hot path. Three times
 * this is an upper bound of the encoded size (UTF-8 takes at most 3 bytes per UTF-16
 * unit), which sizes group commits.
 */
export function appendDiskEstimate(req: AppendRequest): number {
  let n = req.idempotencyKey === undefined ? 0 : req.idempotencyKey.length;
  const events = req.events;
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    const f = e.framed;
    n += HEADER_BYTES + 16 + (f !== undefined ? 2 * UUID_BYTES + 7 + f.preTail.length + f.json.length : e.id.length + e.pre.length + (e.body ?? e.post).length);
  }
  return n;
}
