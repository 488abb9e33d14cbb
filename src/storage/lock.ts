/**
 * The data-dir lock: `LOCK` holds {pid, processStart, hostname}. It is created with
 * O_EXCL; an existing lock is honoured when its process is alive on this host (same pid
 * and same /proc start time, so a recycled pid does not count) and taken over otherwise
 * (a crashed or SIGKILLed server leaves a stale lock behind). Within one process a
 * module-level set refuses a second opener of the same directory.
 *
 * On a full volume writing the JSON needs a data block that is not there. The lock is
 * then taken as a symlink instead, `LOCK -> lock:<pid>:<processStart>:<host hash>`,
 * created just as exclusively (symlink(2) fails with EEXIST) and needing no data block
 * (a short symlink target lives in the inode on ext4, xfs and tmpfs). Both forms are
 * read and honoured by every server; release removes either.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { lstat, open, readFile, readlink, realpath, symlink, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { isNoSpace } from './space.ts';

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

function hostHash(name: string): string {
  return createHash('sha256').update(name).digest('hex').slice(0, 8);
}

function compactLock(info: LockInfo): string {
  return `lock:${info.pid}:${info.processStart ?? ''}:${hostHash(info.hostname)}`;
}

/** The holder recorded in an existing LOCK (either form); undefined when unreadable (stale). */
async function readHolder(path: string): Promise<LockInfo | undefined> {
  try {
    const st = await lstat(path);
    if (st.isSymbolicLink()) {
      const m = /^lock:(\d+):(\d*):([0-9a-f]{8})$/.exec(await readlink(path));
      if (m === null) return undefined;
      const host = m[3] === hostHash(hostname()) ? hostname() : `(host ${m[3]})`;
      return { pid: Number(m[1]), processStart: m[2] === '' ? null : m[2]!, hostname: host, acquiredAt: st.mtime.toISOString() };
    }
    return JSON.parse(await readFile(path, 'utf8')) as LockInfo;
  } catch {
    return undefined; // unreadable or half-written lock: stale
  }
}

/** O_EXCL create with the JSON; on ENOSPC the symlink form. Throws EEXIST when held. */
async function createLock(path: string, info: LockInfo): Promise<void> {
  let fh;
  try {
    fh = await open(path, 'wx');
  } catch (err) {
    if (!isNoSpace(err)) throw err;
    return symlink(compactLock(info), path);
  }
  try {
    await fh.writeFile(JSON.stringify(info) + '\n');
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    if (!isNoSpace(err)) throw err;
    // Our own empty file: replace it by the form that needs no data block.
    await unlink(path);
    return symlink(compactLock(info), path);
  }
  await fh.close();
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
      await createLock(path, info);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 2) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new LockedError(`data dir ${dataDir} is locked (${path}) and the lock could not be taken over`, undefined);
        }
        throw new Error(`creating lock file ${path}: ${(err as Error).message}`, { cause: err });
      }
      const holder = await readHolder(path);
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
