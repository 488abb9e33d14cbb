/**
 * `kubectl eventlog` (src/bin/kubectl-eventlog.ts) as a user runs it: a child process
 * with the cluster's kubeconfig, against an EventLog the in-process operator keeps on
 * the shared control plane. Its output is checked as text.
 *
 * The node agent's pods live on loopback addresses, which the API server refuses to
 * proxy to, so `--via auto` talks to them directly here (log-access.ts); `--via proxy`
 * is shown to fail with the API server's own one-line reason.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { KubeHttp } from '../../src/runtime/kube-http.ts';
import { ensureEventLogCrd, freshNamespace, kubeConfigFromInject, waitFor, type FreshNamespace } from './helpers.ts';
import { EventLogApi, startInProcessOperator, type InProcessOperator } from './operator-helpers.ts';

const PLUGIN = join(import.meta.dirname, '..', '..', 'src', 'bin', 'kubectl-eventlog.ts');

let ns: FreshNamespace;
let api: EventLogApi;
let operator: InProcessOperator | undefined;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the plugin; `untilStdout` ends a following run (SIGTERM) once its output matches. */
function plugin(args: string[], opts: { stdin?: string; untilStdout?: RegExp; during?: () => Promise<void>; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PLUGIN, ...args], { env: { ...process.env, KUBECONFIG: inject('kubeconfigPath'), NO_COLOR: '1' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`kubectl eventlog ${args.join(' ')} did not finish: ${stderr}`));
    }, opts.timeoutMs ?? 60_000);
    child.stdout.on('data', (c) => {
      stdout += String(c);
      if (opts.untilStdout?.test(stdout)) child.kill('SIGTERM');
    });
    child.stderr.on('data', (c) => (stderr += String(c)));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.stdin ?? '');
    if (opts.during) opts.during().catch(reject);
  });
}

beforeAll(async () => {
  const kc = kubeConfigFromInject();
  await ensureEventLogCrd(kc);
  ns = await freshNamespace('plugin');
  api = new EventLogApi(new KubeHttp(kc), ns.name);
  operator = startInProcessOperator({ kc, namespaces: [ns.name], identity: 'plugin-test', pollMs: 1_000 });
  await api.create('orders', {}, { size: '64Mi' });
  await api.waitReady('orders');
});

afterAll(async () => {
  await api?.deleteAll().catch(() => undefined);
  await operator?.stop();
  await ns?.cleanup();
});

describe('kubectl eventlog', () => {
  it('status: the one screen, plain text when piped; -o json parses', async () => {
    const r = await plugin(['status', 'orders', '-n', ns.name]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^EventLog ${ns.name}/orders {3}phase Ready`));
    expect(r.stdout).toMatch(/Ready +True +LogAvailable/);
    expect(r.stdout).toMatch(/Stalled +False +NotStalled/);
    expect(r.stdout).toMatch(/\nStorage\n {2}orders-data {2}class eventlog-local {2}Bound/);
    expect(r.stdout).toMatch(/\nPod\n {2}orders-0 {2}127\.\d+\.\d+\.\d+ {2}Running {2}ready/);
    expect(r.stdout).toMatch(/\nRecovery\n {2}last: Clean/);
    expect(r.stdout).not.toMatch(/\u001b\[/);
    expect(r.stdout).not.toMatch(/Last error/);
    const j = await plugin(['status', 'orders', '-n', ns.name, '-o', 'json']);
    const doc = JSON.parse(j.stdout) as { name: string; status: { conditions: { type: string; status: string }[] } };
    expect(doc.name).toBe('orders');
    expect(doc.status.conditions.find((c) => c.type === 'Ready')?.status).toBe('True');
  });

  it('append (--data and -f -) and tail: the stored events come back in order, with the token from the Secret', async () => {
    const one = await plugin(['append', 'orders', '-n', ns.name, '--data', '{"order":1,"note":"naïve café"}']);
    expect(one.code, one.stderr).toBe(0);
    expect(JSON.parse(one.stdout)).toMatchObject({ sequence: 1, order: 1, note: 'naïve café' });
    const more = await plugin(['append', 'orders', '-n', ns.name, '-f', '-'], { stdin: '{"order":2}\n{"order":3}\n' });
    expect(more.code, more.stderr).toBe(0);
    expect(more.stdout.trim().split('\n').map((l) => JSON.parse(l).sequence)).toEqual([2, 3]);
    const all = await plugin(['tail', 'orders', '-n', ns.name, '--from', '1']);
    expect(all.stdout.trim().split('\n').map((l) => JSON.parse(l).order)).toEqual([1, 2, 3]);
    const last = await plugin(['tail', 'orders', '-n', ns.name, '--lines', '2']);
    expect(last.stdout.trim().split('\n').map((l) => JSON.parse(l).order)).toEqual([2, 3]);
  });

  it('tail -f prints an event appended while it follows', async () => {
    const r = await plugin(['tail', 'orders', '-n', ns.name, '-f', '--lines', '0'], {
      untilStdout: /"order":4/,
      during: async () => {
        await new Promise((ok) => setTimeout(ok, 1_500));
        const a = await plugin(['append', 'orders', '-n', ns.name, '--data', '{"order":4}']);
        expect(a.code, a.stderr).toBe(0);
      },
    });
    expect(r.stdout.trim().split('\n').map((l) => JSON.parse(l).order)).toEqual([4]);
    expect(r.code).toBe(0);
  });

  it('failures are one line and exit 1: no such EventLog, nothing to approve, a refused proxy', async () => {
    const missing = await plugin(['status', 'nope', '-n', ns.name]);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toBe(`kubectl eventlog: EventLog ${ns.name}/nope not found`);
    const approve = await plugin(['approve-repair', 'orders', '-n', ns.name, '--yes']);
    expect(approve.code).toBe(1);
    expect(approve.stderr.trim()).toMatch(/status reports no corruption; nothing to approve$/);
    const proxied = await plugin(['tail', 'orders', '-n', ns.name, '--via', 'proxy']);
    expect(proxied.code).toBe(1);
    expect(proxied.stderr.trim().split('\n')).toHaveLength(1);
    expect(proxied.stderr).toMatch(/HTTP 400/);
    // Nothing was written by the failed commands.
    const all = await plugin(['tail', 'orders', '-n', ns.name, '--from', '1']);
    expect(all.stdout.trim().split('\n')).toHaveLength(4);
    await waitFor(async () => ((await api.get<{ status?: { log?: { records?: number } } }>(api.evlPath('orders')))?.status?.log?.records === 4 ? true : undefined), { message: 'status.log to count 4 records', timeoutMs: 30_000 });
  });
});
