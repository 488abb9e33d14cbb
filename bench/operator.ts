/**
 * `npm run bench:operator`: the operator at scale on the local cluster. Phases run one
 * after the other, each on a fresh operator process:
 *   --n 50        real log pods: the node agent runs every pod as an `eventlog-server`
 *                 process (127.12.x.y, `--pod-ip-prefix`);
 *   --sim 1000    SIMULATED log pods (bench/sim-node.ts): one light HTTP listener per pod
 *                 address answers /status, a simulated node binds claims and pods and
 *                 writes kubelet-like pod status; no process per pod. Every figure of such
 *                 a phase is labelled "simulated".
 * Per phase:
 *   1. the idle operator's RSS and V8 heap (leading, caches synced, no EventLogs);
 *   2. create N EventLogs (batches of 10) and time until all are Ready at their
 *      generation, from the first and from the last create;
 *   3. reconciles to converge (controller_runtime_reconcile_total, total and per
 *      EventLog), the p99 reconcile time (histogram_quantile-like), the watch events the
 *      manager dropped (eventlog_controller_watch_events_total) and the reconciles it held
 *      back to read its own writes (eventlog_controller_reconcile_deferred_total);
 *   4. a steady-state window (`--steady`) right after all are Ready: every request the
 *      operator's ServiceAccount made (reads, watches, writes) from the API server's own
 *      audit log, as requests/s and by verb/resource; the polls of log servers
 *      (eventlog_status_polls_total) per second;
 *   5. the operator's RSS (VmRSS at the end of the window, VmHWM = peak over the phase)
 *      and V8 heap; with `--heap-snapshot`, a heap snapshot of the operator (SIGUSR2,
 *      taken after RSS was read) broken down by what retains it (bench/heap-breakdown.ts);
 *   6. delete the N EventLogs, wait until they are finalized (and, real pods, until the
 *      pods are gone), stop the operator (SIGTERM) and delete the namespace.
 *
 * The operator runs as it ships: `npm run build` output, `node dist/bin/eventlog-operator.js`
 * (`--operator src` runs `node src/cli.ts operator` from the TypeScript sources instead),
 * default flags (2 workers, 10 s poll interval, leader election on a Lease in
 * eventlog-system), bound to cluster-admin through its own ServiceAccount token, so its
 * requests are told apart in the audit log.
 *
 * If the operator exits during a phase (it exits 1 when it loses its Lease, e.g. when an
 * overloaded API server answers a renewal too late), it is restarted as a Deployment
 * would restart it; counters carry over and the table lists Lease losses and restarts.
 * A phase that does not reach all-Ready within --ready-timeout is reported with how many
 * were Ready.
 *
 * Flags: --n 50 (real phases; "" for none)  --sim 1000 (simulated phases; default none)
 *        --steady 60s  --ready-timeout 6m  --workers 2  --sim-workers (default: --workers)
 *        --poll-interval 10s
 *        --pod-ip-prefix 127.12  --sim-ip-prefix 127.13  --operator dist|src
 *        --operator-dir <checkout> (run another checkout's operator, already built, e.g. a
 *        baseline commit, against this bench)
 *        --memory-limit 384Mi (default: the operator container's limit in deploy/deployment.yaml;
 *        the V8 heap is sized as Node sizes it inside that limit, see heapFlagsForLimit;
 *        "none": unconstrained, as on the 24 GiB host)
 *        --heap-snapshot  --node-flags "<node/V8 flags for the operator, experiments only>"
 *        --operator-env KEY=VALUE,... (extra environment of the operator, experiments only)
 *        --keep (keep the temporary directory: logs, audit log, snapshots)
 * Prints progress on stderr and Markdown tables on stdout. Everything it starts
 * (control plane, agent and its pods, simulated node, operator) is stopped by pid/handle
 * at the end, also on Ctrl-C.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { startNodeAgent, type NodeAgent } from '../dev/agent/agent.ts';
import { startControlPlane, type ControlPlane } from '../dev/cluster/controlplane.ts';
import { writeKubeconfig } from '../dev/cluster/kubeconfig.ts';
import { createLogger } from '../src/common/logger.ts';
import { installEventLogCrd } from '../dev/kube/eventlog-crd.ts';
import { KubeHttp, statusCodeOf } from '../src/runtime/kube-http.ts';
import { httpListWatch } from '../src/runtime/list-watch.ts';
import { Watcher } from '../src/runtime/watcher.ts';
import { spawnOperator, type ChildOperator } from '../test/support/operator-process.ts';
import { breakdownTable, type HeapBreakdown } from './heap-breakdown.ts';
import { buckets, countRequests, countWrites, heapFlagsForLimit, parseProm, quantileBetween, sum, type Sample } from './operator-figures.ts';
import { SIM_STORAGE_CLASS, startSimNode, type SimNode } from './sim-node.ts';

const progress = (msg: string) => process.stderr.write(`[bench:operator ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const repoRoot = fileURLToPath(new URL('../', import.meta.url));

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
const Counts = z
  .string()
  .regex(/^(\d+(,\d+)*)?$/, 'expected comma-separated counts like 50,200 (or nothing)')
  .transform((s) => (s ? s.split(',').map(Number) : []))
  .refine((xs) => xs.every((x) => x >= 1 && x <= 1000), 'each N must be in 1..1000');
const IpPrefix = z
  .string()
  .regex(/^127\.\d{1,3}$/)
  .transform((s) => [127, Number(s.split('.')[1])] as const)
  .refine(([, b]) => b >= 1 && b <= 254, 'second octet must be 1..254');
const Flags = z
  .object({
    n: Counts,
    sim: Counts,
    steady: Duration,
    readyTimeout: Duration,
    workers: z.coerce.number().int().min(1).max(64),
    simWorkers: z.union([z.literal(''), z.coerce.number().int().min(1).max(64)]),
    pollInterval: z.string().regex(/^\d+(ms|s|m)$/),
    podIpPrefix: IpPrefix,
    simIpPrefix: IpPrefix,
    operator: z.enum(['dist', 'src']),
    operatorDir: z.string(),
    heapSnapshot: z.boolean(),
    nodeFlags: z.string().transform((s) => s.split(' ').filter(Boolean)),
    memoryLimit: z.string().regex(/^(none|\d+Mi)$/, 'expected e.g. 384Mi or none'),
    operatorEnv: z
      .string()
      .regex(/^([A-Za-z_][A-Za-z0-9_]*=[^,]*(,[A-Za-z_][A-Za-z0-9_]*=[^,]*)*)?$/, 'expected KEY=VALUE,KEY=VALUE')
      .transform((s) => Object.fromEntries(s.split(',').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]))),
    keep: z.boolean(),
  })
  .refine((f) => f.n.length + f.sim.length > 0, 'nothing to run: give --n and/or --sim')
  .refine((f) => f.podIpPrefix[1] !== f.simIpPrefix[1], '--pod-ip-prefix and --sim-ip-prefix must differ');
type Flags = z.infer<typeof Flags>;

/** The operator container's memory limit in deploy/deployment.yaml (what ships), e.g. "384Mi". */
function deploymentMemoryLimit(): string {
  const text = readFileSync(join(repoRoot, 'deploy/deployment.yaml'), 'utf8');
  const m = /limits:\s*\n\s*memory:\s*(\d+)Mi/.exec(text);
  return m ? `${m[1]}Mi` : 'none';
}

function parseFlags(argv: string[]): Flags {
  const { values } = parseArgs({
    args: argv,
    options: {
      n: { type: 'string', default: '50' },
      sim: { type: 'string', default: '' },
      steady: { type: 'string', default: '60s' },
      'ready-timeout': { type: 'string', default: '6m' },
      workers: { type: 'string', default: '2' },
      'sim-workers': { type: 'string', default: '' },
      'poll-interval': { type: 'string', default: '10s' },
      'pod-ip-prefix': { type: 'string', default: '127.12' },
      'sim-ip-prefix': { type: 'string', default: '127.13' },
      operator: { type: 'string', default: 'dist' },
      'operator-dir': { type: 'string', default: '' },
      'heap-snapshot': { type: 'boolean', default: false },
      'node-flags': { type: 'string', default: '' },
      'memory-limit': { type: 'string', default: deploymentMemoryLimit() },
      'operator-env': { type: 'string', default: '' },
      keep: { type: 'boolean', default: false },
    },
  });
  return Flags.parse({
    n: values.n,
    sim: values.sim,
    steady: values.steady,
    readyTimeout: values['ready-timeout'],
    workers: values.workers,
    simWorkers: values['sim-workers'],
    pollInterval: values['poll-interval'],
    podIpPrefix: values['pod-ip-prefix'],
    simIpPrefix: values['sim-ip-prefix'],
    operator: values.operator,
    operatorDir: values['operator-dir'],
    heapSnapshot: values['heap-snapshot'],
    nodeFlags: values['node-flags'],
    memoryLimit: values['memory-limit'],
    operatorEnv: values['operator-env'],
    keep: values.keep,
  });
}

// ---------------------------------------------------------------------------------
// Cluster plumbing
// ---------------------------------------------------------------------------------

const OPERATOR_NS = 'eventlog-system';
const OPERATOR_SA = 'eventlog-operator';
const OPERATOR_USER = `system:serviceaccount:${OPERATOR_NS}:${OPERATOR_SA}`;

/** Every request of the operator's ServiceAccount (reads included); writes of everyone else. */
const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    users: ["${OPERATOR_USER}"]
  - level: Metadata
    verbs: ["create", "update", "patch", "delete", "deletecollection"]
  - level: None
`;

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

const workersFor = (mode: Mode, flags: Flags) => (mode === 'simulated' && flags.simWorkers !== '' ? flags.simWorkers : flags.workers);

function startOperator(kubeconfig: string, flags: Flags, logFile: string, diagDir: string, workers: number): ChildOperator {
  const args = [
    '--kubeconfig', kubeconfig,
    '--leader-elect', 'true',
    '--leader-election-namespace', OPERATOR_NS,
    '--workers', String(workers),
    '--poll-interval', flags.pollInterval,
    '--metrics-addr', '127.0.0.1:0',
    '--probe-addr', '127.0.0.1:0',
    '--log-level', process.env.BENCH_OPERATOR_LOG_LEVEL ?? 'info',
  ];
  const base = flags.operatorDir ? `${flags.operatorDir.replace(/\/+$/, '')}/` : '';
  const entry = flags.operator === 'dist' ? [`${base}dist/bin/eventlog-operator.js`] : [`${base}src/cli.ts`, 'operator'];
  // SIGUSR2 writes a heap snapshot into diagDir (only sent with --heap-snapshot).
  const limitFlags = flags.memoryLimit === 'none' ? [] : heapFlagsForLimit(Number.parseInt(flags.memoryLimit, 10));
  const nodeArgs = ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${diagDir}`, ...limitFlags, ...flags.nodeFlags];
  return spawnOperator(args, logFile, { ...process.env, KUBECONFIG: kubeconfig, NODE_ENV: 'production', ...flags.operatorEnv }, { entry, nodeArgs });
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

type Mode = 'real' | 'simulated';

interface MemoryFigures {
  rssMiB: number | undefined;
  /** RSS by kind of mapping (/proc/PID/smaps): file-backed (the node binary, libraries), [heap] (malloc), other anonymous (V8 heap, stacks). */
  rssByMapping: { file: number; malloc: number; anon: number } | undefined;
  heapUsedMiB: number;
  heapTotalMiB: number;
  externalMiB: number;
}

interface PhaseResult {
  mode: Mode;
  n: number;
  workers: number;
  readySeconds: number;
  /** From the last create until all were Ready. */
  readyAfterLastCreateSeconds: number;
  createSeconds: number;
  reconciles: number;
  p99Seconds: number | undefined;
  idle: MemoryFigures;
  steady: MemoryFigures;
  peakRssMiB: number | undefined;
  steadySeconds: number;
  steadyWrites: Map<string, number>;
  steadyRequests: Map<string, number>;
  steadyReconciles: number;
  /** undefined: the operator build has no eventlog_status_polls_total (an older build). */
  steadyPolls: number | undefined;
  /** Polls the simulated log pods answered in the window (cross-check; simulated only). */
  steadySimPolls: number | undefined;
  errors: number;
  /** Operator CPU seconds (process_cpu_seconds_total) while converging and in the steady window; GC seconds (nodejs_gc_duration_seconds) of each. */
  cpu: { converge: number; steady: number; gcConverge: number; gcSteady: number };
  /** Watch events during convergence by decision (enqueue, skip_own_write, skip_unchanged) and resource. */
  events: Map<string, number>;
  deferred: number;
  conflicts: number;
  /** Keys handed to workers while converging, by trigger (eventlog_workqueue_handed_out_total): watch events vs requeue timers. */
  triggers: { event: number; requeue: number };
  /** Operator exits during the phase (e.g. lost leadership), each followed by a restart. */
  restarts: string[];
  leaseLosses: number;
  /** EventLogs Ready when `--ready-timeout` ran out (then readySeconds is the timeout), else n. */
  readyCount: number;
  heap: HeapBreakdown | undefined;
}

/** Set when the bench is stopping: no operator is restarted after that. */
let shuttingDown = false;

/**
 * The operator of one phase, restarted like a Deployment would when it exits (it exits
 * 1 on lost leadership). Counters survive restarts: the last scrape of each previous
 * process is added to the current one's (`samples()`).
 */
class SupervisedOperator {
  readonly #start: () => ChildOperator;
  readonly #track: (c: ChildOperator | undefined) => void;
  readonly #label: string;
  #current: ChildOperator;
  #offset: Sample[] = [];
  #last: Sample[] = [];
  #stopping = false;
  readonly restarts: string[] = [];

  constructor(label: string, start: () => ChildOperator, track: (c: ChildOperator | undefined) => void) {
    this.#label = label;
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
      progress(`${this.#label}: operator pid ${op.pid} exited (${why}); restarting it, as a Deployment would`);
      this.#offset = [...this.#offset, ...this.#last];
      this.#last = [];
      this.#current = this.#launch();
    });
    return op;
  }

  /** Scrape the current process (keeping the last good scrape on failure); counters include earlier processes. */
  async samples(): Promise<Sample[]> {
    await this.current();
    return [...this.#offset, ...this.#last];
  }

  /** The current process's own scrape (gauges: memory). */
  async current(): Promise<Sample[]> {
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
    return this.#last;
  }

  /** Whether the current process leads (its workers started). */
  async leading(): Promise<boolean> {
    await this.samples();
    return this.#last.some((s) => s.name === 'controller_runtime_max_concurrent_reconciles' && s.value > 0);
  }

  signal(sig: NodeJS.Signals): void {
    this.#current.kill(sig);
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    const op = this.#current;
    op.child.kill('SIGTERM');
    const exit = await Promise.race([op.exited, sleep(30_000).then(() => undefined)]);
    if (!exit) {
      progress(`${this.#label}: operator did not exit 30 s after SIGTERM; killing pid ${op.pid}`);
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

/** RSS (MiB) by kind of mapping, from /proc/PID/smaps. */
function rssByMapping(pid: number): MemoryFigures['rssByMapping'] {
  try {
    const out = { file: 0, malloc: 0, anon: 0 };
    let kind: keyof typeof out = 'anon';
    for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
      const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
      if (head) {
        const name = head[1] ?? '';
        kind = name === '[heap]' ? 'malloc' : name.startsWith('/') ? 'file' : 'anon';
        continue;
      }
      const rss = /^Rss:\s+(\d+) kB/.exec(line);
      if (rss) out[kind] += Number(rss[1]) / 1024;
    }
    return out;
  } catch {
    return undefined;
  }
}

const MiB = 2 ** 20;
function memory(pid: number, samples: Sample[]): MemoryFigures {
  const rss = procStatusKb(pid, 'VmRSS');
  return {
    rssMiB: rss !== undefined ? rss / 1024 : undefined,
    rssByMapping: rssByMapping(pid),
    heapUsedMiB: sum(samples, 'nodejs_heap_size_used_bytes') / MiB,
    heapTotalMiB: sum(samples, 'nodejs_heap_size_total_bytes') / MiB,
    externalMiB: sum(samples, 'nodejs_external_memory_bytes') / MiB,
  };
}

/** Events by "decision resource" between two scrapes. */
function eventDecisions(before: Sample[], after: Sample[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const s of after) {
    if (s.name !== 'eventlog_controller_watch_events_total') continue;
    const k = `${s.labels.decision} ${s.labels.resource}`;
    m.set(k, (m.get(k) ?? 0) + s.value);
  }
  for (const s of before) {
    if (s.name !== 'eventlog_controller_watch_events_total') continue;
    const k = `${s.labels.decision} ${s.labels.resource}`;
    m.set(k, (m.get(k) ?? 0) - s.value);
  }
  for (const [k, v] of m) if (v === 0) m.delete(k);
  return m;
}

function auditCount(audit: string, from: number, to: number): number {
  let n = 0;
  for (const [, v] of countRequests(audit, OPERATOR_USER, from, to)) n += v;
  return n;
}

/** Waits for the heap snapshot the operator writes on SIGUSR2 (its size stops changing). */
async function takeHeapSnapshot(op: SupervisedOperator, dir: string, label: string): Promise<HeapBreakdown | undefined> {
  const before = new Set(readdirSync(dir));
  op.signal('SIGUSR2');
  const deadline = Date.now() + 120_000;
  let file: string | undefined;
  let lastSize = -1;
  while (Date.now() < deadline) {
    await sleep(1_000);
    file ??= readdirSync(dir).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    if (!file) continue;
    const size = statSync(join(dir, file)).size;
    if (size > 0 && size === lastSize) break;
    lastSize = size;
  }
  if (!file) {
    progress(`${label}: no heap snapshot appeared`);
    return undefined;
  }
  // Analysed in a separate process: parsing a snapshot takes a few hundred MiB.
  const r = spawnSync(process.execPath, ['bench/heap-breakdown.ts', join(dir, file), '--json'], { cwd: repoRoot, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    progress(`${label}: heap breakdown failed: ${r.stderr}`);
    return undefined;
  }
  progress(`${label}: heap snapshot ${file} analysed`);
  return JSON.parse(r.stdout) as HeapBreakdown;
}

interface PhaseContext {
  cp: ControlPlane;
  http: KubeHttp;
  flags: Flags;
  kubeconfig: string;
  dir: string;
  auditLog: string;
  track: (c: ChildOperator | undefined) => void;
}

async function runPhase(mode: Mode, n: number, ctx: PhaseContext): Promise<PhaseResult> {
  const { http, flags } = ctx;
  const label = `${mode === 'simulated' ? 'SIMULATED ' : ''}N=${n}`;
  const ns = mode === 'simulated' ? `bench-sim-${n}` : `bench-${n}`;
  await apiOk(http, 'POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  let sim: SimNode | undefined;
  if (mode === 'simulated') {
    sim = await startSimNode({ kubeConfig: ctx.cp.kubeConfig, http, namespace: ns, ipPrefix: flags.simIpPrefix, log: createLogger('sim-node', process.env.LOG_LEVEL ?? 'warn') });
    progress(`${label}: simulated node started (pods on ${flags.simIpPrefix.join('.')}.x.y, StorageClass ${SIM_STORAGE_CLASS})`);
  }
  const logFile = join(ctx.dir, `operator-${mode}-${n}.log`);
  const diagDir = join(ctx.dir, `diag-${mode}-${n}`);
  mkdirSync(diagDir, { recursive: true });
  const op = new SupervisedOperator(label, () => startOperator(ctx.kubeconfig, flags, logFile, diagDir, workersFor(mode, flags)), ctx.track);
  try {
    // Wait until it leads (workers started: the reconcile metrics exist).
    const leadDeadline = Date.now() + 90_000;
    while (!(await op.leading())) {
      if (Date.now() > leadDeadline) throw new Error(`operator for ${label} did not start its workers within 90 s`);
      await sleep(200);
    }
    await sleep(3_000); // let start-up garbage settle before the idle figures
    const idle = memory(op.pid, await op.current());
    progress(`${label}: operator pid ${op.pid} leading (idle: RSS ${idle.rssMiB?.toFixed(0)} MiB, heap ${idle.heapUsedMiB.toFixed(1)} MiB); creating ${n} EventLogs`);

    const before = await op.samples();
    const t0 = performance.now();
    const evlPath = `/apis/eventlog.dev/v1alpha1/namespaces/${ns}/eventlogs`;
    const names = Array.from({ length: n }, (_, i) => `log-${String(i).padStart(4, '0')}`);
    const storage = { size: '16Mi', retentionPolicy: 'Delete', ...(mode === 'simulated' ? { storageClassName: SIM_STORAGE_CLASS } : {}) };
    // Create in small parallel batches (as an apply of many manifests would).
    for (let i = 0; i < names.length; i += 10) {
      await Promise.all(names.slice(i, i + 10).map((name) => apiOk(http, 'POST', evlPath, { apiVersion: 'eventlog.dev/v1alpha1', kind: 'EventLog', metadata: { name }, spec: { storage } })));
    }
    const tLastCreate = performance.now();
    progress(`${label}: ${n} EventLogs created in ${((tLastCreate - t0) / 1000).toFixed(1)} s`);
    let lastReport = 0;
    let readyCount = 0;
    const deadline = Date.now() + flags.readyTimeout;
    // Readiness from a watch of the namespace's EventLogs (a list of 1000 every second would load the API server).
    const evls = new Watcher<Evl & { metadata: { name: string } }>({ source: httpListWatch(http, { group: 'eventlog.dev', version: 'v1alpha1', plural: 'eventlogs', namespace: ns }), freeze: false }).start();
    try {
      for (;;) {
        readyCount = evls.hasSynced() ? evls.list().filter(isReady).length : 0;
        if (readyCount === n) break;
        if (Date.now() > deadline) {
          progress(`${label}: only ${readyCount}/${n} EventLogs Ready after ${flags.readyTimeout / 1000} s (--ready-timeout); measuring the steady window anyway`);
          break;
        }
        if (performance.now() - lastReport > 10_000) {
          lastReport = performance.now();
          progress(`${label}: ${readyCount}/${n} Ready after ${((performance.now() - t0) / 1000).toFixed(0)} s`);
          await op.samples(); // keep a recent scrape, in case the process exits
        }
        await sleep(250);
      }
    } finally {
      await evls.stop();
    }
    const tReady = performance.now();
    const readySeconds = (tReady - t0) / 1000;
    const atReady = await op.samples();
    const reconciles = sum(atReady, 'controller_runtime_reconcile_total') - sum(before, 'controller_runtime_reconcile_total');
    const p99 = quantileBetween(0.99, buckets(before, 'controller_runtime_reconcile_time_seconds', {}), buckets(atReady, 'controller_runtime_reconcile_time_seconds', {}));
    progress(`${label}: ${readyCount === n ? 'all' : `${readyCount}/${n}`} Ready in ${readySeconds.toFixed(1)} s (${reconciles} reconciles, ${(reconciles / n).toFixed(1)} per EventLog); ${readyCount === n ? 'steady-state' : 'measurement (not steady: still converging)'} window of ${flags.steady / 1000} s`);

    const restartsBeforeSteady = op.restarts.length;
    const simPolls0 = sim?.polls;
    const s0 = Date.now();
    await sleep(flags.steady);
    const s1 = Date.now();
    const simPolls1 = sim?.polls;
    const afterSteady = await op.samples();
    const steadyMem = memory(op.pid, await op.current());
    const hwm = procStatusKb(op.pid, 'VmHWM');
    await sleep(3_000); // let the audit log catch up with the window's last requests
    const audit = readFileSync(ctx.auditLog, 'utf8');
    const steadyWrites = countWrites(audit, OPERATOR_USER, s0, s1);
    const steadyRequests = countRequests(audit, OPERATOR_USER, s0, s1);
    if (op.restarts.length > restartsBeforeSteady) progress(`${label}: the operator restarted during the steady window: its requests include a fresh start`);
    const heap = flags.heapSnapshot ? await takeHeapSnapshot(op, diagDir, label) : undefined;
    const leaseLosses = readFileSync(logFile, 'utf8').split('\n').filter((l) => l.includes('"leadership lost: stopping"')).length;
    const result: PhaseResult = {
      mode,
      n,
      workers: workersFor(mode, flags),
      readySeconds,
      readyAfterLastCreateSeconds: (tReady - tLastCreate) / 1000,
      createSeconds: (tLastCreate - t0) / 1000,
      reconciles,
      p99Seconds: p99,
      idle,
      steady: steadyMem,
      peakRssMiB: hwm !== undefined ? hwm / 1024 : undefined,
      steadySeconds: (s1 - s0) / 1000,
      steadyWrites,
      steadyRequests,
      steadyReconciles: sum(afterSteady, 'controller_runtime_reconcile_total') - sum(atReady, 'controller_runtime_reconcile_total'),
      steadyPolls: afterSteady.some((x) => x.name === 'eventlog_status_polls_total') ? sum(afterSteady, 'eventlog_status_polls_total') - sum(atReady, 'eventlog_status_polls_total') : undefined,
      steadySimPolls: simPolls0 !== undefined && simPolls1 !== undefined ? simPolls1 - simPolls0 : undefined,
      errors: sum(afterSteady, 'controller_runtime_reconcile_errors_total') - sum(before, 'controller_runtime_reconcile_errors_total'),
      cpu: {
        converge: sum(atReady, 'process_cpu_seconds_total') - sum(before, 'process_cpu_seconds_total'),
        steady: sum(afterSteady, 'process_cpu_seconds_total') - sum(atReady, 'process_cpu_seconds_total'),
        gcConverge: sum(atReady, 'nodejs_gc_duration_seconds_sum') - sum(before, 'nodejs_gc_duration_seconds_sum'),
        gcSteady: sum(afterSteady, 'nodejs_gc_duration_seconds_sum') - sum(atReady, 'nodejs_gc_duration_seconds_sum'),
      },
      events: eventDecisions(before, atReady),
      deferred: sum(atReady, 'eventlog_controller_reconcile_deferred_total') - sum(before, 'eventlog_controller_reconcile_deferred_total'),
      conflicts: statusConflicts(audit, ns),
      triggers: {
        event: sum(atReady, 'eventlog_workqueue_handed_out_total', { trigger: 'event' }) - sum(before, 'eventlog_workqueue_handed_out_total', { trigger: 'event' }),
        requeue: sum(atReady, 'eventlog_workqueue_handed_out_total', { trigger: 'requeue' }) - sum(before, 'eventlog_workqueue_handed_out_total', { trigger: 'requeue' }),
      },
      restarts: [...op.restarts],
      leaseLosses,
      readyCount,
      heap,
    };
    progress(`${label}: steady requests ${JSON.stringify(Object.fromEntries(steadyRequests))}; RSS ${result.steady.rssMiB?.toFixed(0)} MiB; cleaning up`);
    progress(`${label} row: ${row(result)}`);

    // Clean up: the operator finalizes, GC takes PVC/pod/Service, the agent (or the simulated node) stops the pods.
    for (let i = 0; i < names.length; i += 20) {
      await Promise.all(names.slice(i, i + 20).map((name) => http.json('DELETE', `${evlPath}/${name}`, { timeoutMs: 30_000 }).catch(() => undefined)));
    }
    const goneDeadline = Date.now() + 5 * 60_000;
    for (;;) {
      const left = (await tryJson<{ items: unknown[] }>(http, 'GET', evlPath))?.items.length ?? -1;
      // Real pods are processes the agent must stop; simulated ones are only objects the
      // namespace deletion takes (the operator's part, finalizing, is done when no EventLog is left).
      const pods = mode === 'real' ? ((await tryJson<{ items: unknown[] }>(http, 'GET', `/api/v1/namespaces/${ns}/pods`))?.items.length ?? -1) : 0;
      if (left === 0 && pods === 0) break;
      if (Date.now() > goneDeadline) {
        progress(`${label}: cleanup incomplete after 5 min (${left} EventLogs, ${pods} pods left); going on`);
        break;
      }
      await sleep(Math.max(1_000, n * 2));
    }
    return result;
  } finally {
    await op.stop();
    await sim?.stop();
    await http.json('DELETE', `/api/v1/namespaces/${ns}`, { timeoutMs: 30_000 }).catch(() => undefined);
  }
}

/** 409s the operator got on EventLog status patches in namespace `ns` (a status computed from a stale cache). */
function statusConflicts(audit: string, ns: string): number {
  let n = 0;
  for (const line of audit.split('\n')) {
    if (!line.includes(OPERATOR_USER) || !line.includes('"ResponseComplete"') || !line.includes('"subresource":"status"') || !line.includes(`"namespace":"${ns}"`)) continue;
    const e = JSON.parse(line) as { responseStatus?: { code?: number }; objectRef?: { resource?: string } };
    if (e.objectRef?.resource === 'eventlogs' && e.responseStatus?.code === 409) n++;
  }
  return n;
}

// ---------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------

const f = (x: number | undefined, d = 1) => (x === undefined ? 'n/a' : x.toFixed(d));
const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

function breakdown(m: Map<string, number>): string {
  const parts = [...m.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}: ${v}`);
  return `${total(m)}${parts.length ? ` (${parts.join(', ')})` : ''}`;
}

/** One Markdown table row of a phase (also printed as progress right after the phase). */
function row(r: PhaseResult): string {
  const perSecond = (x: number) => (r.steadySeconds > 0 ? x / r.steadySeconds : 0);
  return [
    '',
    `${r.mode === 'simulated' ? '**simulated** pods' : 'real pods'}, ${r.workers} workers`,
    r.n,
    r.readyCount < r.n ? `> ${f(r.readySeconds)} s (${r.readyCount}/${r.n} Ready)` : `${f(r.readySeconds)} s / ${f(r.readyAfterLastCreateSeconds)} s`,
    `${r.reconciles} (${f(r.reconciles / r.n)})`,
    r.p99Seconds === undefined ? 'n/a' : `${(r.p99Seconds * 1000).toFixed(0)} ms`,
    `${f(r.steady.rssMiB, 0)} MiB (${f(r.peakRssMiB, 0)})`,
    `${f(r.steady.heapUsedMiB, 1)} MiB`,
    `${f(perSecond(total(r.steadyRequests)), 1)} (writes: ${total(r.steadyWrites)} in ${f(r.steadySeconds, 0)} s)`,
    r.steadyPolls === undefined ? 'n/a' : f(perSecond(r.steadyPolls), 1),
    r.errors,
    `${r.leaseLosses} / ${r.restarts.length}`,
    '',
  ].join(' | ').trim();
}

function table(results: PhaseResult[]): string {
  return [
    '| pods, operator workers | N | all Ready after first / last create | reconciles to converge (per EventLog) | p99 reconcile | operator RSS steady (peak) | V8 heap used | API requests/s, steady | polls/s, steady | reconcile errors | Lease lost / restarts |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
    ...results.map(row),
  ].join('\n');
}

function details(r: PhaseResult): string {
  const per = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? 'n/a' : `${(((a - b) * 1024) / r.n).toFixed(0)} KiB`);
  const lines = [
    `### ${r.mode === 'simulated' ? 'SIMULATED log pods' : 'real log pods'}, N = ${r.n}`,
    '',
    `- created in ${f(r.createSeconds)} s; all Ready ${f(r.readySeconds)} s after the first create, ${f(r.readyAfterLastCreateSeconds)} s after the last`,
    `- memory idle (0 EventLogs): RSS ${f(r.idle.rssMiB, 0)} MiB, V8 heap used ${f(r.idle.heapUsedMiB)} MiB / total ${f(r.idle.heapTotalMiB)} MiB, external ${f(r.idle.externalMiB)} MiB`,
    `- memory steady (${r.n} EventLogs): RSS ${f(r.steady.rssMiB, 0)} MiB (peak ${f(r.peakRssMiB, 0)}), V8 heap used ${f(r.steady.heapUsedMiB)} MiB / total ${f(r.steady.heapTotalMiB)} MiB, external ${f(r.steady.externalMiB)} MiB`,
    `- RSS by mapping, idle -> steady: file-backed (node binary, libraries) ${f(r.idle.rssByMapping?.file, 0)} -> ${f(r.steady.rssByMapping?.file, 0)} MiB, malloc [heap] ${f(r.idle.rssByMapping?.malloc, 0)} -> ${f(r.steady.rssByMapping?.malloc, 0)} MiB, other anonymous (V8 heap, stacks) ${f(r.idle.rssByMapping?.anon, 0)} -> ${f(r.steady.rssByMapping?.anon, 0)} MiB`,
    `- growth per EventLog: RSS ${per(r.steady.rssMiB, r.idle.rssMiB)}, V8 heap used ${per(r.steady.heapUsedMiB, r.idle.heapUsedMiB)}`,
    `- operator CPU: ${f(r.cpu.converge)} s while converging (GC pauses ${f(r.cpu.gcConverge)} s), ${f(r.cpu.steady)} s in the steady window (GC pauses ${f(r.cpu.gcSteady)} s)`,
    `- reconciles while converging by trigger: ${r.triggers.event} from watch events, ${r.triggers.requeue} from requeue timers (poll interval, retries)${r.triggers.event + r.triggers.requeue === 0 ? ' (not counted by this build)' : ''}`,
    `- watch events while converging: ${r.events.size ? breakdown(r.events) : 'not counted by this build'}; reconciles held back for own writes: ${r.deferred}; status patches refused 409: ${r.conflicts}`,
    `- steady window ${f(r.steadySeconds, 0)} s: ${r.steadyReconciles} reconciles, ${r.steadyPolls ?? 'n/a'} polls${r.steadySimPolls !== undefined ? ` (the simulated pods answered ${r.steadySimPolls})` : ''}; API requests by verb: ${breakdown(r.steadyRequests)}`,
  ];
  if (r.heap) lines.push('', `Heap snapshot at the end of the steady window (${r.mode === 'simulated' ? 'simulated pods, ' : ''}N = ${r.n}):`, '', breakdownTable(r.heap));
  return lines.join('\n');
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
      else progress(`kept ${dir} (operator logs, audit log, heap snapshots)`);
    })());
  const onSignal = () => {
    progress('interrupted: cleaning up');
    void stopAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    if (flags.operator === 'dist' && !flags.operatorDir) {
      progress('building dist/ (npm run build: what the image ships)');
      const b = spawnSync(join(repoRoot, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json'], { cwd: repoRoot, encoding: 'utf8' });
      if (b.status !== 0 || !existsSync(join(repoRoot, 'dist/bin/eventlog-operator.js'))) throw new Error(`npm run build failed: ${b.stdout}${b.stderr}`);
    }
    progress(`starting a control plane${flags.n.length ? ', the node agent' : ''} and the CRD in ${dir}`);
    cp = await startControlPlane({
      dataDir: join(dir, 'cluster'),
      etcdUnsafeNoFsync: true,
      log,
      handleSignals: false,
      extraApiServerArgs: [
        `--audit-policy-file=${auditPolicy}`,
        `--audit-log-path=${auditLog}`,
        '--audit-log-format=json',
        '--audit-log-mode=batch',
        '--audit-log-batch-max-wait=1s',
        // One Service per EventLog: the local cluster's /24 holds only 254 (a later flag wins).
        '--service-cluster-ip-range=10.0.0.0/20',
      ],
    });
    const http = new KubeHttp(cp.kubeConfig);
    await installEventLogCrd(cp.kubeConfig, 'bench-operator');
    const kubeconfig = join(dir, 'operator.kubeconfig');
    await operatorKubeconfig(cp, http, kubeconfig);
    const results: PhaseResult[] = [];
    const ctx: PhaseContext = { cp, http, flags, kubeconfig, dir, auditLog, track: (c) => (operator = c) };
    if (flags.n.length > 0) {
      agent = await startNodeAgent({ kubeConfig: cp.kubeConfig, dataDir: join(dir, 'node'), log, podIpPrefix: flags.podIpPrefix });
      for (const n of flags.n) results.push(await runPhase('real', n, ctx));
      // The agent binds every pending pod: it must be gone before simulated pods exist.
      await agent.stop();
      agent = undefined;
    }
    for (const n of flags.sim) results.push(await runPhase('simulated', n, ctx));
    const seconds = ((Date.now() - started.getTime()) / 1000).toFixed(0);
    process.stdout.write(
      [
        `bench:operator ${started.toISOString().slice(0, 16)} UTC: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.versions.node}; operator from ${flags.operatorDir ? `${flags.operatorDir} ` : ''}${flags.operator === 'dist' ? 'dist/ (node dist/bin/eventlog-operator.js)' : 'src/ (node src/cli.ts operator)'}${flags.memoryLimit === 'none' ? ', no memory limit' : `, V8 heap sized as in the Deployment's ${flags.memoryLimit} limit (${heapFlagsForLimit(Number.parseInt(flags.memoryLimit, 10)).join(' ')})`}${flags.nodeFlags.length ? `, node ${flags.nodeFlags.join(' ')}` : ''}${Object.keys(flags.operatorEnv).length ? ` and env ${Object.entries(flags.operatorEnv).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''}: ${flags.workers} workers${flags.simWorkers !== '' ? ` (simulated phases: ${flags.simWorkers})` : ''}, poll interval ${flags.pollInterval}, leader election on; steady window ${flags.steady / 1000} s; run took ${seconds} s`,
        '',
        table(results),
        '',
        ...results.map((r) => `${details(r)}\n`),
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
