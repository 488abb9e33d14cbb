import { describe, expect, it } from 'vitest';
import type { FileHandle } from 'node:fs/promises';
import { appendBody, openStore, readAll, tempDir } from './helpers.ts';

/** An io whose fdatasync is recorded (and can be held) instead of reaching the disk. */
function recordingIo() {
  const calls: { inline: boolean; turnEnded: boolean }[] = [];
  let turnEnded = false;
  let gate: Promise<void> | undefined;
  return {
    calls,
    /** Marks the current event-loop turn: turnEnded turns true at its end (setImmediate). */
    markTurn() {
      turnEnded = false;
      setImmediate(() => (turnEnded = true));
    },
    hold() {
      let release!: () => void;
      gate = new Promise<void>((r) => (release = r));
      return () => {
        gate = undefined;
        release();
      };
    },
    io: {
      datasync: (_fh: FileHandle, inline: boolean): void | Promise<void> => {
        calls.push({ inline, turnEnded });
        if (gate !== undefined) return gate;
      },
    },
  };
}

const nextTurn = () => new Promise<void>((r) => setImmediate(r));

describe('group commit: leader/follower, no timer', () => {
  it('a lone append is not delayed: its group is written and synced before the event-loop turn ends, inline', async () => {
    const rec = recordingIo();
    const store = await openStore(await tempDir(), { io: rec.io });
    await appendBody(store, { warm: 1 });
    await nextTurn(); // a client's next request arrives in a later turn
    rec.markTurn();
    const ev = JSON.parse(await appendBody(store, { lone: true }));
    expect(ev.sequence).toBe(2);
    // Synced in the same turn the append was made (no setImmediate window), on the event loop.
    expect(rec.calls.at(-1)).toEqual({ inline: true, turnEnded: false });
  });

  it('appends arriving while a group is syncing form the next group, synced on the threadpool; sequences stay gap-free', async () => {
    const rec = recordingIo();
    const store = await openStore(await tempDir(), { io: rec.io });
    await appendBody(store, { warm: 1 }); // creates the segment
    await nextTurn();
    const release = rec.hold();
    const first = appendBody(store, { n: 0 });
    await new Promise((r) => setImmediate(r));
    expect(rec.calls).toHaveLength(2); // the first append's group is in flight, held
    const rest = Array.from({ length: 5 }, (_, i) => appendBody(store, { n: i + 1 }));
    await new Promise((r) => setImmediate(r));
    expect(rec.calls).toHaveLength(2); // the followers wait for the leader's sync
    release();
    const all = [await first, ...(await Promise.all(rest))].map((s) => JSON.parse(s));
    expect(all.map((e) => e.sequence)).toEqual([2, 3, 4, 5, 6, 7]);
    expect(all.map((e) => e.n)).toEqual([0, 1, 2, 3, 4, 5]);
    // One more sync for the five followers together, not on the event loop.
    expect(rec.calls).toHaveLength(3);
    expect(rec.calls[2]!.inline).toBe(false);
    expect((await readAll(store)).map((s) => JSON.parse(s).n)).toEqual([undefined, 0, 1, 2, 3, 4, 5]);
  });

  it('appends made by one synchronous burst share one group; after it, lone appends sync off the event loop until a streak of them shows a lone client', async () => {
    const rec = recordingIo();
    const store = await openStore(await tempDir(), { io: rec.io });
    const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => appendBody(store, { i })));
    expect(burst.map((s) => JSON.parse(s).sequence)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(rec.calls).toHaveLength(1);
    expect(rec.calls[0]!.inline).toBe(false);
    // The last group had 20: clients are concurrent. A few lone appends in a row sync off
    // the event loop before lone appends sync inline again.
    const inline: boolean[] = [];
    for (let i = 0; i < 6; i++) {
      await nextTurn();
      await appendBody(store, { after: i });
      inline.push(rec.calls.at(-1)!.inline);
    }
    expect(rec.calls).toHaveLength(7);
    expect(inline).toEqual([false, false, false, false, true, true]);
  });

  it('an append made in the turn a group ended waits for the end of that turn, and everything made in it shares its group', async () => {
    const rec = recordingIo();
    const store = await openStore(await tempDir(), { io: rec.io });
    await appendBody(store, { warm: 1 });
    await nextTurn();
    // As a server does when it answers one client and reads the next requests in the same
    // turn: the appends come after the leader's group ended (all its microtasks ran).
    const later = await new Promise<Promise<string>[]>((resolve) => {
      void appendBody(store, { leader: true }).then(() =>
        process.nextTick(() => {
          rec.markTurn();
          const a = appendBody(store, { follower: 1 });
          setImmediate(() => undefined); // more I/O callbacks of the same turn
          process.nextTick(() => resolve([a, appendBody(store, { follower: 2 })]));
        }),
      );
    });
    const stored = (await Promise.all(later)).map((s) => JSON.parse(s));
    expect(stored.map((e) => e.sequence)).toEqual([3, 4]);
    expect(rec.calls).toHaveLength(3);
    expect(rec.calls[2]).toEqual({ inline: false, turnEnded: true });
  });
});
