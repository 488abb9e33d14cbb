import { describe, expect, it } from 'vitest';
import { decimalDigits, encodeEventInto, encodeFramedEventInto, eventRecordBound, framedRecordBound, FLAG_BATCH } from '../../../src/storage/format.ts';
import { eventDraft, eventDraftBytes, requestHash } from '../../../src/storage/store.ts';
import { UUID_BYTES } from '../../../src/storage/events.ts';
import { openStore, readAll, tempDir } from './helpers.ts';

const at = '2026-12-02T01:02:03.456Z';

describe('framed drafts (events framed from the request bytes)', () => {
  it('encode to the same record bytes (checksum included) as the string encoder', () => {
    for (const json of ['{}', '{"a":1}', '{"msg":"Chidé 🎉","n":[1,{"x":null}]}']) {
      for (const [key, hash] of [[undefined, undefined], ['k-1', requestHash('application/x-ndjson', json)]] as const) {
        const framed = eventDraftBytes(Buffer.from(json), at);
        const f = framed.framed!;
        const plain = eventDraft(json, at, framed.id);
        for (const seq of [1, 9, 10, 123456789]) {
          const a = Buffer.alloc(framedRecordBound(UUID_BYTES, key, f.preTail, f.json));
          const b = Buffer.alloc(eventRecordBound(plain.id, key, plain.pre, plain.post));
          const endA = encodeFramedEventInto(a, 0, seq, FLAG_BATCH, f.idPool, f.idAt, UUID_BYTES, key, hash, f.preTail, decimalDigits(seq), f.json);
          const endB = encodeEventInto(b, 0, seq, FLAG_BATCH, plain.id, key, hash, plain.pre, decimalDigits(seq), '', plain.body);
          expect(a.subarray(0, endA).toString('hex')).toBe(b.subarray(0, endB).toString('hex'));
        }
        // pre/post of a framed draft are what the string draft has.
        expect(framed.pre + 5 + framed.post).toBe(plain.pre + 5 + plain.post);
      }
    }
  });

  it('ids are random version-4 UUIDs, distinct across pool refills', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const id = eventDraftBytes(Buffer.from('{}'), at).id;
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      ids.add(id);
    }
    expect(ids.size).toBe(5000);
  });

  it('a batch of framed and string drafts: offsets, ids and reopen agree', async () => {
    const dir = await tempDir();
    let store = await openStore(dir);
    const events = Array.from({ length: 50 }, (_, i) => (i % 3 === 0 ? eventDraft(`{"i":${i},"s":"é"}`, at) : eventDraftBytes(Buffer.from(`{"i":${i},"s":"é"}`), at)));
    const res = await store.append({ events, batch: true });
    const stored = res.payloads.map((p) => p.toString('utf8'));
    expect(stored.map((s) => JSON.parse(s))).toEqual(events.map((e, i) => ({ id: e.id, createdAt: at, sequence: i + 1, i, s: 'é' })));
    for (const s of stored) expect((await store.getById(JSON.parse(s).id))!.toString()).toBe(s);
    await store.close();
    store = await openStore(dir);
    expect(store.report!.outcome).toBe('Clean');
    expect(await readAll(store)).toEqual(stored);
    expect(store.stats().bytes).toBe(stored.reduce((n, s) => n + Buffer.byteLength(s), 0));
  });
});
