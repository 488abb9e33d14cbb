/**
 * The container runtime for one container of one pod: a local process.
 *
 * Start: map image + command to a program, expand args/env, rewrite in-container
 * paths to host paths, spawn in its own process group with stdout/stderr going
 * to a per-container log file. Exit: record `terminated` (exit code, reason,
 * termination-message file), then restart per restartPolicy with the kubelet's
 * crash-loop back-off. Probes gate `started`/`ready`; a failed liveness probe
 * kills the process (and the restart policy applies). Stop: SIGTERM to the
 * process group, the grace period, then SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { constants as osConstants } from 'node:os';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import type { Logger } from '../../src/common/logger.ts';
import { formatDuration, nextCrashCount, restartDelayMs, type BackoffPolicy } from './backoff.ts';
import { defaultTerminationMessagePath, expandCommand, mapPath, type PathMapping } from './container-spec.ts';
import type { EventRecorder } from './events.ts';
import { mapCommand, type ProgramPaths } from './images.ts';
import { containerDir, containerLogFile, pidFile, type AgentPaths } from './paths.ts';
import type { ContainerRuntimeState, Terminated } from './pod-status.ts';
import { ProbeWorker } from './probes.ts';

const maxTerminationMessageBytes = 4096;
const fallbackLogBytes = 2048;
const fallbackLogLines = 80;

export interface ContainerDeps {
  paths: AgentPaths;
  programs: ProgramPaths;
  backoff: BackoffPolicy;
  events: EventRecorder;
  log: Logger;
  /** Called whenever the container's observable state changes. */
  onChange: () => void;
  /** Processes the agent started, by pid (so `stop()` and exit hooks can find them). */
  registry: Map<number, ChildProcess>;
}

export interface ContainerLaunch {
  pod: V1Pod;
  container: V1Container;
  podIP: string;
  /** Container env, already resolved (downward API, secrets, `$(VAR)`), before path mapping. */
  env: Record<string, string>;
  /** Volume mounts as host paths. */
  mounts: PathMapping[];
  /** Restart policy for this container (init containers: OnFailure unless the pod says Never). Default: the pod's. */
  restartPolicy?: string;
}

/** Exit code for a process killed by `signal`, as container runtimes report it (128 + signo). */
export function exitCodeFor(code: number | null, signal: NodeJS.Signals | null): { exitCode: number; signal?: number } {
  if (code !== null) return { exitCode: code };
  const signo = signal ? (osConstants.signals as Record<string, number>)[signal] ?? 0 : 0;
  return { exitCode: 128 + signo, signal: signo };
}

/** The termination message: the file's contents, or (FallbackToLogsOnError, failed, empty file) the log tail. */
export function terminationMessage(fileContents: string, logTail: string, policy: string | undefined, exitCode: number): string | undefined {
  const fromFile = fileContents.slice(0, maxTerminationMessageBytes);
  if (fromFile.trim().length > 0) return fromFile;
  if (policy === 'FallbackToLogsOnError' && exitCode !== 0) {
    const lines = logTail.split('\n');
    const tail = lines.slice(-fallbackLogLines - 1).join('\n');
    return tail.length > fallbackLogBytes ? tail.slice(tail.length - fallbackLogBytes) : tail || undefined;
  }
  return undefined;
}

async function readTail(file: string, bytes: number): Promise<string> {
  try {
    const fh = await open(file, 'r');
    try {
      const { size } = await fh.stat();
      const start = Math.max(0, size - bytes);
      const buf = Buffer.alloc(size - start);
      await fh.read(buf, 0, buf.length, start);
      return buf.toString('utf8');
    } finally {
      await fh.close();
    }
  } catch {
    return '';
  }
}

export class ContainerRunner {
  readonly name: string;
  readonly state: ContainerRuntimeState;
  readonly #deps: ContainerDeps;
  readonly #launch: ContainerLaunch;
  readonly #log: Logger;
  #child: ChildProcess | undefined;
  #exited: Promise<void> | undefined;
  #crashes = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  #probes: ProbeWorker[] = [];
  #stopping = false;
  #startedAt = 0;
  #terminationFile: string;
  #logFile = '';

  constructor(launch: ContainerLaunch, deps: ContainerDeps, initial: { restartCount: number; lastTerminated?: Terminated }) {
    this.#launch = launch;
    this.#deps = deps;
    this.name = launch.container.name;
    const pod = launch.pod;
    this.#log = deps.log.child({ pod: `${pod.metadata?.namespace}/${pod.metadata?.name}`, container: this.name });
    this.#terminationFile = join(containerDir(deps.paths, pod.metadata?.uid ?? '', this.name), 'termination-log');
    this.state = {
      name: this.name,
      image: launch.container.image ?? '',
      state: { kind: 'waiting', reason: 'ContainerCreating' },
      restartCount: initial.restartCount,
      started: false,
      ready: false,
    };
    if (initial.lastTerminated) this.state.lastTerminated = initial.lastTerminated;
  }

  /** The running process's pid, if any. */
  get pid(): number | undefined {
    return this.state.state.kind === 'running' ? this.#child?.pid : undefined;
  }

  /** No process and none will be started again (restart policy said so, or stopped). */
  get finished(): boolean {
    return this.#child === undefined && this.#restartTimer === undefined && (this.state.state.kind === 'terminated' || this.#stopping);
  }

  get #podRef(): string {
    const m = this.#launch.pod.metadata;
    return `${m?.name}_${m?.namespace}(${m?.uid})`;
  }

  #fieldPath(): string {
    return `spec.containers{${this.name}}`;
  }

  #set(state: ContainerRuntimeState['state']): void {
    this.state.state = state;
    this.#deps.onChange();
    if (this.finished) for (const w of this.#finishedWaiters.splice(0)) w();
  }

  readonly #finishedWaiters: (() => void)[] = [];

  /** Resolves once the container has exited for good (restart policy said no more, or stopped). */
  whenFinished(): Promise<void> {
    if (this.finished) return Promise.resolve();
    return new Promise((resolve) => this.#finishedWaiters.push(resolve));
  }

  /** Start the first process (or fail into a waiting state that explains why). */
  async start(): Promise<void> {
    await this.#spawn();
  }

  async #spawn(): Promise<void> {
    if (this.#stopping) return;
    const { pod, container, podIP } = this.#launch;
    const uid = pod.metadata?.uid ?? '';
    const tmPath = container.terminationMessagePath || defaultTerminationMessagePath;
    const mappings: PathMapping[] = [...this.#launch.mounts, { containerPath: tmPath, hostPath: this.#terminationFile }];
    const { command, args } = expandCommand(container, this.#launch.env);
    const mapped = mapCommand(command?.map((c) => mapPath(c, mappings)), args?.map((a) => mapPath(a, mappings)), this.#deps.programs);
    if (!mapped.ok) {
      this.#set({ kind: 'waiting', reason: mapped.reason, message: mapped.message });
      this.#deps.events.pod(pod, 'Warning', 'Failed', `Error: ${mapped.message}`, this.#fieldPath());
      return;
    }
    // The image's programs default their termination-message file to /dev/termination-log;
    // point that default at this container's host file (the container's own env still wins).
    const env: Record<string, string> = { EVENTLOG_TERMINATION_MESSAGE_PATH: this.#terminationFile };
    for (const [k, v] of Object.entries(this.#launch.env)) env[k] = mapPath(v, mappings);

    const cdir = containerDir(this.#deps.paths, uid, this.name);
    const cwd = container.workingDir ? mapPath(container.workingDir, mappings) : cdir;
    this.#logFile = containerLogFile(this.#deps.paths, pod.metadata?.namespace ?? '', pod.metadata?.name ?? '', uid, this.name, this.state.restartCount);
    await mkdir(cdir, { recursive: true });
    await mkdir(dirname(this.#logFile), { recursive: true });
    if (cwd !== cdir) await mkdir(cwd, { recursive: true }).catch(() => undefined);
    await writeFile(this.#terminationFile, '');
    // Keep the current and the previous log (kubectl logs / logs --previous), like the kubelet.
    if (this.state.restartCount >= 2) {
      await rm(containerLogFile(this.#deps.paths, pod.metadata?.namespace ?? '', pod.metadata?.name ?? '', uid, this.name, this.state.restartCount - 2), { force: true });
    }
    if (this.#stopping) return;

    const fd = openSync(this.#logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(mapped.file, mapped.args, { cwd, env, stdio: ['ignore', fd, fd], detached: true });
    } finally {
      closeSync(fd);
    }
    this.#child = child;
    this.#startedAt = Date.now();
    this.#exited = new Promise<void>((resolve) => {
      let settled = false;
      const finish = (code: number | null, signal: NodeJS.Signals | null, spawnError?: Error): void => {
        if (settled) return;
        settled = true;
        void this.#onExit(child, code, signal, spawnError)
          .catch((err: unknown) => this.#spawnFailed(err))
          .finally(resolve);
      };
      child.once('error', (err) => finish(null, null, err));
      child.once('exit', (code, signal) => finish(code, signal));
    });
    const pid = child.pid;
    if (pid === undefined) return; // 'error' follows
    this.#deps.registry.set(pid, child);
    await writeFile(pidFile(this.#deps.paths, uid, this.name), `${pid}\n`).catch(() => undefined);
    this.#log.info({ pid, file: mapped.file, args: mapped.args, restartCount: this.state.restartCount }, 'container started');
    this.state.started = !container.startupProbe;
    this.state.ready = false;
    this.#set({ kind: 'running', startedAt: this.#startedAt, containerID: `process://${pid}` });
    this.#deps.events.pod(pod, 'Normal', 'Started', `Started container ${this.name} (pid ${pid})`, this.#fieldPath());
    this.#startProbes(podIP);
  }

  #startProbes(podIP: string): void {
    const { container } = this.#launch;
    const ports = container.ports ?? [];
    const readinessOrLiveness = (): void => {
      if (container.readinessProbe) {
        const w = new ProbeWorker('readiness', container.readinessProbe, podIP, ports, (ok, last) => {
          if (this.state.ready !== ok) {
            this.state.ready = ok;
            this.#deps.onChange();
          }
          if (!ok && last.message) this.#log.debug({ message: last.message }, 'readiness probe failed');
        });
        this.#probes.push(w);
        w.start();
      } else if (!this.state.ready) {
        this.state.ready = true;
        this.#deps.onChange();
      }
      if (container.livenessProbe) {
        const w = new ProbeWorker('liveness', container.livenessProbe, podIP, ports, (ok, last) => {
          if (!ok) {
            const msg = `Liveness probe failed: ${last.message ?? ''}`;
            this.#deps.events.pod(this.#launch.pod, 'Warning', 'Unhealthy', msg, this.#fieldPath());
            this.#deps.events.pod(this.#launch.pod, 'Normal', 'Killing', `Container ${this.name} failed liveness probe, will be restarted`, this.#fieldPath());
            this.#log.warn({ message: last.message }, 'liveness probe failed; killing container');
            void this.#kill(this.#graceMs(container.livenessProbe?.terminationGracePeriodSeconds));
          }
        });
        this.#probes.push(w);
        w.start();
      }
    };
    if (container.startupProbe) {
      const w = new ProbeWorker('startup', container.startupProbe, podIP, ports, (ok, last) => {
        if (ok && !this.state.started) {
          w.stop();
          this.state.started = true;
          this.#deps.onChange();
          readinessOrLiveness();
        } else if (!ok && w.tracker.failures >= w.tracker.failureThreshold) {
          // kubelet: a startup probe that keeps failing past its threshold kills the container
          this.#log.warn({ message: last.message }, 'startup probe failed; killing container');
          void this.#kill(this.#graceMs(container.startupProbe?.terminationGracePeriodSeconds));
        }
      });
      this.#probes.push(w);
      w.start();
    } else {
      readinessOrLiveness();
    }
  }

  #stopProbes(): void {
    for (const p of this.#probes) p.stop();
    this.#probes = [];
  }

  #graceMs(override?: number): number {
    const s = override ?? this.#launch.pod.spec?.terminationGracePeriodSeconds ?? 30;
    return Math.max(0, s) * 1000;
  }

  async #onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null, spawnError?: Error): Promise<void> {
    const finishedAt = Date.now();
    if (child.pid !== undefined) this.#deps.registry.delete(child.pid);
    this.#stopProbes();
    const uid = this.#launch.pod.metadata?.uid ?? '';
    await rm(pidFile(this.#deps.paths, uid, this.name), { force: true });
    const { exitCode, signal: signo } = spawnError ? { exitCode: 128, signal: undefined } : exitCodeFor(code, signal);
    const fileText = await readFile(this.#terminationFile, 'utf8').catch(() => '');
    const tail = await readTail(this.#logFile, 16 * 1024);
    const message = spawnError
      ? `failed to start process: ${spawnError.message}`
      : terminationMessage(fileText, tail, this.#launch.container.terminationMessagePolicy, exitCode);
    const t: Terminated = {
      exitCode,
      reason: spawnError ? 'StartError' : exitCode === 0 ? 'Completed' : 'Error',
      startedAt: this.#startedAt || finishedAt,
      finishedAt,
      containerID: child.pid !== undefined ? `process://${child.pid}` : '',
    };
    if (signo !== undefined) t.signal = signo;
    if (message) t.message = message;
    if (!t.containerID) delete t.containerID;
    this.#child = undefined;
    this.state.ready = false;
    this.state.started = false;
    this.#log.info({ pid: child.pid, exitCode, signal, stopping: this.#stopping, lastLog: tail.slice(-500) }, 'container exited');

    if (this.#stopping) {
      this.#set({ kind: 'terminated', ...t });
      return;
    }
    const policy = this.#launch.restartPolicy ?? this.#launch.pod.spec?.restartPolicy ?? 'Always';
    const restart = policy === 'Always' || (policy === 'OnFailure' && exitCode !== 0);
    if (!restart) {
      this.#set({ kind: 'terminated', ...t });
      return;
    }
    this.state.lastTerminated = t;
    this.#crashes = nextCrashCount(this.#crashes, finishedAt - t.startedAt, this.#deps.backoff);
    const delay = restartDelayMs(this.#crashes, this.#deps.backoff);
    if (delay === 0) {
      this.state.restartCount++;
      this.#set({ kind: 'waiting', reason: 'ContainerCreating' });
      await this.#spawn().catch((err: unknown) => this.#spawnFailed(err));
      return;
    }
    const message2 = `back-off ${formatDuration(delay)} restarting failed container=${this.name} pod=${this.#podRef}`;
    this.#deps.events.pod(this.#launch.pod, 'Warning', 'BackOff', `Back-off restarting failed container ${this.name} in pod ${this.#podRef}`, this.#fieldPath());
    this.#log.info({ delayMs: delay, crashes: this.#crashes }, 'crash loop back-off');
    this.#set({ kind: 'waiting', reason: 'CrashLoopBackOff', message: message2 });
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#stopping) return;
      this.state.restartCount++;
      void this.#spawn().catch((err: unknown) => this.#spawnFailed(err));
    }, delay);
  }

  #spawnFailed(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.#log.error({ err: message }, 'could not start container');
    this.#set({ kind: 'waiting', reason: 'StartError', message: `failed to start container: ${message}` });
  }

  async #kill(graceMs: number): Promise<void> {
    const child = this.#child;
    const exited = this.#exited;
    if (!child || child.pid === undefined || !exited) return;
    const pid = child.pid;
    const signalGroup = (sig: NodeJS.Signals): void => {
      try {
        process.kill(-pid, sig);
      } catch {
        try {
          process.kill(pid, sig);
        } catch {
          /* already gone */
        }
      }
    };
    signalGroup('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.#log.warn({ pid, graceMs }, 'container did not stop within its grace period; sending SIGKILL');
        signalGroup('SIGKILL');
        resolve();
      }, graceMs);
    });
    await Promise.race([exited, killed]);
    clearTimeout(timer);
    await exited;
  }

  /** Stop for good: no more restarts; SIGTERM, wait up to `graceMs`, SIGKILL. */
  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    this.#stopProbes();
    if (this.#restartTimer) {
      clearTimeout(this.#restartTimer);
      this.#restartTimer = undefined;
    }
    if (this.#child) {
      this.#deps.events.pod(this.#launch.pod, 'Normal', 'Killing', `Stopping container ${this.name}`, this.#fieldPath());
      await this.#kill(graceMs);
    } else if (this.#exited) {
      await this.#exited;
    }
    for (const w of this.#finishedWaiters.splice(0)) w();
  }
}

/** A container whose image this node does not run: it waits forever with a clear reason. */
export function foreignContainerState(container: V1Container, message: string, restartCount = 0): ContainerRuntimeState {
  return {
    name: container.name,
    image: container.image ?? '',
    state: { kind: 'waiting', reason: 'ErrImageNeverPull', message },
    restartCount,
    started: false,
    ready: false,
  };
}
