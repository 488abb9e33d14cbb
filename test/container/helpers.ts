/**
 * Helpers for the container tier: testcontainers starts containers of the project
 * image; the docker CLI does what testcontainers does not expose (SIGKILL with
 * `docker kill`, a graceful `docker stop`, exit codes, stdout and stderr apart).
 *
 * Ryuk (testcontainers' reaper) is disabled (its image cannot be pulled here), so
 * every container started through these helpers is tracked and removed in
 * afterAll, by id. Containers carry the label dev.eventlog.test=container.
 */
import { execFile } from 'node:child_process';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GenericContainer, StartupCheckStrategy, Wait, type StartedTestContainer, type StartupStatus } from 'testcontainers';
import { afterAll, inject } from 'vitest';
import { freePort } from '../../dev/cluster/ports.ts';

export { freePort };

/** The image's numeric user (Dockerfile `USER`). */
export const IMAGE_UID = 65532;

export const image = (): string => inject('image');

const containers = new Set<string>();
const dirs: string[] = [];

afterAll(async () => {
  const ids = [...containers];
  containers.clear();
  if (ids.length > 0) await docker(['rm', '-f', '-v', ...ids]);
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the docker CLI to completion; never throws for a non-zero exit. */
export function docker(args: string[], timeoutMs = 120_000): Promise<Run> {
  return new Promise((res, rej) => {
    execFile('docker', args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return rej(new Error(`docker ${args.join(' ')}: ${err.message}`));
      res({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

/** `docker inspect` of one container's State. */
export async function containerState(id: string): Promise<{ Status: string; Running: boolean; ExitCode: number; OOMKilled: boolean }> {
  const r = await docker(['inspect', '-f', '{{json .State}}', id]);
  if (r.code !== 0) throw new Error(`docker inspect ${id}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout);
}

/** Stdout and stderr of a container, apart (`docker logs` keeps the streams). */
export async function containerLogs(id: string): Promise<{ stdout: string; stderr: string }> {
  const r = await docker(['logs', id]);
  if (r.code !== 0) throw new Error(`docker logs ${id}: ${r.stderr.trim()}`);
  return { stdout: r.stdout, stderr: r.stderr };
}

/** A host directory the image's user can write, removed after the file. */
export async function dataDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'eventlog-container-'));
  dirs.push(d);
  await chown(d, IMAGE_UID, IMAGE_UID);
  return d;
}


/** Ready when the container has stopped, whatever its exit code (the test checks it). */
class ExitedStrategy extends StartupCheckStrategy {
  override async checkStartupState(...[client, id]: Parameters<StartupCheckStrategy['checkStartupState']>): Promise<StartupStatus> {
    const info = await client.getContainer(id).inspect();
    return info.State.Running || info.State.Paused || !info.State.FinishedAt || info.State.FinishedAt.startsWith('0001-') ? 'PENDING' : 'SUCCESS';
  }
}

export interface ContainerOptions {
  entrypoint?: string[];
  command?: string[];
  /** host path -> container path */
  binds?: Array<{ source: string; target: string; mode?: 'ro' | 'rw' }>;
  /** `host` (reach a server on 127.0.0.1) or `none` (loopback of its own). Default none. */
  network?: 'host' | 'none';
  /** Log line (regexp on the JSON log) that means "started". */
  waitForLog?: RegExp;
}

function container(opts: ContainerOptions): GenericContainer {
  let c = new GenericContainer(image())
    .withNetworkMode(opts.network ?? 'none')
    .withLabels({ 'dev.eventlog.test': 'container' })
    .withStartupTimeout(120_000);
  if (opts.entrypoint) c = c.withEntrypoint(opts.entrypoint);
  if (opts.command) c = c.withCommand(opts.command);
  if (opts.binds) c = c.withBindMounts(opts.binds.map((b) => ({ source: b.source, target: b.target, mode: b.mode ?? 'rw' })));
  return c;
}

/** Starts a long-running container of the image; tracked for cleanup. */
export async function start(opts: ContainerOptions): Promise<StartedTestContainer> {
  const c = container(opts);
  const started = await (opts.waitForLog ? c.withWaitStrategy(Wait.forLogMessage(opts.waitForLog)) : c).start();
  containers.add(started.getId());
  return started;
}

/** Runs the image to completion: exit code, stdout, stderr. */
export async function runOnce(opts: ContainerOptions): Promise<Run> {
  const started = await container(opts).withWaitStrategy(new ExitedStrategy()).start();
  const id = started.getId();
  containers.add(id);
  const [state, logs] = await Promise.all([containerState(id), containerLogs(id)]);
  return { code: state.ExitCode, ...logs };
}

/**
 * `docker stop` (SIGTERM, then SIGKILL after `graceSeconds`) and the exit code. 137
 * means the process ignored SIGTERM and was killed; 0 means it shut down by itself.
 */
export async function dockerStop(id: string, graceSeconds = 10): Promise<number> {
  const r = await docker(['stop', '-t', String(graceSeconds), id]);
  if (r.code !== 0) throw new Error(`docker stop ${id}: ${r.stderr.trim()}`);
  return (await containerState(id)).ExitCode;
}

/** `docker kill` (SIGKILL): no shutdown code runs. */
export async function dockerKill(id: string): Promise<void> {
  const r = await docker(['kill', '--signal', 'KILL', id]);
  if (r.code !== 0) throw new Error(`docker kill ${id}: ${r.stderr.trim()}`);
}

/** Polls `probe` until it returns a value, or fails after the (generous) deadline. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
}
