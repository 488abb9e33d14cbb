import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { EventStore, eventDraft, type StoreOptions } from '../../../src/storage/store.ts';

const dirs: string[] = [];
const stores: EventStore[] = [];

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close().catch(() => undefined);
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

export async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'eventlog-unit-'));
  dirs.push(d);
  return d;
}

export async function openStore(dataDir: string, opts: Partial<StoreOptions> = {}): Promise<EventStore> {
  const s = new EventStore({ dataDir, ...opts });
  stores.push(s);
  await s.open();
  return s;
}

/** Appends one client event (compact JSON body without reserved fields). */
export async function appendBody(store: EventStore, body: Record<string, unknown>, key?: string): Promise<string> {
  const res = await store.append({ events: [eventDraft(JSON.stringify(body))], batch: false, ...(key ? { idempotencyKey: key } : {}) });
  return res.payloads[0]!.toString('utf8');
}

export async function segmentPaths(dataDir: string): Promise<string[]> {
  const names = (await readdir(join(dataDir, 'segments'))).filter((n) => n.endsWith('.seg')).sort();
  return names.map((n) => join(dataDir, 'segments', n));
}

export async function readAll(store: EventStore): Promise<string[]> {
  const out: string[] = [];
  let after = 0;
  for (;;) {
    const batch = await store.readAfter(after, 1000);
    if (batch.length === 0) return out;
    for (const b of batch) out.push(b.toString('utf8'));
    // Follow sequences: after retention the log starts later than 1.
    after = JSON.parse(out.at(-1)!).sequence;
  }
}
