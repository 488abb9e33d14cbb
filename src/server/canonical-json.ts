/**
 * Recognises a JSON object whose bytes are already exactly what the append path would
 * store: `JSON.stringify(JSON.parse(text))` (with the server's reserved fields dropped)
 * is the same text. Such an event can be framed from the request bytes as they are: no
 * JSON.parse, no object, no JSON.stringify, no UTF-16 round trip.
 *
 * Guarantees:
 * - `canonicalObject(buf, start, end)` returns true only if the bytes are one JSON object
 *   that JSON.parse accepts and that JSON.stringify writes back byte for byte, with no
 *   top-level `id`, `createdAt` or `sequence` (fields the server assigns). It is
 *   conservative: whatever it is not sure about answers false (whitespace, `\u` or `\/`
 *   escapes, numbers other than short integers, `-0`, keys made of digits only, which
 *   JSON.stringify would move to the front, duplicate keys, escaped keys, more than
 *   MAX_KEYS keys in one object, nesting deeper than MAX_DEPTH), and the caller takes the
 *   general path (JSON.parse + JSON.stringify), which also produces every error.
 * - The caller has checked that the whole buffer is valid UTF-8 (isUtf8): bytes >= 0x80
 *   inside strings are then whole characters, which JSON.stringify writes unescaped.
 */

/** Keys per object that the duplicate check accepts (beyond: the general path). */
export const MAX_KEYS = 64;
/** Nesting depth the scanner accepts (beyond: the general path). */
export const MAX_DEPTH = 64;
/** Integer digits kept exact by a double and written back unchanged by JSON.stringify. */
const MAX_INT_DIGITS = 15;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;

// Key spans (start, end) of the objects being scanned, innermost last: the duplicate check.
const spans = new Int32Array(2 * MAX_KEYS * (MAX_DEPTH + 1));
let spanTop = 0;

const TRUE = [0x74, 0x72, 0x75, 0x65];
const FALSE = [0x66, 0x61, 0x6c, 0x73, 0x65];
const NULL = [0x6e, 0x75, 0x6c, 0x6c];
// Top-level fields the server assigns (events.ts RESERVED_FIELDS), as bytes.
const RESERVED = ['id', 'createdAt', 'sequence'].map((k) => Buffer.from(k, 'latin1'));

/** True when buf[start, end) is a canonical JSON object without reserved top-level fields (see above). */
export function canonicalObject(buf: Uint8Array, start: number, end: number): boolean {
  if (end - start < 2 || buf[start] !== LBRACE) return false;
  spanTop = 0;
  return object(buf, start, end, 1, true) === end;
}

/** Scans the value at p; returns the offset after it, or -1 when it is not canonical. */
function value(buf: Uint8Array, p: number, end: number, depth: number): number {
  if (p >= end) return -1;
  const c = buf[p]!;
  if (c === QUOTE) return string(buf, p, end);
  if (c === LBRACE) return object(buf, p, end, depth + 1, false);
  if (c === LBRACKET) return array(buf, p, end, depth + 1);
  if (c === MINUS || (c >= ZERO && c <= NINE)) return integer(buf, p, end);
  if (c === 0x74) return literal(buf, p, end, TRUE);
  if (c === 0x66) return literal(buf, p, end, FALSE);
  if (c === 0x6e) return literal(buf, p, end, NULL);
  return -1;
}

function literal(buf: Uint8Array, p: number, end: number, word: number[]): number {
  if (p + word.length > end) return -1;
  for (let i = 0; i < word.length; i++) if (buf[p + i] !== word[i]) return -1;
  return p + word.length;
}

/** `-?(0|[1-9][0-9]*)`, at most MAX_INT_DIGITS digits, not `-0`, no fraction or exponent. */
function integer(buf: Uint8Array, p: number, end: number): number {
  let q = p;
  const negative = buf[q] === MINUS;
  if (negative) q++;
  if (q >= end) return -1;
  const first = q;
  const c = buf[q]!;
  if (c === ZERO) {
    if (negative) return -1; // -0: JSON.stringify writes 0
    q++;
  } else if (c > ZERO && c <= NINE) {
    q++;
    while (q < end && buf[q]! >= ZERO && buf[q]! <= NINE) q++;
  } else return -1;
  if (q - first > MAX_INT_DIGITS) return -1;
  if (q < end) {
    const n = buf[q]!;
    // A fraction or exponent (JSON.stringify may rewrite it), or a leading zero (invalid).
    if (n === 0x2e || n === 0x65 || n === 0x45 || (n >= ZERO && n <= NINE)) return -1;
  }
  return q;
}

/** A string whose escapes are only those JSON.stringify writes for itself (\" \\ \b \f \n \r \t). */
function string(buf: Uint8Array, p: number, end: number): number {
  for (let q = p + 1; q < end; q++) {
    const c = buf[q]!;
    if (c === QUOTE) return q + 1;
    if (c < 0x20) return -1; // a raw control character: invalid JSON
    if (c === BACKSLASH) {
      q++;
      if (q >= end) return -1;
      const e = buf[q]!;
      // " \ b f n r t; \u (JSON.stringify writes most characters raw) and \/ are rewritten.
      if (e !== QUOTE && e !== BACKSLASH && e !== 0x62 && e !== 0x66 && e !== 0x6e && e !== 0x72 && e !== 0x74) return -1;
    }
  }
  return -1;
}

function array(buf: Uint8Array, p: number, end: number, depth: number): number {
  if (depth > MAX_DEPTH) return -1;
  let q = p + 1;
  if (q < end && buf[q] === RBRACKET) return q + 1;
  for (;;) {
    q = value(buf, q, end, depth);
    if (q < 0 || q >= end) return -1;
    const c = buf[q]!;
    if (c === RBRACKET) return q + 1;
    if (c !== COMMA) return -1;
    q++;
  }
}

function object(buf: Uint8Array, p: number, end: number, depth: number, top: boolean): number {
  if (depth > MAX_DEPTH) return -1;
  let q = p + 1;
  if (q < end && buf[q] === RBRACE) return q + 1;
  const base = spanTop;
  try {
    for (;;) {
      if (q >= end || buf[q] !== QUOTE) return -1;
      // The key: plain characters only (an escaped key could duplicate another unseen).
      const ks = q + 1;
      let k = ks;
      let digitsOnly = true;
      for (;;) {
        if (k >= end) return -1;
        const c = buf[k]!;
        if (c === QUOTE) break;
        if (c < 0x20 || c === BACKSLASH) return -1;
        if (c < ZERO || c > NINE) digitsOnly = false;
        k++;
      }
      // Integer-like keys ("0", "12") are written first by JSON.stringify: order would change.
      if (digitsOnly && k > ks) return -1;
      if (!newKey(buf, ks, k, base)) return -1;
      if (top && reserved(buf, ks, k)) return -1;
      q = k + 1;
      if (q >= end || buf[q] !== COLON) return -1;
      q = value(buf, q + 1, end, depth);
      if (q < 0 || q >= end) return -1;
      const c = buf[q]!;
      if (c === RBRACE) return q + 1;
      if (c !== COMMA) return -1;
      q++;
    }
  } finally {
    spanTop = base;
  }
}

/** Records the key buf[ks, ke) of the object whose spans start at `base`; false if it is a duplicate or one too many. */
function newKey(buf: Uint8Array, ks: number, ke: number, base: number): boolean {
  if ((spanTop - base) >> 1 >= MAX_KEYS) return false;
  const len = ke - ks;
  for (let i = base; i < spanTop; i += 2) {
    const s = spans[i]!;
    if (spans[i + 1]! - s !== len) continue;
    let same = true;
    for (let j = 0; j < len; j++) {
      if (buf[s + j] !== buf[ks + j]) {
        same = false;
        break;
      }
    }
    if (same) return false;
  }
  spans[spanTop++] = ks;
  spans[spanTop++] = ke;
  return true;
}

function reserved(buf: Uint8Array, ks: number, ke: number): boolean {
  for (const r of RESERVED) {
    if (r.length !== ke - ks) continue;
    let same = true;
    for (let j = 0; j < r.length; j++) {
      if (buf[ks + j] !== r[j]) {
        same = false;
        break;
      }
    }
    if (same) return true;
  }
  return false;
}
