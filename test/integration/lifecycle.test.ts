/**
 * The control plane never outlives the process that started it: SIGTERM makes
 * that process stop it cleanly (and then die of the signal), and SIGKILL (no
 * chance to clean up) leaves the reaper to kill the components and remove the
 * temporary data dir. Either way: no process, port or directory left.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { ControlPlanePorts } from '../../dev/cluster/controlplane.ts';
import { isPortFree } from '../../dev/cluster/ports.ts';
import { waitFor } from './helpers.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/controlplane-child.ts', import.meta.url));

interface ChildReport {
  pids: number[];
  ports: ControlPlanePorts;
  dataDir: string;
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
};

let child: ChildProcess | undefined;
afterEach(() => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  child = undefined;
});

async function startChild(args: string[]): Promise<{ proc: ChildProcess; report: ChildReport; stderr: () => string }> {
  const proc = spawn(process.execPath, [FIXTURE, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  child = proc;
  let stderr = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr = (stderr + d).slice(-8_000); });
  const lines = createInterface({ input: proc.stdout! });
  const first = await Promise.race([
    once(lines, 'line').then(([l]) => l as string),
    once(proc, 'exit').then(([code, sig]) => { throw new Error(`fixture exited (${code ?? sig}) before reporting: ${stderr}`); }),
  ]);
  return { proc, report: JSON.parse(first) as ChildReport, stderr: () => stderr };
}

async function expectNothingLeft(report: ChildReport): Promise<void> {
  await waitFor(() => report.pids.every((p) => !isAlive(p)), {
    message: `control-plane pids ${report.pids.join(',')} to be gone after their parent`,
    timeoutMs: 30_000,
  });
  for (const [name, port] of Object.entries(report.ports)) {
    expect(await isPortFree(port), `${name} port ${port} still in use`).toBe(true);
  }
  await waitFor(() => !existsSync(report.dataDir), { message: `temporary data dir ${report.dataDir} to be removed`, timeoutMs: 5_000 });
}

describe('control plane lifetime is bound to its parent process', () => {
  it('SIGTERM to the parent stops the control plane, then the parent dies of SIGTERM', async () => {
    const { proc, report } = await startChild([]);
    expect(report.pids.every(isAlive)).toBe(true);
    const exited = once(proc, 'exit');
    proc.kill('SIGTERM');
    const [code, signal] = await exited;
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGTERM' });
    await expectNothingLeft(report);
  });

  it('SIGKILL of the parent: the reaper kills etcd, kube-apiserver and kube-controller-manager', async () => {
    const { proc, report } = await startChild(['--with-controller-manager']);
    expect(report.pids).toHaveLength(4);
    expect(report.pids.every(isAlive)).toBe(true);
    const exited = once(proc, 'exit');
    proc.kill('SIGKILL');
    await exited;
    await expectNothingLeft(report);
  });
});
