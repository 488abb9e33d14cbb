/**
 * Side files: torn tails cut off by recovery (`torn/`) and data moved aside by a repair
 * (`repair/`). Nothing ever reads them back; they are kept for forensic work.
 *
 * Guarantees:
 * - Bounded: `torn/` keeps the newest 32 files and at most max(1 MiB, 1% of the
 *   filesystem) (the newest file is always kept); `repair/` keeps the newest 4 repairs.
 *   Older ones are deleted at start-up and after each repair.
 * - On a full volume the torn-tail copy is best effort: when it cannot be written for
 *   lack of space (ENOSPC) the partial copy is removed, the reason is reported and
 *   recovery carries on. A torn tail is the last, unfinished write (never acknowledged) or
 *   a last record whose checksum already fails, so no readable acknowledged event is lost;
 *   the truncation itself needs no space and is what makes the log appendable.
 *   Any other error of the copy still fails recovery (the disk is not healthy).
 */
import { lstat, mkdir, readdir, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../common/logger.ts';
import { copyRange, fsyncDir } from './segments.ts';
import { isNoSpace } from './space.ts';

export const TORN_DIR = 'torn';
export const REPAIR_DIR = 'repair';
export const TORN_KEEP_FILES = 32;
export const REPAIR_KEEP = 4;

export function tornCapBytes(filesystemBytes: number | undefined): number {
  return Math.max(1024 * 1024, Math.ceil((filesystemBytes ?? 0) * 0.01));
}

export type TornCopy = { keptIn: string } | { skipped: string };

/** Copies the torn tail [offset, offset+length) of `segPath` to torn/ if there is room. */
export async function keepTornTail(dataDir: string, segName: string, segPath: string, offset: number, length: number, at: number): Promise<TornCopy> {
  const dir = join(dataDir, TORN_DIR);
  const side = join(dir, `${segName}.${offset}.${at}.bin`);
  try {
    if ((await mkdir(dir, { recursive: true })) !== undefined) await fsyncDir(dataDir);
    await copyRange(segPath, offset, length, side);
    await fsyncDir(dir);
    return { keptIn: side };
  } catch (err) {
    if (!isNoSpace(err)) throw err;
    await unlink(side).catch(() => undefined);
    return { skipped: `no space left for the side copy (${(err as Error).message})` };
  }
}

interface Entry {
  name: string;
  path: string;
  ms: number;
  bytes: number;
}

async function bytesOf(path: string): Promise<number> {
  let st;
  try {
    st = await lstat(path);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.size;
  let n = 0;
  for (const name of await readdir(path).catch(() => [] as string[])) n += await bytesOf(join(path, name));
  return n;
}

async function entries(dir: string, msOf: (name: string) => number | undefined): Promise<Entry[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const out: Entry[] = [];
  for (const name of names) {
    const path = join(dir, name);
    const bytes = await bytesOf(path);
    const ms = msOf(name) ?? (await lstat(path).then((s) => s.mtimeMs, () => 0));
    out.push({ name, path, ms, bytes });
  }
  return out.sort((a, b) => b.ms - a.ms || (a.name < b.name ? 1 : -1)); // newest first
}

const tornMs = (name: string) => {
  const m = /\.(\d+)\.bin$/.exec(name);
  return m === null ? undefined : Number(m[1]);
};
const repairMs = (name: string) => {
  const m = /-(\d+)$/.exec(name);
  return m === null ? undefined : Number(m[1]);
};

/** Bytes of everything under torn/ and repair/. */
export async function sideFileBytes(dataDir: string): Promise<number> {
  return (await bytesOf(join(dataDir, TORN_DIR))) + (await bytesOf(join(dataDir, REPAIR_DIR)));
}

/** Applies the bounds above. Returns what was deleted. Deleting only frees space, so it is safe when full. */
export async function pruneSideFiles(dataDir: string, filesystemBytes: number | undefined, log: Logger): Promise<{ files: number; bytes: number }> {
  const removed = { files: 0, bytes: 0 };
  const drop = async (e: Entry, why: string) => {
    try {
      await rm(e.path, { recursive: true, force: true });
      removed.files++;
      removed.bytes += e.bytes;
      log.info({ path: e.path, bytes: e.bytes, why }, 'side file removed');
    } catch (err) {
      log.warn({ err, path: e.path }, 'could not remove a side file');
    }
  };
  const cap = tornCapBytes(filesystemBytes);
  let kept = 0;
  let total = 0;
  const torn = await entries(join(dataDir, TORN_DIR), tornMs);
  for (const e of torn) {
    if (kept === 0 || (kept < TORN_KEEP_FILES && total + e.bytes <= cap)) {
      kept++;
      total += e.bytes;
    } else await drop(e, `torn/ keeps the newest ${TORN_KEEP_FILES} files and at most ${cap} bytes`);
  }
  const repairs = await entries(join(dataDir, REPAIR_DIR), repairMs);
  for (const e of repairs.slice(REPAIR_KEEP)) await drop(e, `repair/ keeps the newest ${REPAIR_KEEP} repairs`);
  if (removed.files > 0) {
    for (const d of [TORN_DIR, REPAIR_DIR]) await fsyncDir(join(dataDir, d)).catch(() => undefined);
  }
  return removed;
}
