import { describe, expect, it } from 'vitest';
import { parseAppendBody, parseAppendBodySlow } from '../../../src/server/append-body.ts';
import { canonicalObject, MAX_DEPTH, MAX_KEYS } from '../../../src/server/canonical-json.ts';
import { HttpError } from '../../../src/server/errors.ts';
import type { EventDraft } from '../../../src/storage/store.ts';

const canon = (s: string) => {
  const b = Buffer.from(s, 'utf8');
  return canonicalObject(b, 0, b.length);
};

/** A seeded PRNG (mulberry32): the fuzz cases are the same on every run. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random JSON-ish text: mostly valid, often not canonical, sometimes broken. */
function jsonish(r: () => number, depth = 0): string {
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
  const ws = () => (r() < 0.05 ? pick([' ', '\t', '\r\n', '  ']) : '');
  const str = () => {
    let s = '';
    const n = Math.floor(r() * 6);
    for (let i = 0; i < n; i++) s += pick(['a', 'Z', '0', '7', ' ', 'é', '🎉', '\\"', '\\\\', '\\n', '\\t', '\\b', '\\f', '\\r', '\\/', '\\u0041', '\\u00e9', '\\ud83c', '\u2028', '\x7f', '/', 'id', '"', '\\', '\x01']);
    return `"${s}"`;
  };
  const num = () => pick(['0', '-0', '1', '-1', '42', '007', '1.5', '1.50', '1e3', '1E3', '-', '123456789012345', '1234567890123456', '9007199254740993', '0.1', '2.']);
  const key = () => (r() < 0.15 ? pick(['"id"', '"createdAt"', '"sequence"', '"0"', '"12"', '"1a"', '"__proto__"', '""', '"a"', '"a"', '"\\u0061"']) : str());
  const value = (): string => {
    const k = r();
    if (depth < 4 && k < 0.15) return jsonish(r, depth + 1);
    if (depth < 4 && k < 0.25) return `[${ws()}${Array.from({ length: Math.floor(r() * 3) }, () => value()).join(`${ws()},${ws()}`)}${ws()}]`;
    if (k < 0.5) return str();
    if (k < 0.75) return num();
    return pick(['true', 'false', 'null', 'tru', 'nul']);
  };
  const n = Math.floor(r() * 5);
  const members = Array.from({ length: n }, () => `${ws()}${key()}${ws()}:${ws()}${value()}${ws()}`);
  let text = `{${members.join(',')}${n === 0 ? ws() : ''}}`;
  if (r() < 0.05) text = text.slice(0, Math.floor(r() * text.length)); // truncated
  if (r() < 0.03) text += pick([',', '}', ' x']);
  return text;
}

describe('canonicalObject: bytes JSON.stringify(JSON.parse(...)) writes back unchanged', () => {
  it('accepts canonical objects', () => {
    for (const s of ['{}', '{"a":1}', '{"type":"order.created","data":"xxx"}', '{"a":{"b":[1,true,false,null,"s",{}]},"c":[]}', '{"s":"Chidé 🎉 \\"q\\" \\\\ \\n\\t\\r\\b\\f"}', '{"n":-123456789012345}', '{"1a":0,"a1":0}', '{"__proto__":{"id":1}}', '{"":""}', '{"nested":{"id":1,"sequence":2}}']) {
      expect(canon(s), s).toBe(true);
      expect(JSON.stringify(JSON.parse(s)), s).toBe(s);
    }
  });

  it('answers false for what it is not sure about, and for everything invalid', () => {
    const cases = [
      '{ "a":1}', '{"a": 1}', '{"a":1} ', ' {"a":1}', '{"a":1}\r', // whitespace
      '{"a":"\\u0041"}', '{"a":"\\/"}', '{"a":"\\ud83c"}', // escapes JSON.stringify rewrites
      '{"a":1.5}', '{"a":1e3}', '{"a":-0}', '{"a":1234567890123456}', // numbers
      '{"b":1,"0":2}', '{"12":1}', // integer-like keys move to the front
      '{"a":1,"a":2}', '{"x":{"k":1,"k":1}}', '{"\\u0061":1}', // duplicates, escaped keys
      '{"id":"mine"}', '{"createdAt":1}', '{"sequence":1}', // reserved top-level fields
      '{', '{"a":}', '{"a":1,}', '{"a" 1}', '{a:1}', '{"a":01}', '{"a":tru}', '{"a":"\x01"}', '{"a":[1,]}', '[1]', '"s"', '{}}', '{"a":1}x', '',
    ];
    for (const s of cases) expect(canon(s), s).toBe(false);
    const wide = `{${Array.from({ length: MAX_KEYS + 1 }, (_, i) => `"k${i}":${i}`).join(',')}}`;
    expect(canon(wide)).toBe(false);
    expect(canon(`{${Array.from({ length: MAX_KEYS }, (_, i) => `"k${i}":${i}`).join(',')}}`)).toBe(true);
    const deep = (d: number) => '{"a":'.repeat(d - 1) + '{}' + '}'.repeat(d - 1);
    expect(canon(deep(MAX_DEPTH))).toBe(true);
    expect(canon(deep(MAX_DEPTH + 1))).toBe(false);
  });

  it('fuzz: whenever it says canonical, JSON.parse accepts it, no reserved field is there, and JSON.stringify gives the same text', () => {
    const r = rng(15);
    let accepted = 0;
    let rejected = 0;
    for (let i = 0; i < 30_000; i++) {
      const text = jsonish(r);
      const buf = Buffer.from(text, 'utf8');
      if (!canonicalObject(buf, 0, buf.length)) {
        rejected++;
        continue;
      }
      accepted++;
      const v = JSON.parse(text) as Record<string, unknown>;
      expect(typeof v === 'object' && v !== null && !Array.isArray(v), text).toBe(true);
      for (const k of ['id', 'createdAt', 'sequence']) expect(Object.hasOwn(v, k), text).toBe(false);
      expect(JSON.stringify(v), text).toBe(text);
    }
    // Both sides are exercised.
    expect(accepted).toBeGreaterThan(3000);
    expect(rejected).toBeGreaterThan(3000);
  });
});

/** A draft's stored payload for sequence 7, with its id replaced (ids are random). */
function payload(d: EventDraft): string {
  return (d.pre + 7 + d.post).replace(`"id":"${d.id}"`, '"id":"X"');
}
function outcome(f: () => EventDraft[]): unknown {
  try {
    return f().map(payload);
  } catch (err) {
    if (!(err instanceof HttpError)) throw err;
    return { status: err.statusCode, code: err.code, message: err.message };
  }
}

describe('parseAppendBody: the fast path stores and refuses exactly what the general path does', () => {
  const at = '2026-12-02T00:00:00.000Z';
  it('single bodies and NDJSON batches, good and bad, canonical or not (fuzz)', () => {
    const r = rng(151);
    let errors = 0;
    for (let i = 0; i < 3000; i++) {
      const lines = Array.from({ length: 1 + Math.floor(r() * 6) }, () => (r() < 0.1 ? ['', ' ', '\r', '\t'][Math.floor(r() * 4)]! : jsonish(r)));
      const text = lines.join('\n') + (r() < 0.5 ? '\n' : '');
      const body = Buffer.from(text, 'utf8');
      for (const batch of [true, false]) {
        const fast = outcome(() => parseAppendBody(body, batch, at));
        const slow = outcome(() => parseAppendBodySlow(body, batch, at));
        expect(fast, JSON.stringify({ text, batch })).toEqual(slow);
        if (!Array.isArray(fast)) errors++;
      }
    }
    expect(errors).toBeGreaterThan(500);
    expect(errors).toBeLessThan(5500);
  });

  it('names the first bad line, as before', () => {
    const body = Buffer.from('{"ok":1}\n{"a": }\n[1]\n');
    expect(() => parseAppendBody(body, true, at)).toThrow(/^line 2 is not valid JSON: /);
    expect(() => parseAppendBody(Buffer.from('{"ok":1}\n\n[1]\n'), true, at)).toThrow('line 3 must be a JSON object');
    expect(() => parseAppendBody(Buffer.from(' \n\r\n'), true, at)).toThrow('the NDJSON batch has no events');
  });

  it('a canonical line is framed from the request bytes; any other is re-serialised', () => {
    const body = Buffer.from('{"a":1}\n{ "a": 1 }\n{"id":"x","a":1}\n');
    const drafts = parseAppendBody(body, true, at);
    expect(drafts.map((d) => d.framed !== undefined)).toEqual([true, false, false]);
    expect(new Set(drafts.map(payload)).size).toBe(1);
    expect(drafts[0]!.framed!.json.buffer).toBe(body.buffer); // a slice, not a copy
  });
});
