/**
 * A host-wide record of the loop devices this module attached: one small JSON file
 * per device (`<dir>/loop3.json`: image, mount point, owner pid + start time), so a
 * later run can tell a crashed run's leftovers (owner gone) from another live
 * process's volumes (owner alive), even when the crashed run's data dir lives
 * somewhere else (a test's temp dir).
 *
 * Guarantees:
 * - Records are written atomically (temp file + rename); a record is only trusted
 *   when the device's current backing file is the recorded image (a stale record
 *   for a device reused by someone else is ignored and removed by reclaim).
 * - Owner liveness compares the pid's start time, so a recycled pid is not "alive".
 *
 * Caveats: the directory (default /run/eventlog-volumes) is shared by every user of
 * this module on the host; a device attached by a run that crashed before writing
 * its record is found by the naming rules of plan.ts instead.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseStartTime, type AttachRecord } from './plan.ts';

export const DEFAULT_REGISTRY_DIR = '/run/eventlog-volumes';

const fileOf = (dir: string, device: string): string => join(dir, `${basename(device)}.json`);

export function startTimeOf(pid: number): string | undefined {
  try {
    return parseStartTime(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

const selfStart = startTimeOf(process.pid) ?? '';

export function selfRecord(device: string, image: string, mountPoint: string): AttachRecord {
  return { device, image, mountPoint, ownerPid: process.pid, ownerStart: selfStart };
}

export function ownerAlive(r: AttachRecord): boolean {
  const start = startTimeOf(r.ownerPid);
  return start !== undefined && start === r.ownerStart;
}

export async function writeRecord(dir: string, r: AttachRecord): Promise<void> {
  await mkdir(dir, { recursive: true });
  const file = fileOf(dir, r.device);
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(r)}\n`);
  await rename(tmp, file);
}

export async function removeRecord(dir: string, device: string): Promise<void> {
  await rm(fileOf(dir, device), { force: true });
}

export async function readRecords(dir: string): Promise<Map<string, AttachRecord>> {
  const out = new Map<string, AttachRecord>();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return out;
  }
  for (const n of names) {
    if (!n.endsWith('.json')) continue;
    try {
      const r = JSON.parse(await readFile(join(dir, n), 'utf8')) as AttachRecord;
      if (typeof r.device === 'string' && typeof r.image === 'string' && typeof r.ownerPid === 'number') out.set(r.device, r);
    } catch {
      /* half-written or foreign: ignored */
    }
  }
  return out;
}
