/**
 * Small real filesystems for full-volume tests: tmpfs mounts of a given size.
 *
 * Guarantees:
 * - Fails loudly (throws) when not running as root: these tests never skip.
 * - Mounts live under `<tmpdir>/eventlog-tmpfs-<pid>-*`. Every mount is recorded and
 *   unmounted in afterAll. At first use, leftovers of a crashed earlier run are reclaimed:
 *   only mounts under that prefix whose pid is no longer alive (so a parallel test file's
 *   live mounts are never touched).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

const PREFIX = 'eventlog-tmpfs-';
const mounted = new Set<string>();
let reclaimed = false;

export interface Tmpfs {
  dir: string;
  /** Changes the size limit in place (`mount -o remount,size=...`). */
  resize(bytes: number): void;
  /** Any other remount option, e.g. `nr_inodes=64`. */
  remount(options: string): void;
  unmount(): Promise<void>;
}

function mountPoints(): string[] {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .map((p) => p.replace(/\\040/g, ' '));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function umount(dir: string): void {
  for (let i = 0; ; i++) {
    try {
      execFileSync('umount', [dir], { stdio: 'pipe' });
      return;
    } catch (err) {
      // Busy for a moment after a killed server: retry, then detach lazily.
      if (i >= 20) {
        execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
        return;
      }
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
      void err;
    }
  }
}

async function reclaim(): Promise<void> {
  if (reclaimed) return;
  reclaimed = true;
  const base = tmpdir();
  const points = new Set(mountPoints());
  for (const name of await readdir(base).catch(() => [] as string[])) {
    const m = new RegExp(`^${PREFIX}(\\d+)-`).exec(name);
    if (m === null || alive(Number(m[1]))) continue;
    const dir = join(base, name);
    if (points.has(dir)) umount(dir);
    await rm(dir, { recursive: true, force: true });
  }
}

/** A tmpfs of `bytes`; `options` adds mount options (e.g. `nr_inodes=16`). */
export async function mountTmpfs(bytes: number, options = ''): Promise<Tmpfs> {
  if (process.getuid?.() !== 0) throw new Error('full-volume tests mount tmpfs and must run as root (uid 0); they never skip');
  await reclaim();
  const dir = await mkdtemp(join(tmpdir(), `${PREFIX}${process.pid}-`));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0755${options === '' ? '' : ',' + options}`, 'tmpfs', dir], { stdio: 'pipe' });
  mounted.add(dir);
  return {
    dir,
    resize(n) {
      execFileSync('mount', ['-o', `remount,size=${n}`, dir], { stdio: 'pipe' });
    },
    remount(opts) {
      execFileSync('mount', ['-o', `remount,${opts}`, dir], { stdio: 'pipe' });
    },
    async unmount() {
      if (!mounted.delete(dir)) return;
      umount(dir);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

afterAll(async () => {
  for (const dir of [...mounted]) {
    mounted.delete(dir);
    umount(dir);
    await rm(dir, { recursive: true, force: true });
  }
});

/** Writes a filler file until the file system refuses (ENOSPC). */
export async function fillFilesystem(path: string): Promise<void> {
  const fh = await open(path, 'a');
  const chunk = Buffer.alloc(4096, 0x66);
  try {
    for (;;) await fh.write(chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    await fh.close();
  }
}
