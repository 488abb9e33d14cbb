/**
 * `node src/cli.ts operator ...` as a child process, for the integration tests and
 * `npm run bench:operator`: its JSON log (stderr) goes to a file, its metrics URL is
 * read from the 'endpoints listening' line, and only this pid is ever signalled.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface ChildOperator {
  pid: number;
  child: ChildProcess;
  /** Resolves with the metrics URL once the operator logged 'endpoints listening'. */
  metricsUrl: Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL this process (and only it). */
  kill(signal?: NodeJS.Signals): void;
}

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

export interface SpawnOptions {
  /** Program and leading arguments, relative to the repository (default `src/cli.ts operator`; the bench runs `dist/bin/eventlog-operator.js`, what the image ships). */
  entry?: string[];
  /** Node flags before the program (e.g. `--heapsnapshot-signal=SIGUSR2`). */
  nodeArgs?: string[];
}

/** `node src/cli.ts operator ...` as a child; stderr (its JSON log) goes to `logFile`. */
export function spawnOperator(args: string[], logFile: string, env: NodeJS.ProcessEnv = process.env, opts: SpawnOptions = {}): ChildOperator {
  const entry = opts.entry ?? ['src/cli.ts', 'operator'];
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), ...entry, ...args], { cwd: repoRoot, env, stdio: ['ignore', 'ignore', 'pipe'] });
  if (child.pid === undefined) throw new Error('spawning the operator: no pid');
  const out = createWriteStream(logFile, { flags: 'a' });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const metricsUrl = new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      out.write(chunk);
      buf += chunk.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const rec = JSON.parse(line) as { msg?: string; metrics?: string };
          if (rec.msg === 'endpoints listening' && rec.metrics) resolve(rec.metrics);
        } catch {
          /* not JSON */
        }
      }
    });
    void exited.then((e) => reject(new Error(`the operator exited (${e.signal ?? e.code}) before listening; see ${logFile}`)));
  });
  metricsUrl.catch(() => undefined);
  const pid = child.pid;
  return {
    pid,
    child,
    metricsUrl,
    exited,
    kill: (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) process.kill(pid, signal);
    },
  };
}

