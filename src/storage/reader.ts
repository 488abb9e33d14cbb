/**
 * Reads from the published part of the log: by sequence range and by id.
 *
 * Guarantees:
 * - Only published (acknowledged) records are reachable: the index holds nothing else.
 * - A read that races retention returns a contiguous prefix of what it asked for (it
 *   stops where retention removed records) and never reads a closed file: the segment's
 *   `readers` count keeps its handle open until the read is done.
 */
import { StoreError } from './events.ts';
import { hashString } from './id-table.ts';
import { closeWhenIdle } from './segments.ts';
import type { LogState } from './writer.ts';

/** Up to `count` records from `from` on, at most `maxBytes` of payload (always at least one). */
export async function readRange(data: LogState, from: number, count: number, maxBytes: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  let seq = from;
  const end = from + count; // exclusive
  let total = 0;
  while (seq < end) {
    const index = data.index;
    if (!index.has(seq)) break; // retention removed the rest meanwhile
    const segOrd = index.segIndexOf(seq);
    const start = index.offsetOf(seq);
    // Extend over following records of the same segment (they are contiguous on disk).
    let last = seq;
    let bytes = index.lengthOf(seq);
    while (last + 1 < end && index.has(last + 1) && index.segIndexOf(last + 1) === segOrd) {
      if (total + bytes + index.lengthOf(last + 1) > maxBytes) break;
      last++;
      bytes += index.lengthOf(last);
    }
    const span = index.offsetOf(last) + index.lengthOf(last) - start;
    const buf = Buffer.allocUnsafe(span);
    const seg = data.bySegOrd(segOrd);
    if (seg === undefined) throw new StoreError('read', `reading sequence ${seq}: segment #${segOrd} is not open`);
    seg.readers++;
    try {
      let got = 0;
      while (got < span) {
        const { bytesRead } = await seg.fh.read(buf, got, span - got, start + got);
        if (bytesRead === 0) throw new StoreError('read', `reading sequence ${seq} from ${seg.path}: unexpected end of file`);
        got += bytesRead;
      }
    } finally {
      seg.readers--;
      closeWhenIdle(seg);
    }
    for (let s = seq; s <= last; s++) {
      const o = index.offsetOf(s) - start;
      out.push(buf.subarray(o, o + index.lengthOf(s)));
    }
    total += bytes;
    seq = last + 1;
    if (total >= maxBytes) break;
  }
  return out;
}

/** The retained event with this id (the first one, should an imported id repeat), or undefined. */
export async function readById(data: LogState, id: string, maxBytes: number): Promise<Buffer | undefined> {
  const index = data.index;
  for (const seq of index.ids.candidates(hashString(id))) {
    if (!index.has(seq)) continue;
    const payload = (await readRange(data, seq, 1, maxBytes))[0];
    if (payload === undefined) continue;
    // Cheap check first: server events start with {"id":"<id>", imported ones carry "id" inside.
    if (payload.includes(JSON.stringify(id))) {
      const stored = (JSON.parse(payload.toString('utf8')) as { id?: unknown }).id;
      if (stored === id) return payload;
    }
  }
  return undefined;
}
