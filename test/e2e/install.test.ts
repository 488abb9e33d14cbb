/**
 * End to end on a real node (kubelet + containerd): the README's install, verbatim,
 * then what an operator on call relies on. One sequential story; each step builds on
 * the one before (vitest runs the tests of a file in order).
 */
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, inject, it } from 'vitest';

const execFileAsync = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const NS = 'default';
const OP_NS = 'eventlog-system';

const kubeconfig = inject('e2eKubeconfig');
const dataDir = inject('e2eDataDir');
const binDir = inject('e2eBinDir');
const image = inject('e2eImage');

async function kubectl(...args: string[]): Promise<string> {
  try {
    const r = await execFileAsync('kubectl', args, { cwd: ROOT, env: { ...process.env, KUBECONFIG: kubeconfig }, timeout: 300_000, maxBuffer: 32 * 1024 * 1024 });
    return r.stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string; stdout?: string };
    throw new Error(`kubectl ${args.join(' ')}: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}
const getJson = async <T = any>(...args: string[]): Promise<T> => JSON.parse(await kubectl('get', '-o', 'json', ...args)) as T;

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`timed out: ${what}${last ? ` (last error: ${last})` : ''}`);
    await sleep(500);
  }
}

const ctr = async (...args: string[]) =>
  (await execFileAsync(join(binDir, 'ctr'), ['--address', join(dataDir, 'node', 'containerd', 'containerd.sock'), '--namespace', 'k8s.io', ...args], { timeout: 300_000 })).stdout;

let clientRuns = 0;
/**
 * Runs a client pod (the project's image, plain Node fetch) that talks to the log
 * through the EventLog's Service, with the token from its Secret; returns what the
 * pod wrote to its termination message (JSON).
 */
async function clientPod(script: string): Promise<any> {
  const svc = await getJson('service', 'orders', '-n', NS);
  const ip = svc.spec.clusterIP as string;
  const port = svc.spec.ports[0].port as number;
  const name = `client-${++clientRuns}`;
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS },
    spec: {
      restartPolicy: 'Never',
      securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [{
        name: 'client',
        image,
        imagePullPolicy: 'Never',
        command: ['node', '-e', `
          const fs = require('node:fs');
          const base = 'http://${ip}:${port}';
          const token = fs.readFileSync('/token/token', 'utf8').trim();
          const h = { authorization: 'Bearer ' + token };
          (async () => { ${script} })().then(
            (r) => { fs.writeFileSync('/dev/termination-log', JSON.stringify(r)); },
            (e) => { fs.writeFileSync('/dev/termination-log', JSON.stringify({ error: String(e && e.stack || e) })); process.exit(1); });
        `],
        volumeMounts: [{ name: 'token', mountPath: '/token', readOnly: true }],
        securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
      }],
      volumes: [{ name: 'token', secret: { secretName: 'orders-token' } }],
    },
  };
  await new Promise<void>((res, rej) => {
    const c = execFile('kubectl', ['create', '-f', '-'], { env: { ...process.env, KUBECONFIG: kubeconfig } }, (err) => (err ? rej(err) : res()));
    c.stdin!.end(JSON.stringify(pod));
  });
  const done = await until(`client pod ${name} finished`, 120_000, async () => {
    const p = await getJson('pod', name, '-n', NS);
    return p.status.phase === 'Succeeded' || p.status.phase === 'Failed' ? p : undefined;
  });
  const msg = done.status.containerStatuses?.[0]?.state?.terminated?.message ?? '';
  await kubectl('delete', 'pod', name, '-n', NS, '--wait=false');
  if (done.status.phase !== 'Succeeded') throw new Error(`client pod ${name} failed: ${msg}`);
  return JSON.parse(msg);
}

const APPEND = (n: number, tag: string) => `
  const out = [];
  for (let i = 0; i < ${n}; i++) {
    const r = await fetch(base + '/events', { method: 'POST', headers: { ...h, 'content-type': 'application/json' }, body: JSON.stringify({ tag: '${tag}', i, text: 'zażółć ' + i }) });
    if (r.status !== 201) throw new Error('append ' + i + ': ' + r.status + ' ' + await r.text());
    out.push(await r.json());
  }
  return out;`;
const READ_ALL = `
  const r = await fetch(base + '/events?limit=1000', { headers: h });
  if (r.status !== 200) throw new Error('read: ' + r.status + ' ' + await r.text());
  return (await r.text()).split('\\n').filter(Boolean).map((l) => JSON.parse(l));`;

const evl = () => getJson('eventlog', 'orders', '-n', NS);
const logPod = () => getJson('pod', 'orders-0', '-n', NS);
const readyTrue = (o: any) => o.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True') === true;

describe('the README install on a real node', () => {
  beforeAll(() => {
    expect(kubeconfig).toBeTruthy();
  });

  it('kubectl apply -k deploy/ brings up the operator Deployment under Pod Security restricted', async () => {
    await kubectl('apply', '-k', 'deploy/');
    await kubectl('-n', OP_NS, 'rollout', 'status', 'deployment/eventlog-operator', '--timeout=240s');
    const ns = await getJson('namespace', OP_NS);
    expect(ns.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
    const pods = await getJson('pods', '-n', OP_NS, '-l', 'app.kubernetes.io/name=eventlog-operator');
    expect(pods.items.filter((p: any) => p.status.phase === 'Running')).toHaveLength(2);
    // Enforcement is live: a privileged pod is refused in that namespace.
    await expect(kubectl('run', 'psa-probe', '-n', OP_NS, `--image=${image}`, '--dry-run=server', '--overrides={"spec":{"containers":[{"name":"psa-probe","image":"' + image + '","securityContext":{"privileged":true}}]}}'))
      .rejects.toThrow(/violates PodSecurity "restricted/);
  });

  it('kubectl apply -k deploy/samples/ and kubectl wait --for=condition=Ready', async () => {
    await kubectl('apply', '-k', 'deploy/samples/', '-n', NS);
    await kubectl('wait', '--for=condition=Ready', 'evl/orders', '-n', NS, '--timeout=240s');
    const e = await evl();
    expect(e.status.pod?.name ?? e.status.pod).toBeTruthy();
  });

  let appended: any[] = [];
  it('a client pod appends and reads through the Service', async () => {
    appended = await clientPod(APPEND(5, 'first'));
    expect(appended).toHaveLength(5);
    const all = await clientPod(READ_ALL);
    expect(all.map((x: any) => x.sequence ?? x.id)).toEqual(appended.map((x: any) => x.sequence ?? x.id));
    expect(JSON.stringify(all)).toContain('zażółć 4');
  });

  it('SIGKILL of the log server: the kubelet restarts it, status shows a Clean recovery, nothing lost', async () => {
    const before = await logPod();
    const cs = before.status.containerStatuses[0];
    const restarts0 = cs.restartCount as number;
    const id = String(cs.containerID).replace(/^containerd:\/\//, '');
    const tasks = await ctr('tasks', 'ls');
    const line = tasks.split('\n').find((l) => l.startsWith(id));
    const pid = Number(line?.trim().split(/\s+/)[1]);
    expect(pid).toBeGreaterThan(0);
    const boot0 = (await evl()).status.recovery?.history?.[0]?.bootId;
    process.kill(pid, 'SIGKILL');
    await until('the kubelet restarted the container', 120_000, async () => {
      const p = await logPod();
      const s = p.status.containerStatuses[0];
      return s.restartCount > restarts0 && s.ready ? p : undefined;
    });
    const after = await until('a new Clean recovery in status', 120_000, async () => {
      const e = await evl();
      const h0 = e.status.recovery?.history?.[0];
      return h0 && h0.bootId !== boot0 && readyTrue(e) ? e : undefined;
    });
    expect(after.status.recovery.lastOutcome).toBe('Clean');
    const all = await clientPod(READ_ALL);
    expect(all).toHaveLength(appended.length);
  });

  it('deleting the log pod: recreated on the same PVC with its data', async () => {
    const uid0 = (await logPod()).metadata.uid;
    const pvc0 = await getJson('pvc', 'orders-data', '-n', NS);
    await kubectl('delete', 'pod', 'orders-0', '-n', NS);
    await until('orders-0 recreated and Ready', 180_000, async () => {
      const p = await logPod();
      return p.metadata.uid !== uid0 && p.status.containerStatuses?.[0]?.ready ? p : undefined;
    });
    await kubectl('wait', '--for=condition=Ready', 'evl/orders', '-n', NS, '--timeout=120s');
    const pvc1 = await getJson('pvc', 'orders-data', '-n', NS);
    expect(pvc1.metadata.uid).toBe(pvc0.metadata.uid);
    const more = await clientPod(APPEND(2, 'second'));
    const all = await clientPod(READ_ALL);
    expect(all).toHaveLength(appended.length + more.length);
  });

  it('deleting the leader operator pod: the other replica takes the Lease', async () => {
    const lease0 = await getJson('lease', 'eventlog-operator', '-n', OP_NS);
    const holder0 = lease0.spec.holderIdentity as string;
    const pods = await getJson('pods', '-n', OP_NS, '-l', 'app.kubernetes.io/name=eventlog-operator');
    const leaderPod = pods.items.find((p: any) => holder0.startsWith(p.metadata.name));
    expect(leaderPod, `a pod named by the Lease holder ${holder0}`).toBeTruthy();
    const t0 = Date.now();
    await kubectl('delete', 'pod', leaderPod.metadata.name, '-n', OP_NS, '--wait=false');
    const holder1 = await until('another holder of the Lease', 120_000, async () => {
      const l = await getJson('lease', 'eventlog-operator', '-n', OP_NS);
      const h = l.spec.holderIdentity as string | undefined;
      return h && h !== holder0 ? h : undefined;
    });
    console.log(`[e2e] leader failover: ${holder0} -> ${holder1} in ${Date.now() - t0} ms`);
    // The new leader reconciles: a change is acted upon.
    await kubectl('annotate', 'evl/orders', '-n', NS, `e2e/touch=${Date.now()}`, '--overwrite');
    await kubectl('wait', '--for=condition=Ready', 'evl/orders', '-n', NS, '--timeout=120s');
    await kubectl('-n', OP_NS, 'rollout', 'status', 'deployment/eventlog-operator', '--timeout=180s');
  });

  it('rolling the operator to a new image tag: no duplicate log pod, Ready never lost', async () => {
    const tag = 'eventlog:e2e-roll';
    // A second tag of the same image, loaded into the node (docker tag + save | ctr import).
    await execFileAsync('docker', ['tag', image, tag]);
    const tar = join(dataDir, 'roll.tar');
    await execFileAsync('docker', ['save', '-o', tar, tag], { timeout: 300_000 });
    await ctr('images', 'import', tar);
    let watching = true;
    const problems: string[] = [];
    const watcher = (async () => {
      while (watching) {
        try {
          const e = await evl();
          if (!readyTrue(e)) problems.push(`EventLog not Ready at ${new Date().toISOString()}`);
          const pods = await getJson('pods', '-n', NS, '-l', 'app.kubernetes.io/instance=orders');
          const log = pods.items.filter((p: any) => !/^client-/.test(p.metadata.name));
          if (log.length > 1) problems.push(`${log.length} log pods: ${log.map((p: any) => p.metadata.name).join(',')}`);
        } catch (err) {
          problems.push(`watch error: ${(err as Error).message}`);
        }
        await sleep(500);
      }
    })();
    await kubectl('-n', OP_NS, 'set', 'image', 'deployment/eventlog-operator', `operator=${tag}`);
    await kubectl('-n', OP_NS, 'rollout', 'status', 'deployment/eventlog-operator', '--timeout=240s');
    await sleep(5_000);
    watching = false;
    await watcher;
    expect(problems).toEqual([]);
    const pods = await getJson('pods', '-n', OP_NS, '-l', 'app.kubernetes.io/name=eventlog-operator');
    expect(pods.items.filter((p: any) => p.status.phase === 'Running').every((p: any) => p.spec.containers[0].image.endsWith(tag))).toBe(true);
  });
});
