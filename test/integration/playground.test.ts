/**
 * `npm run dev` (dev/playground.ts), end to end as a user runs it: a real child
 * process with its own control plane and node agent (beside the suite's shared
 * ones), the in-process operator turns the sample EventLog playground/demo into a
 * Ready log pod (demo-0) that takes an event, Ctrl-C stops everything, and a second
 * run on the same directory still has the event.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from './helpers.ts';
import { reclaimLeftovers } from '../../dev/volumes/loopfs.ts';

const repo = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'eventlog-playground-'));
const running = new Set<ChildProcess>();

type Playground = { child: ChildProcess; kubeconfigPath: string; output: () => string; stdout: () => string };

async function startPlayground(): Promise<Playground> {
  const child = spawn(process.execPath, [join(repo, 'dev/cli.ts'), '--dir', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LOG_LEVEL: 'warn' },
  });
  running.add(child);
  child.on('exit', () => running.delete(child));
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const output = () => `stdout:\n${out}\nstderr tail:\n${err}`;
  await waitFor(() => out.includes('playground ready') || child.exitCode !== null, { message: 'the playground to print "playground ready"', timeoutMs: 120_000 });
  if (child.exitCode !== null) throw new Error(`the playground exited ${child.exitCode} before it was ready\n${output()}`);
  const kubeconfigPath = /export KUBECONFIG=(\S+)/.exec(out)?.[1];
  expect(kubeconfigPath, output()).toBeDefined();
  return { child, kubeconfigPath: kubeconfigPath!, output, stdout: () => out };
}

async function stopWithCtrlC(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGINT');
  return exited;
}

async function demoPodIp(kubeconfigPath: string): Promise<string> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  return waitFor(
    async () => {
      const pod = await core.readNamespacedPod({ name: 'demo-0', namespace: 'playground' });
      const ready = pod.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
      return ready ? pod.status?.podIP : undefined;
    },
    { message: 'pod playground/demo-0 (made by the operator) to be Ready with an IP', timeoutMs: 90_000 },
  );
}

/** `Authorization` for the demo log: the token from its Secret `demo-token`. */
async function demoAuth(kubeconfigPath: string): Promise<Record<string, string>> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const secret = await kc.makeApiClient(CoreV1Api).readNamespacedSecret({ name: 'demo-token', namespace: 'playground' });
  const token = secret.data?.token;
  if (!token) throw new Error('Secret playground/demo-token has no token');
  return { authorization: `Bearer ${Buffer.from(token, 'base64').toString('utf8')}` };
}

/** The commands the playground prints (the indented lines after "playground ready"). */
function printedCommands(stdout: string): string[] {
  const after = stdout.slice(stdout.indexOf('playground ready'));
  return after
    .split('\n')
    .filter((l) => l.startsWith('  '))
    .map((l) => l.trim());
}

const runBash = promisify(execFile);

function portAnswers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

afterAll(async () => {
  for (const child of running) child.kill('SIGKILL');
  // A playground killed mid-test leaves its loop volumes mounted under dir: reclaim them
  // the way its next start would, then remove the directory.
  await reclaimLeftovers(dir);
  rmSync(dir, { recursive: true, force: true });
});

describe('npm run dev (the playground)', () => {
  let event: { id: string; sequence: number } | undefined;

  it('starts a cluster whose sample log pod becomes Ready and takes events; Ctrl-C stops everything', async () => {
    const started = await startPlayground();
    const { child, kubeconfigPath, output } = started;
    const ip = await demoPodIp(kubeconfigPath);
    expect(ip).toMatch(/^127\.2\.\d+\.\d+$/);
    await waitFor(
      async () => {
        const kc = new KubeConfig();
        kc.loadFromFile(kubeconfigPath);
        const evl = (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({ group: 'eventlog.dev', version: 'v1alpha1', namespace: 'playground', plural: 'eventlogs', name: 'demo' })) as {
          status?: { conditions?: { type: string; status: string }[]; pod?: { ip?: string } };
        };
        return evl.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') && evl.status.pod?.ip === ip;
      },
      { message: 'EventLog playground/demo to report Ready=True for that pod', timeoutMs: 60_000 },
    );

    // What a user copies: the printed commands, then the README's direct-access lines
    // (kubectl, the token from the Secret, curl with it), in one bash with -e.
    const printed = printedCommands(started.stdout());
    expect(printed[0]).toMatch(/^export KUBECONFIG=/);
    expect(printed.some((c) => c.startsWith('curl -s -H "Authorization: Bearer $TOKEN"'))).toBe(true);
    const script = [
      'set -euo pipefail',
      ...printed,
      "IP=$(kubectl -n playground get evl demo -o jsonpath='{.status.pod.ip}')",
      "TOKEN=$(kubectl -n playground get secret demo-token -o jsonpath='{.data.token}' | base64 -d)",
      `curl -s -XPOST -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"type":"hello"}' http://$IP:8080/events`,
      'curl -s -H "Authorization: Bearer $TOKEN" "http://$IP:8080/events?after=0"',
    ].join('\n');
    const shell = await runBash('bash', ['-c', script], { env: { ...process.env, KUBECONFIG: '' }, timeout: 60_000 });
    expect(shell.stdout).toContain('demo-0');
    expect(shell.stdout).toMatch(/"state":\s*"ready"/);
    expect(shell.stdout).toMatch(/"type":\s*"hello"/);

    const res = await fetch(`http://${ip}:8080/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(await demoAuth(kubeconfigPath)) },
      body: JSON.stringify({ type: 'playground.test', note: 'Chidé 🎉' }),
    });
    expect(res.status).toBe(201);
    event = (await res.json()) as { id: string; sequence: number };

    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    const apiServer = new URL(kc.getCurrentCluster()!.server);

    expect(await stopWithCtrlC(child), output()).toBe(0);
    expect(output()).toContain('stopping the playground');
    // Nothing keeps serving: neither the log pod's server nor the API server.
    expect(await portAnswers(ip, 8080)).toBe(false);
    expect(await portAnswers(apiServer.hostname, Number(apiServer.port))).toBe(false);
  });

  it('a second run on the same directory still has the cluster objects and the events', async () => {
    expect(event).toBeDefined();
    const { child, kubeconfigPath, output } = await startPlayground();
    const ip = await demoPodIp(kubeconfigPath);
    const auth = await demoAuth(kubeconfigPath);
    // The pod object (and its Ready condition) survive in etcd from the first run: wait
    // until the restarted server (its volume re-attached first) answers, then check.
    const body = await waitFor(
      async () => {
        const res = await fetch(`http://${ip}:8080/events/${event!.id}`, { headers: auth }).catch(() => undefined);
        return res?.status === 200 ? ((await res.json()) as Record<string, unknown>) : undefined;
      },
      { message: `the restarted log server to answer GET /events/${event!.id} (${output().slice(-500)})`, timeoutMs: 60_000 },
    );
    expect(body).toMatchObject({ id: event!.id, sequence: event!.sequence, note: 'Chidé 🎉' });
    expect(await stopWithCtrlC(child), output()).toBe(0);
  });
});
