import { describe, expect, it } from 'vitest';
import { IdTable, hashBytes, hashString } from '../../../src/storage/id-table.ts';
import { eventDraft } from '../../../src/storage/store.ts';
import { openStore, tempDir } from './helpers.ts';

describe('id index', () => {
  it('hashes a string exactly like its UTF-8 bytes (ASCII and multi-byte)', () => {
    for (const s of ['abc', 'Chidé 🎉', '', 'a'.repeat(255)]) {
      const b = Buffer.from(s, 'utf8');
      expect(hashString(s)).toBe(hashBytes(b, 0, b.length));
    }
    expect(hashString('a')).not.toBe(hashString('b'));
  });

  it('keeps every candidate of a hash, in sequence order, across growth', () => {
    const t = new IdTable();
    for (let s = 1; s <= 20_000; s++) t.insert(s % 7 === 0 ? 42 : s * 2654435761, s);
    const c = t.candidates(42);
    expect(c).toHaveLength(Math.floor(20_000 / 7));
    expect(c[0]).toBe(7);
    expect([...c].sort((a, b) => a - b)).toEqual(c);
    expect(t.candidates(12345)).toEqual([]);
  });

  it('getById returns the first event of a repeated (imported) id and verifies the id, not just the hash', async () => {
    const dir = await tempDir();
    const store = await openStore(dir);
    const draft = (id: string, n: number) => ({ id, pre: '{"sequence":', post: `,"id":${JSON.stringify(id)},"n":${n}}` });
    await store.append({ events: [draft('dup', 1), draft('other', 2), draft('dup', 3), draft('Chidé 🎉', 4)], batch: true });
    expect(JSON.parse((await store.getById('dup'))!.toString())).toMatchObject({ sequence: 1, n: 1 });
    expect(JSON.parse((await store.getById('Chidé 🎉'))!.toString())).toMatchObject({ n: 4 });
    expect(await store.getById('missing')).toBeUndefined();
    expect(await store.hasId('other')).toBe(true);
    const ev = await store.append({ events: [eventDraft('{}')], batch: false });
    expect(await store.getById(JSON.parse(ev.payloads[0]!.toString()).id)).toEqual(ev.payloads[0]);
  });
});
