/**
 * One control-plane component as a child process: spawned with its stdout and
 * stderr appended to a log file (the child writes the file directly, so a chatty
 * component costs the parent no CPU and the log outlives the parent), its pid
 * tracked, the tail of its log at hand for error messages, and `stop()` =
 * SIGTERM, a grace period, then SIGKILL, resolving once the process has exited.
 *
 * Components run in their own process group (`detached`), so a Ctrl-C in the
 * terminal reaches only the parent, which then stops them in order (controller
 * manager, API server, etcd) instead of all dying at once.
 *
 * If the parent dies without stopping them (SIGKILL, crash, a test runner that
 * exits early), the `Reaper` below kills them. Why a reaper process rather than
 * PR_SET_PDEATHSIG (`setpriv --pdeathsig`): pdeathsig fires when the *thread*
 * that forked the child exits (a worker thread would take the control plane
 * with it), it needs util-linux's setpriv, and it does not exist on macOS. The
 * reaper is event-driven instead of polling: it holds the read end of a pipe
 * whose only write end is in the parent (Node opens pipes close-on-exec, so no
 * other child inherits it). The kernel closes that write end when the parent
 * dies however it dies, the reaper sees EOF and stops every pid still
 * registered, newest first: SIGTERM, a grace period, SIGKILL; then deletes the temporary
 * directories registered with it. A normal stop() unregisters
 * each pid as its process exits and says "done" before closing the pipe.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { once } from 'node:events';
import type { Logger } from '../../src/common/logger.ts';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export function describeExit(e: ExitInfo): string {
  return e.signal ? `killed by ${e.signal}` : `exited with code ${e.code}`;
}

/** The last `maxLines` lines of a file (reads at most its last 16 KiB). */
export function tailFile(path: string, maxLines = 30): string {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const size = fstatSync(fd).size;
    const len = Math.min(size, 16 * 1024);
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, size - len);
    const lines = buf.toString('utf8').split('\n');
    if (size > len) lines.shift(); // partial first line
    while (lines.length > 0 && lines.at(-1) === '') lines.pop();
    return lines.slice(-maxLines).join('\n');
  } catch (err) {
    return `(cannot read ${path}: ${(err as Error).message})`;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export interface SpawnComponentOptions {
  /** Short name used in logs and errors: "etcd", "kube-apiserver", ... */
  name: string;
  command: string;
  args: readonly string[];
  /** stdout and stderr go here (truncated first). */
  logFile: string;
  env?: NodeJS.ProcessEnv;
  log: Logger;
  reaper?: Reaper;
}

export class ComponentProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves when the process has exited (and has been reaped). */
  readonly exited: Promise<ExitInfo>;
  #exit: ExitInfo | undefined;
  readonly #child: ChildProcess;
  readonly #log: Logger;
  #stopping: Promise<ExitInfo> | undefined;

  constructor(child: ChildProcess, opts: SpawnComponentOptions) {
    if (child.pid === undefined) throw new Error(`${opts.name}: spawned without a pid`);
    this.name = opts.name;
    this.pid = child.pid;
    this.logFile = opts.logFile;
    this.#child = child;
    this.#log = opts.log;
    const reaper = opts.reaper;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exit = { code, signal };
        reaper?.remove(this.pid);
        resolve(this.#exit);
      });
    });
  }

  get running(): boolean {
    return this.#exit === undefined;
  }

  get exitInfo(): ExitInfo | undefined {
    return this.#exit;
  }

  /** The last lines of the component's own output, for error messages. */
  tail(maxLines = 30): string {
    return tailFile(this.logFile, maxLines);
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. Idempotent. */
  stop(graceMs = 10_000): Promise<ExitInfo> {
    this.#stopping ??= (async () => {
      if (this.#exit) return this.#exit;
      const t0 = performance.now();
      this.#child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        this.exited.then(() => false),
        new Promise<boolean>((r) => { timer = setTimeout(() => r(true), graceMs); }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        this.#log.warn({ component: this.name, pid: this.pid, graceMs }, 'component ignored SIGTERM; sending SIGKILL');
        this.#child.kill('SIGKILL');
      }
      const exit = await this.exited;
      this.#log.debug({ component: this.name, pid: this.pid, ms: Math.round(performance.now() - t0), exit }, 'component stopped');
      return exit;
    })();
    return this.#stopping;
  }
}

/** Spawns a component; rejects (with the log tail) if the binary cannot be started at all. */
export async function spawnComponent(opts: SpawnComponentOptions): Promise<ComponentProcess> {
  const out = openSync(opts.logFile, 'w'); // a fresh log per start: the tail is about this run
  let child: ChildProcess;
  try {
    child = spawn(opts.command, opts.args, {
      stdio: ['ignore', out, out],
      env: opts.env ?? process.env,
      detached: true,
    });
  } finally {
    closeSync(out); // the child holds its own copy
  }
  try {
    await Promise.race([
      once(child, 'spawn'),
      once(child, 'error').then(([err]) => { throw err; }),
    ]);
  } catch (err) {
    throw new Error(`${opts.name}: cannot start ${opts.command}: ${(err as Error).message}`, { cause: err });
  }
  const proc = new ComponentProcess(child, opts);
  opts.reaper?.add(proc.pid);
  opts.log.debug({ component: opts.name, pid: proc.pid, logFile: opts.logFile }, 'component spawned');
  return proc;
}

// The reaper's program: plain JavaScript run with `node -e`, so it needs no file
// on disk (works the same from src/ and from dist/).
const REAPER_SOURCE = String.raw`
const fs = require('node:fs');
const grace = Number(process.argv[1]) || 5000;
const pids = new Set();
const dirs = new Set();
let done = false, buf = '';
const isGone = (pid) => {
  try { process.kill(pid, 0); } catch (e) { return e.code === 'ESRCH'; }
  try { return /^\d+ \(.*\) Z/s.test(fs.readFileSync('/proc/' + pid + '/stat', 'utf8')); } catch { return false; }
};
const signal = (pid, sig) => { try { process.kill(pid, sig); } catch {} };
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, i);
    const sp = line.indexOf(' ');
    const op = sp < 0 ? line : line.slice(0, sp), arg = sp < 0 ? '' : line.slice(sp + 1);
    buf = buf.slice(i + 1);
    if (op === 'add') pids.add(Number(arg));
    else if (op === 'del') pids.delete(Number(arg));
    else if (op === 'rmdir') dirs.add(JSON.parse(arg));
    else if (op === 'done') done = true;
  }
});
const finish = () => {
  for (const d of dirs) { try { fs.rmSync(d, { recursive: true, force: true }); } catch {} }
  process.exit(0);
};
// Stop in reverse registration order, one at a time (controller manager, API
// server, then etcd): stopped all at once, etcd waits for the API server's watch
// streams to end while the API server waits for etcd, and both sit out the grace.
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
process.stdin.on('end', async () => {
  if (done) process.exit(0);
  const order = [...pids].reverse();
  for (const pid of order) {
    signal(pid, 'SIGTERM');
    const deadline = Date.now() + grace;
    while (!isGone(pid) && Date.now() < deadline) await sleep(50);
    if (!isGone(pid)) { signal(pid, 'SIGKILL'); await sleep(200); }
  }
  finish();
});
`;

/** Kills registered pids when the parent process dies. See the module comment. */
export class Reaper {
  readonly pid: number;
  readonly #child: ChildProcess;
  readonly #exited: Promise<void>;
  #closed = false;

  private constructor(child: ChildProcess) {
    if (child.pid === undefined) throw new Error('reaper: spawned without a pid');
    this.pid = child.pid;
    this.#child = child;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  static async start(graceMs = 5_000): Promise<Reaper> {
    const child = spawn(process.execPath, ['-e', REAPER_SOURCE, String(graceMs)], {
      stdio: ['pipe', 'ignore', 'ignore'],
      detached: true, // its own session: a terminal's Ctrl-C or hang-up does not reach it
    });
    try {
      await Promise.race([
        once(child, 'spawn'),
        once(child, 'error').then(([err]) => { throw err; }),
      ]);
    } catch (err) {
      throw new Error(`cannot start the reaper (${process.execPath}): ${(err as Error).message}`, { cause: err });
    }
    // Neither the reaper nor its pipe keeps the parent's event loop alive.
    child.unref();
    (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    child.stdin?.on('error', () => { /* the reaper is gone; nothing left to protect */ });
    return new Reaper(child);
  }

  add(pid: number): void {
    if (!this.#closed) this.#child.stdin?.write(`add ${pid}\n`);
  }

  remove(pid: number): void {
    if (!this.#closed) this.#child.stdin?.write(`del ${pid}\n`);
  }

  /** A (temporary) directory to delete after reaping, once the processes using it are gone. */
  removeDirOnReap(dir: string): void {
    if (!this.#closed) this.#child.stdin?.write(`rmdir ${JSON.stringify(dir)}\n`);
  }

  /** Tells the reaper everything was stopped normally, and waits for it to exit. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#child.ref(); // keep the loop alive until the reaper has gone
      this.#child.stdin?.end('done\n');
    }
    await this.#exited;
  }
}
