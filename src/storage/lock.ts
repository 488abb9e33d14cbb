/**
 * The data-dir lock: `LOCK` holds {pid, processStart, hostname}. It is created with
 * O_EXCL; an existing lock is honoured when its process is alive on this host (same pid
 * and same /proc start time, so a recycled pid does not count) and taken over otherwise
 * (a crashed or SIGKILLed server leaves a stale lock behind). Within one process a
 * module-level set refuses a second opener of the same directory.
 */
import { readFileSync } from 'node:fs';
import { open, readFile, realpath, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const LOCK_FILE = 'LOCK';
const heldInProcess = new Set<string>();

export class LockedError extends Error {
  readonly holder: LockInfo | undefined;
  constructor(message: string, holder: LockInfo | undefined) {
    super(message);
    this.name = 'LockedError';
    this.holder = holder;
  }
}

export interface LockInfo {
  pid: number;
  processStart: string | null;
  hostname: string;
  acquiredAt: string;
}

function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime), counted after the ")" that closes the command name.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19] ?? null;
  } catch {
    return null;
  }
}

function isAlive(info: LockInfo): boolean {
  if (info.hostname !== hostname()) return false;
  try {
    process.kill(info.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const start = processStart(info.pid);
  if (info.processStart !== null && start !== null && start !== info.processStart) return false;
  return true;
}

export interface DirLock {
  readonly path: string;
  release(): Promise<void>;
}

export async function acquireLock(dataDir: string): Promise<DirLock> {
  const real = await realpath(dataDir);
  if (heldInProcess.has(real)) {
    throw new LockedError(`data dir ${dataDir} is already open in this process (pid ${process.pid})`, undefined);
  }
  const path = join(real, LOCK_FILE);
  const info: LockInfo = {
    pid: process.pid,
    processStart: processStart(process.pid),
    hostname: hostname(),
    acquiredAt: new Date().toISOString(),
  };
  for (let attempt = 0; ; attempt++) {
    try {
      const fh = await open(path, 'wx');
      try {
        await fh.writeFile(JSON.stringify(info) + '\n');
        await fh.sync();
      } finally {
        await fh.close();
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 2) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new LockedError(`data dir ${dataDir} is locked (${path}) and the lock could not be taken over`, undefined);
        }
        throw new Error(`creating lock file ${path}: ${(err as Error).message}`, { cause: err });
      }
      let holder: LockInfo | undefined;
      try {
        holder = JSON.parse(await readFile(path, 'utf8')) as LockInfo;
      } catch {
        holder = undefined; // unreadable or half-written lock: stale
      }
      if (holder !== undefined && typeof holder.pid === 'number' && holder.pid !== process.pid && isAlive(holder)) {
        throw new LockedError(
          `data dir ${dataDir} is locked by pid ${holder.pid} on ${holder.hostname} since ${holder.acquiredAt} (${path})`,
          holder,
        );
      }
      await unlink(path).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
      });
    }
  }
  heldInProcess.add(real);
  let released = false;
  return {
    path,
    async release() {
      if (released) return;
      released = true;
      heldInProcess.delete(real);
      await unlink(path).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
      });
    },
  };
}
