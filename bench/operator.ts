/**
 * `npm run bench:operator`: the operator at scale on the local cluster. For each N in
 * `--n` (default 50,200), on a fresh operator process:
 *   1. create N EventLogs at once and time until all are Ready (current generation);
 *   2. reconciles/s over that time (controller_runtime_reconcile_total) and the p99
 *      reconcile time (controller_runtime_reconcile_time_seconds, interpolated like
 *      Prometheus' histogram_quantile);
 *   3. the operator's RSS (/proc/PID/status VmRSS at the end of the steady window, and
 *      VmHWM, the peak);
 *   4. a steady-state window (`--steady`, default 60s) right after all are Ready: every
 *      write request (create/update/patch/delete) the operator made, counted from the
 *      API server's own audit log; the operator runs under its own ServiceAccount token,
 *      so its requests are told apart from the node agent's and this script's. With
 *      leader election on, Lease renewals (every 2 s) are expected to be the only ones;
 *   5. delete the N EventLogs, wait until they are finalized and their pods are gone,
 *      and stop the operator (SIGTERM).
 *
 * Setup: a temporary control plane (etcd, kube-apiserver with an audit policy that logs
 * write verbs at Metadata level, kube-controller-manager), the node agent in this
 * process (pods are real eventlog-server processes on 127.12.x.y, `--pod-ip-prefix`),
 * the EventLog CRD, and the operator as a child process (`node src/cli.ts operator`,
 * default flags: 2 workers, 10 s poll interval, leader election on a Lease in
 * eventlog-system) bound to cluster-admin through its ServiceAccount.
 *
 * If the operator exits during a phase (it exits 1 when it loses its Lease, e.g. when an
 * overloaded API server answers a renewal too late), it is restarted as a Deployment
 * would restart it; counters carry over and the table lists the restarts. A phase that
 * does not reach all-Ready within --ready-timeout is reported with how many were Ready.
 *
 * Flags: --n 50,200  --steady 60s  --ready-timeout 6m  --workers 2  --poll-interval 10s
 *        --pod-ip-prefix 127.12  --keep (keep the temporary directory for its logs)
 * Prints progress on stderr and a Markdown table on stdout. Everything it starts
 * (control plane, agent and its pods, operator) is stopped by pid/handle at the end,
 * also on Ctrl-C.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { startNodeAgent, type NodeAgent } from '../dev/agent/agent.ts';
import { startControlPlane, type ControlPlane } from '../dev/cluster/controlplane.ts';
import { writeKubeconfig } from '../dev/cluster/kubeconfig.ts';
import { createLogger } from '../src/common/logger.ts';
import { installEventLogCrd } from '../dev/kube/eventlog-crd.ts';
import { KubeHttp, statusCodeOf } from '../src/runtime/kube-http.ts';
import { spawnOperator, type ChildOperator } from '../test/support/operator-process.ts';
import { buckets, countWrites, parseProm, quantileBetween, sum, type Sample } from './operator-figures.ts';

const progress = (msg: string) => process.stderr.write(`[bench:operator ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------
// Flags
// ---------------------------------------------------------------------------------

const Duration = z
  .string()
  .regex(/^\d+(ms|s|m)$/, 'expected a duration like 500ms, 60s or 2m')
  .transform((s) => {
    const n = Number.parseInt(s, 10);
    return s.endsWith('ms') ? n : s.endsWith('m') ? n * 60_000 : n * 1_000;
  });
const Flags = z.object({
  n: z
    .string()
    .regex(/^\d+(,\d+)*$/, 'expected comma-separated counts like 50,200')
    .transform((s) => s.split(',').map(Number))
    .refine((xs) => xs.every((x) => x >= 1 && x <= 1000), 'each N must be in 1..1000'),
  steady: Duration,
  readyTimeout: Duration,
  workers: z.coerce.number().int().min(1).max(64),
  pollInterval: z.string().regex(/^\d+(ms|s|m)$/),
  podIpPrefix: z
    .string()
    .regex(/^127\.\d{1,3}$/)
    .transform((s) => [127, Number(s.split('.')[1])] as const)
    .refine(([, b]) => b >= 1 && b <= 254, 'second octet must be 1..254'),
  keep: z.boolean(),
});
type Flags = z.infer<typeof Flags>;

function parseFlags(argv: string[]): Flags {
  const { values } = parseArgs({
    args: argv,
    options: {
      n: { type: 'string', default: '50,200' },
      steady: { type: 'string', default: '60s' },
      'ready-timeout': { type: 'string', default: '6m' },
      workers: { type: 'string', default: '2' },
      'poll-interval': { type: 'string', default: '10s' },
      'pod-ip-prefix': { type: 'string', default: '127.12' },
      keep: { type: 'boolean', default: false },
    },
  });
  return Flags.parse({
    n: values.n,
    steady: values.steady,
    readyTimeout: values['ready-timeout'],
    workers: values.workers,
    pollInterval: values['poll-interval'],
    podIpPrefix: values['pod-ip-prefix'],
    keep: values.keep,
  });
}

// ---------------------------------------------------------------------------------
// Cluster plumbing
// ---------------------------------------------------------------------------------

const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    verbs: ["create", "update", "patch", "delete", "deletecollection"]
  - level: None
`;

const OPERATOR_NS = 'eventlog-system';
const OPERATOR_SA = 'eventlog-operator';
const OPERATOR_USER = `system:serviceaccount:${OPERATOR_NS}:${OPERATOR_SA}`;

async function apiOk<T>(http: KubeHttp, method: string, path: string, body?: unknown): Promise<T | undefined> {
  try {
    return await http.json<T>(method, path, { ...(body ? { body } : {}), timeoutMs: 30_000 });
  } catch (error) {
    if (statusCodeOf(error) === 409 && method === 'POST') return undefined; // exists
    throw new Error(`${method} ${path}: ${(error as Error).message}`, { cause: error });
  }
}

/** A kubeconfig for the operator's own ServiceAccount (cluster-admin), so the audit log tells its requests apart. */
async function operatorKubeconfig(cp: ControlPlane, http: KubeHttp, path: string): Promise<void> {
  await apiOk(http, 'POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: OPERATOR_NS } });
  await apiOk(http, 'POST', `/api/v1/namespaces/${OPERATOR_NS}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: OPERATOR_SA } });
  await apiOk(http, 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'eventlog-operator-bench' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
    subjects: [{ kind: 'ServiceAccount', name: OPERATOR_SA, namespace: OPERATOR_NS }],
  });
  const tr = await apiOk<{ status: { token: string } }>(http, 'POST', `/api/v1/namespaces/${OPERATOR_NS}/serviceaccounts/${OPERATOR_SA}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { expirationSeconds: 6 * 3600 },
  });
  if (!tr?.status.token) throw new Error('TokenRequest for the operator ServiceAccount returned no token');
  await writeKubeconfig(path, { server: cp.server, caCertFile: cp.caCertPath, token: tr.status.token, user: OPERATOR_USER });
}

function startOperator(kubeconfig: string, flags: Flags, logFile: string): ChildOperator {
  const args = [
    '--kubeconfig', kubeconfig,
    '--leader-elect', 'true',
    '--leader-election-namespace', OPERATOR_NS,
    '--workers', String(flags.workers),
    '--poll-interval', flags.pollInterval,
    '--metrics-addr', '127.0.0.1:0',
    '--probe-addr', '127.0.0.1:0',
    '--log-level', 'info',
  ];
  return spawnOperator(args, logFile, { ...process.env, KUBECONFIG: kubeconfig });
}

function procStatusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

type Evl = { metadata: { name: string; generation?: number }; status?: { observedGeneration?: number; conditions?: { type: string; status: string; observedGeneration?: number }[] } };
const isReady = (e: Evl) => e.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True' && c.observedGeneration === e.metadata.generation) ?? false;

// ---------------------------------------------------------------------------------
// One phase
// ---------------------------------------------------------------------------------

interface PhaseResult {
  n: number;
  readySeconds: number;
  reconciles: number;
  reconcilesPerSecond: number;
  p99Seconds: number | undefined;
  rssMiB: number | undefined;
  peakRssMiB: number | undefined;
  steadySeconds: number;
  steadyWrites: Map<string, number>;
  steadyReconciles: number;
  errors: number;
  /** Operator exits during the phase (e.g. lost leadership), each followed by a restart. */
  restarts: string[];
  /** EventLogs Ready when `--ready-timeout` ran out (then readySeconds is the timeout), else n. */
  readyCount: number;
}

/**
 * The operator of one phase, restarted like a Deployment would when it exits (it exits
 * 1 on lost leadership). Counters survive restarts: the last scrape of each previous
 * process is added to the current one's (`samples()`).
 */
/** Set when the bench is stopping: no operator is restarted after that. */
let shuttingDown = false;

class SupervisedOperator {
  readonly #start: () => ChildOperator;
  readonly #track: (c: ChildOperator | undefined) => void;
  readonly #n: number;
  #current: ChildOperator;
  #offset: Sample[] = [];
  #last: Sample[] = [];
  #stopping = false;
  readonly restarts: string[] = [];

  constructor(n: number, start: () => ChildOperator, track: (c: ChildOperator | undefined) => void) {
    this.#n = n;
    this.#start = start;
    this.#track = track;
    this.#current = this.#launch();
  }

  get pid(): number {
    return this.#current.pid;
  }

  #launch(): ChildOperator {
    const op = this.#start();
    this.#track(op);
    void op.exited.then((e) => {
      if (this.#stopping || shuttingDown || op !== this.#current) return;
      const why = e.signal ?? `exit ${e.code}`;
      this.restarts.push(why);
      progress(`N=${this.#n}: operator pid ${op.pid} exited (${why}); restarting it, as a Deployment would`);
      this.#offset = [...this.#offset, ...this.#last];
      this.#last = [];
      this.#current = this.#launch();
    });
    return op;
  }

  /** Scrape the current process (keeping the last good scrape on failure); counters include earlier processes. */
  async samples(): Promise<Sample[]> {
    try {
      const op = this.#current;
      const url = await Promise.race([op.metricsUrl, sleep(10_000).then(() => undefined)]);
      if (url) {
        const got = parseProm(await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text());
        if (op === this.#current) this.#last = got;
      }
    } catch {
      /* overloaded or restarting: keep the last good scrape */
    }
    return [...this.#offset, ...this.#last];
  }

  /** Whether the current process leads (its workers started). */
  async leading(): Promise<boolean> {
    await this.samples();
    return this.#last.some((s) => s.name === 'controller_runtime_max_concurrent_reconciles' && s.value > 0);
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    const op = this.#current;
    op.child.kill('SIGTERM');
    const exit = await Promise.race([op.exited, sleep(30_000).then(() => undefined)]);
    if (!exit) {
      progress(`N=${this.#n}: operator did not exit 30 s after SIGTERM; killing pid ${op.pid}`);
      op.child.kill('SIGKILL');
      await op.exited;
    }
    this.#track(undefined);
  }
}

/** An API call that may be slow on an overloaded machine: undefined instead of throwing. */
async function tryJson<T>(http: KubeHttp, method: string, path: string): Promise<T | undefined> {
  try {
    return await http.json<T>(method, path, { timeoutMs: 30_000 });
  } catch (error) {
    progress(`${method} ${path}: ${(error as Error).message} (retrying)`);
    return undefined;
  }
}

async function runPhase(n: number, ctx: { cp: ControlPlane; http: KubeHttp; flags: Flags; kubeconfig: string; dir: string; auditLog: string; track: (c: ChildOperator | undefined) => void }): Promise<PhaseResult> {
  const { http, flags } = ctx;
  const ns = `bench-${n}`;
  await apiOk(http, 'POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  const op = new SupervisedOperator(n, () => startOperator(ctx.kubeconfig, flags, join(ctx.dir, `operator-${n}.log`)), ctx.track);
  // Wait until it leads (workers started: the reconcile metrics exist).
  const leadDeadline = Date.now() + 90_000;
  while (!(await op.leading())) {
    if (Date.now() > leadDeadline) throw new Error(`operator for N=${n} did not start its workers within 90 s`);
    await sleep(200);
  }
  progress(`N=${n}: operator pid ${op.pid} leading; creating ${n} EventLogs`);

  const before = await op.samples();
  const t0 = performance.now();
  const evlPath = `/apis/eventlog.dev/v1alpha1/namespaces/${ns}/eventlogs`;
  const names = Array.from({ length: n }, (_, i) => `log-${String(i).padStart(3, '0')}`);
  // Create in small parallel batches (as an apply of many manifests would).
  for (let i = 0; i < names.length; i += 10) {
    await Promise.all(
      names.slice(i, i + 10).map((name) =>
        apiOk(http, 'POST', evlPath, { apiVersion: 'eventlog.dev/v1alpha1', kind: 'EventLog', metadata: { name }, spec: { storage: { size: '16Mi', retentionPolicy: 'Delete' } } }),
      ),
    );
  }
  let lastReport = 0;
  let readyCount = 0;
  const deadline = Date.now() + flags.readyTimeout;
  for (;;) {
    const items = (await tryJson<{ items: Evl[] }>(http, 'GET', evlPath))?.items;
    if (items) readyCount = items.filter(isReady).length;
    const ready = readyCount;
    if (ready === n) break;
    if (Date.now() > deadline) {
      // Report what was reached rather than nothing; the table says so.
      progress(`N=${n}: only ${ready}/${n} EventLogs Ready after ${flags.readyTimeout / 1000} s (--ready-timeout); measuring the steady window anyway`);
      break;
    }
    if (performance.now() - lastReport > 10_000) {
      lastReport = performance.now();
      progress(`N=${n}: ${ready}/${n} Ready after ${((performance.now() - t0) / 1000).toFixed(0)} s`);
      await op.samples(); // keep a recent scrape, in case the process exits
    }
    await sleep(500);
  }
  const readySeconds = (performance.now() - t0) / 1000;
  const atReady = await op.samples();
  const reconciles = sum(atReady, 'controller_runtime_reconcile_total') - sum(before, 'controller_runtime_reconcile_total');
  const p99 = quantileBetween(0.99, buckets(before, 'controller_runtime_reconcile_time_seconds', {}), buckets(atReady, 'controller_runtime_reconcile_time_seconds', {}));
  progress(`N=${n}: ${readyCount === n ? 'all' : `${readyCount}/${n}`} Ready in ${readySeconds.toFixed(1)} s (${reconciles} reconciles); ${readyCount === n ? 'steady-state' : 'measurement (not steady: still converging)'} window of ${flags.steady / 1000} s`);

  const restartsBeforeSteady = op.restarts.length;
  const s0 = Date.now();
  await sleep(flags.steady);
  const s1 = Date.now();
  const afterSteady = await op.samples();
  await sleep(2_000); // let the audit log catch up with the window's last requests
  const steadyWrites = countWrites(readFileSync(ctx.auditLog, 'utf8'), OPERATOR_USER, s0, s1);
  if (op.restarts.length > restartsBeforeSteady) progress(`N=${n}: the operator restarted during the steady window: its writes include a fresh start`);
  const rss = procStatusKb(op.pid, 'VmRSS');
  const hwm = procStatusKb(op.pid, 'VmHWM');
  const result: PhaseResult = {
    n,
    readySeconds,
    reconciles,
    reconcilesPerSecond: reconciles / readySeconds,
    p99Seconds: p99,
    rssMiB: rss !== undefined ? rss / 1024 : undefined,
    peakRssMiB: hwm !== undefined ? hwm / 1024 : undefined,
    steadySeconds: (s1 - s0) / 1000,
    steadyWrites,
    steadyReconciles: sum(afterSteady, 'controller_runtime_reconcile_total') - sum(atReady, 'controller_runtime_reconcile_total'),
    errors: sum(afterSteady, 'controller_runtime_reconcile_errors_total') - sum(before, 'controller_runtime_reconcile_errors_total'),
    restarts: [...op.restarts],
    readyCount,
  };
  progress(`N=${n}: steady writes ${JSON.stringify(Object.fromEntries(steadyWrites))}; RSS ${result.rssMiB?.toFixed(0)} MiB; cleaning up`);
  progress(`N=${n} row: ${row(result)}`);

  // Clean up: the operator finalizes, GC takes PVC/pod/Service, the agent stops the pods.
  for (let i = 0; i < names.length; i += 20) {
    await Promise.all(names.slice(i, i + 20).map((name) => http.json('DELETE', `${evlPath}/${name}`, { timeoutMs: 30_000 }).catch(() => undefined)));
  }
  const goneDeadline = Date.now() + 3 * 60_000;
  for (;;) {
    const left = (await tryJson<{ items: unknown[] }>(http, 'GET', evlPath))?.items.length ?? -1;
    const pods = (await tryJson<{ items: unknown[] }>(http, 'GET', `/api/v1/namespaces/${ns}/pods`))?.items.length ?? -1;
    if (left === 0 && pods === 0) break;
    if (Date.now() > goneDeadline) {
      progress(`N=${n}: cleanup incomplete after 3 min (${left} EventLogs, ${pods} pods left); going on`);
      break;
    }
    await sleep(1_000);
  }
  await op.stop();
  await http.json('DELETE', `/api/v1/namespaces/${ns}`, { timeoutMs: 30_000 }).catch(() => undefined);
  return result;
}

// ---------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------

const f = (x: number | undefined, d = 1) => (x === undefined ? 'n/a' : x.toFixed(d));

function writes(m: Map<string, number>): string {
  const total = [...m.values()].reduce((a, b) => a + b, 0);
  const parts = [...m.entries()].sort().map(([k, v]) => `${k}: ${v}`);
  return `${total}${parts.length ? ` (${parts.join(', ')})` : ''}`;
}

/** One Markdown table row of a phase (also printed as progress right after the phase). */
function row(r: PhaseResult): string {
  return [
    '',
    r.n,
    r.readyCount < r.n ? `> ${f(r.readySeconds)} s (${r.readyCount}/${r.n} Ready)` : `${f(r.readySeconds)} s`,
    f(r.reconcilesPerSecond),
    r.p99Seconds === undefined ? 'n/a' : `${(r.p99Seconds * 1000).toFixed(0)} ms`,
    `${f(r.rssMiB, 0)} MiB (${f(r.peakRssMiB, 0)})`,
    `${writes(r.steadyWrites)} in ${f(r.steadySeconds, 0)} s`,
    r.steadyReconciles,
    r.errors,
    `${r.restarts.length}${r.restarts.length ? ` (${r.restarts.join(', ')})` : ''}`,
    '',
  ].join(' | ').trim();
}

function table(results: PhaseResult[]): string {
  return [
    '| N | time until all Ready | reconciles/s | p99 reconcile | operator RSS (peak) | API writes in steady state | reconciles in steady state | reconcile errors | operator restarts |',
    '|---:|---:|---:|---:|---:|---|---:|---:|---|',
    ...results.map(row),
  ].join('\n');
}

async function main(): Promise<number> {
  let flags: Flags;
  try {
    flags = parseFlags(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`bench:operator: ${(error as Error).message.split('\n')[0]}\n`);
    return 2;
  }
  const started = new Date();
  const dir = mkdtempSync(join(tmpdir(), 'eventlog-bench-operator-'));
  const log = createLogger('bench-operator', process.env.LOG_LEVEL ?? 'warn');
  const auditPolicy = join(dir, 'audit-policy.yaml');
  const auditLog = join(dir, 'audit.log');
  writeFileSync(auditPolicy, AUDIT_POLICY);

  let cp: ControlPlane | undefined;
  let agent: NodeAgent | undefined;
  let operator: ChildOperator | undefined;
  let stopping: Promise<void> | undefined;
  const stopAll = () =>
    (stopping ??= (async () => {
      shuttingDown = true;
      if (operator && operator.child.exitCode === null && operator.child.signalCode === null) {
        operator.child.kill('SIGKILL');
        await operator.exited;
      }
      await agent?.stop().catch((e: unknown) => progress(`stopping the node agent failed: ${(e as Error).message}`));
      await cp?.stop().catch((e: unknown) => progress(`stopping the control plane failed: ${(e as Error).message}`));
      if (!flags.keep) rmSync(dir, { recursive: true, force: true });
      else progress(`kept ${dir} (operator logs, audit log)`);
    })());
  const onSignal = () => {
    progress('interrupted: cleaning up');
    void stopAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    progress(`starting a control plane, the node agent and the CRD in ${dir}`);
    cp = await startControlPlane({
      dataDir: join(dir, 'cluster'),
      etcdUnsafeNoFsync: true,
      log,
      handleSignals: false,
      extraApiServerArgs: [`--audit-policy-file=${auditPolicy}`, `--audit-log-path=${auditLog}`, '--audit-log-format=json', '--audit-log-mode=batch', '--audit-log-batch-max-wait=1s'],
    });
    agent = await startNodeAgent({ kubeConfig: cp.kubeConfig, dataDir: join(dir, 'node'), log, podIpPrefix: flags.podIpPrefix });
    const http = new KubeHttp(cp.kubeConfig);
    await installEventLogCrd(cp.kubeConfig, 'bench-operator');
    const kubeconfig = join(dir, 'operator.kubeconfig');
    await operatorKubeconfig(cp, http, kubeconfig);
    const results: PhaseResult[] = [];
    for (const n of flags.n) {
      results.push(await runPhase(n, { cp, http, flags, kubeconfig, dir, auditLog, track: (c) => (operator = c) }));
    }
    const seconds = ((Date.now() - started.getTime()) / 1000).toFixed(0);
    process.stdout.write(
      [
        `bench:operator ${started.toISOString().slice(0, 10)}: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.versions.node}; operator: ${flags.workers} workers, poll interval ${flags.pollInterval}, leader election on; run took ${seconds} s`,
        '',
        table(results),
        '',
      ].join('\n'),
    );
    return 0;
  } catch (error) {
    progress(`failed: ${(error as Error).stack ?? String(error)}`);
    flags.keep = true;
    return 1;
  } finally {
    await stopAll();
  }
}

const code = await main();
process.exitCode = code;
// Anything still holding the event loop (a socket the agent did not close) must not keep the bench alive.
setTimeout(() => process.exit(code), 5_000).unref();
