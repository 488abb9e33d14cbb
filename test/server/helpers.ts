import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll } from 'vitest';
import { freePort } from '../../dev/cluster/ports.ts';

export { freePort };

export const BIN = resolve(import.meta.dirname, '../../src/bin/eventlog-server.ts');

const children = new Set<ChildProcess>();
const dirs: string[] = [];

async function cleanup(): Promise<void> {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) {
      const done = new Promise((r) => c.once('exit', r));
      process.kill(c.pid, 'SIGKILL');
      await done;
    }
  }
  children.clear();
}

afterAll(async () => {
  await cleanup();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

export async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'eventlog-server-'));
  dirs.push(d);
  return d;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the bin to completion (sub-commands, bad flags). */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', rej);
    child.once('close', (code, signal) => {
      children.delete(child);
      res({ code, signal, stdout, stderr });
    });
  });
}

export interface Server {
  child: ChildProcess;
  pid: number;
  url: string;
  port: number;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts a server on 127.0.0.1 and a free port (or `opts.port`: a restart on the same address); resolves once /healthz answers. */
export async function startServer(dataDir: string, extra: string[] = [], env: Record<string, string> = {}, opts: { port?: number } = {}): Promise<Server> {
  for (let attempt = 0; ; attempt++) {
    const port = opts.port ?? (await freePort());
    const args = [BIN, '--data-dir', dataDir, '--host', '127.0.0.1', '--port', String(port), '--termination-message-path', join(dataDir, '..', `termination-${port}.log`), ...extra];
    const child = spawn(process.execPath, args, { env: { ...process.env, LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    children.add(child);
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
      child.once('exit', (code, signal) => {
        r({ code, signal });
      }),
    );
    let gone = false;
    void exited.then(() => (gone = true));
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 20_000;
    let up = false;
    while (!gone && Date.now() < deadline) {
      try {
        const r = await fetch(`${url}/healthz`);
        if (r.status === 200) {
          up = true;
          break;
        }
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    if (up) {
      return {
        child,
        pid: child.pid!,
        url,
        port,
        stderr: () => err,
        exited,
        async kill(signal) {
          if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, signal);
          return exited;
        },
      };
    }
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
    await exited;
    children.delete(child);
    if (attempt < 3 && err.includes('EADDRINUSE') && opts.port === undefined) continue;
    throw new Error(`server did not start (args ${args.join(' ')}): ${err}`);
  }
}

export async function waitState(url: string, states: string[], headers: Record<string, string> = {}): Promise<Record<string, any>> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await fetch(`${url}/status`, { headers });
    const body = (await r.json()) as Record<string, any>;
    if (states.includes(body.state)) return body;
    if (Date.now() > deadline) throw new Error(`state stayed ${body.state}, wanted ${states.join('|')}`);
    await new Promise((res) => setTimeout(res, 25));
  }
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}/events`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

/** Every event via GET /events?after=..., as raw NDJSON lines. */
export async function readAllLines(url: string, headers: Record<string, string> = {}): Promise<string[]> {
  const out: string[] = [];
  for (;;) {
    const r = await fetch(`${url}/events?after=${out.length}&limit=5000`, { headers });
    if (r.status !== 200) throw new Error(`GET /events: ${r.status} ${await r.text()}`);
    const text = await r.text();
    const lines = text.split('\n').filter((l) => l !== '');
    if (lines.length === 0) return out;
    out.push(...lines);
  }
}

/** Reads /metrics and returns the value of one sample (`name{labels}` exactly as printed), or undefined. */
export async function metric(url: string, sample: string, headers: Record<string, string> = {}): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`, { headers })).text();
  for (const line of text.split('\n')) {
    if (line.startsWith(sample + ' ')) return Number(line.slice(sample.length + 1));
  }
  return undefined;
}

/** Polls `cond` every 20 ms until it holds; throws after `ms`. */
export async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Resident set size of a process, bytes (/proc). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}
