/**
 * A local Kubernetes control plane for tests and `npm run dev`, like Go's envtest
 * plus kube-controller-manager: etcd, kube-apiserver and (optionally)
 * kube-controller-manager as child processes on random free loopback ports.
 *
 * - TLS everywhere it matters: a local CA (pki.ts) signs the API server's serving
 *   certificate; the kubeconfig trusts that CA (no insecure-skip-tls-verify).
 * - Admin credential: a client certificate in the `system:masters` group.
 * - Service-account tokens: an RSA signing key pair, so the TokenRequest API
 *   works; authorization is `Node,RBAC`, so a token is allowed exactly what RBAC
 *   binds to its service account.
 * - kube-controller-manager runs the controllers that need no cloud and no nodes
 *   (garbage collector, namespace, service accounts, PV binding/protection, ...;
 *   see DEFAULT_CONTROLLERS) with per-controller service-account credentials and
 *   RBAC, as in a real cluster.
 * - Stopped by `stop()`, by SIGINT/SIGTERM of this process, and by the reaper
 *   (process.ts) if this process dies: no leaked processes or ports.
 *
 * Data dir layout: pki/ (certs, keys), etcd/, logs/<component>.log,
 * kubeconfig (admin), controller-manager.kubeconfig.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { silentLogger, type Logger } from '../../src/common/logger.ts';
import { resolveBinaries, type BinaryName, type BinaryPaths } from './binaries.ts';
import { writeKubeconfig } from './kubeconfig.ts';
import { ADMIN_USER, CONTROLLER_MANAGER_USER, ensurePki, type Pki } from './pki.ts';
import { freePorts, LOOPBACK } from './ports.ts';
import { ComponentProcess, describeExit, Reaper, spawnComponent } from './process.ts';
import { setTimeout as sleep } from 'node:timers/promises';

/** Controllers that work without a cloud provider and without kubelets. */
export const DEFAULT_CONTROLLERS: readonly string[] = [
  'garbage-collector-controller', // owner references
  'namespace-controller', // namespace deletion actually deletes the content
  'serviceaccount-controller', // the `default` ServiceAccount in every namespace
  'serviceaccount-token-controller', // legacy Secret-based tokens
  'root-ca-certificate-publisher-controller', // kube-root-ca.crt ConfigMap per namespace
  'clusterrole-aggregation-controller', // admin/edit/view aggregate labelled ClusterRoles
  'persistentvolume-binder-controller', // binds PVCs to PVs
  'persistentvolume-protection-controller', // removes the pv-protection finalizer
  'persistentvolumeclaim-protection-controller', // removes the pvc-protection finalizer
  'endpointslice-controller', // Service -> EndpointSlices from pod IPs
  'endpoints-controller',
];
// Deliberately not run: node-lifecycle / taint-eviction (they would taint and
// evict pods of a node agent that misses a heartbeat), pod-garbage-collector,
// cloud and IPAM controllers, the workload controllers (Deployment, Job, ...):
// pass `controllers` to add any of them.

export const SERVICE_CLUSTER_IP_RANGE = '10.0.0.0/24';
export const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';

export interface ControlPlaneOptions {
  /**
   * Where certificates, etcd data, logs and kubeconfigs live. Given: kept on
   * stop and reused by the next start (same CA, same etcd content). Absent: a
   * fresh temporary directory, removed on stop.
   */
  dataDir?: string;
  log?: Logger;
  /** Start kube-controller-manager (garbage collection etc.). Default true. */
  withControllerManager?: boolean;
  /** kube-controller-manager --controllers. Default DEFAULT_CONTROLLERS. */
  controllers?: readonly string[];
  /** Stop on SIGINT/SIGTERM of this process (then re-raise the signal if nothing else handles it). Default true. */
  handleSignals?: boolean;
  /** Give up starting after this long. Default 120 s (2 shared cores, cold page cache). */
  startTimeoutMs?: number;
  /** etcd --unsafe-no-fsync. Default: true for a temporary data dir, false for a given one. */
  etcdUnsafeNoFsync?: boolean;
  /** Override binary locations (default: resolveBinaries()). */
  binaries?: Partial<BinaryPaths>;
  /** Extra kube-apiserver flags, e.g. ['--feature-gates=...']. */
  extraApiServerArgs?: readonly string[];
}

export interface ControlPlanePorts {
  apiserver: number;
  etcdClient: number;
  etcdPeer: number;
}

export interface ControlPlane {
  /** https://127.0.0.1:PORT */
  server: string;
  /** Admin kubeconfig file (client certificate in system:masters). */
  kubeconfigPath: string;
  /** The same admin kubeconfig, loaded. */
  kubeConfig: KubeConfig;
  dataDir: string;
  /** PEM file of the CA that signs the serving cert (for clients built by hand). */
  caCertPath: string;
  ports: ControlPlanePorts;
  /** Full output of each component. */
  logFiles: Partial<Record<BinaryName, string>>;
  /** Wall time start-up took, ms. */
  startupMs: number;
  /** Pids of every process this control plane runs (components and the reaper). */
  pids(): number[];
  /**
   * Stops kube-apiserver alone (SIGTERM, grace, SIGKILL) and starts it again with the
   * same flags: same port, certificates and etcd, so clients reconnect to the same URL
   * and every object survives. Resolves when /readyz is ok again. For tests of
   * clients that must survive an API server restart (watches resume, no lost update).
   */
  restartApiServer(opts?: { downMs?: number }): Promise<void>;
  /** Stops everything (controller manager, API server, etcd) and waits for exit. Idempotent. */
  stop(): Promise<void>;
}

/** Thrown when a component cannot start; carries the component's log tail. */
export class ControlPlaneStartError extends Error {
  readonly component: string;
  readonly tail: string;
  constructor(component: string, problem: string, tail: string, logFile?: string, options?: { cause?: unknown }) {
    super(
      `control plane: ${component} ${problem}`
        + (tail ? `\n--- last lines of ${component}'s output${logFile ? ` (${logFile})` : ''} ---\n${tail}\n---` : ''),
      options,
    );
    this.name = 'ControlPlaneStartError';
    this.component = component;
    this.tail = tail;
  }
}

// --- process-wide signal handling ------------------------------------------------

const running = new Set<ControlPlane>();
let signalHandlersInstalled = false;

function onSignal(signal: NodeJS.Signals): void {
  const all = [...running];
  void Promise.allSettled(all.map((cp) => cp.stop())).finally(() => {
    uninstallSignalHandlers();
    // If nobody else handles the signal, die of it as the default action would.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  });
}
const onSigint = () => onSignal('SIGINT');
const onSigterm = () => onSignal('SIGTERM');

function installSignalHandlers(): void {
  if (signalHandlersInstalled) return;
  signalHandlersInstalled = true;
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
}

function uninstallSignalHandlers(): void {
  if (!signalHandlersInstalled) return;
  signalHandlersInstalled = false;
  process.off('SIGINT', onSigint);
  process.off('SIGTERM', onSigterm);
}

// --- helpers -----------------------------------------------------------------------


interface TlsMaterial {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/** GET over HTTPS with the admin client certificate; never throws for HTTP statuses. */
function apiGet(port: number, path: string, tls: TlsMaterial): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: LOOPBACK, port, path, method: 'GET', ...tls, agent: false, timeout: 5_000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => { body += c; });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Polls `probe` until it returns true. Fails early (with the log tail) if the
 * component exits, and at the deadline with the last probe result.
 */
async function waitUntil(
  what: string,
  proc: ComponentProcess,
  deadline: number,
  probe: () => Promise<{ ok: boolean; detail: string }>,
): Promise<void> {
  let last = 'not probed yet';
  let delay = 50;
  for (;;) {
    if (!proc.running) {
      throw new ControlPlaneStartError(proc.name, `${describeExit(proc.exitInfo!)} while waiting for ${what}`, proc.tail(), proc.logFile);
    }
    try {
      const r = await probe();
      if (r.ok) return;
      last = r.detail;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) {
      throw new ControlPlaneStartError(proc.name, `not ready in time: ${what} (last result: ${last})`, proc.tail(), proc.logFile);
    }
    await sleep(delay);
    delay = Math.min(delay * 1.5, 500);
  }
}

const isPortClash = (err: unknown) =>
  err instanceof ControlPlaneStartError && /address already in use/i.test(err.tail);

// --- start -------------------------------------------------------------------------

export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const log = opts.log ?? silentLogger;
  const withCm = opts.withControllerManager ?? true;
  const t0 = performance.now();

  const needed: BinaryName[] = ['etcd', 'kube-apiserver', ...(withCm ? ['kube-controller-manager' as const] : [])];
  const missingOverride = needed.filter((b) => !opts.binaries?.[b]);
  const bins: BinaryPaths = {
    ...(missingOverride.length > 0 ? resolveBinaries(missingOverride) : ({} as BinaryPaths)),
    ...opts.binaries,
  } as BinaryPaths;

  const tempDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'eventlog-controlplane-')));
  try {
    await mkdir(join(dataDir, 'logs'), { recursive: true });
    const { pki, created } = await ensurePki(join(dataDir, 'pki'));
    log.info({ dataDir, pki: created ? 'created' : 'reused', ms: Math.round(performance.now() - t0) }, 'control plane: certificates ready');

    for (let attempt = 1; ; attempt++) {
      try {
        return await startOnce({ opts, log, bins, dataDir, tempDir, pki, withCm, t0 });
      } catch (err) {
        if (attempt < 3 && isPortClash(err)) {
          log.warn({ attempt, err: (err as Error).message.split('\n')[0] }, 'control plane: a port was taken meanwhile; retrying with new ports');
          continue;
        }
        throw err;
      }
    }
  } catch (err) {
    if (tempDir && !(err instanceof ControlPlaneStartError)) await rm(dataDir, { recursive: true, force: true });
    // On a start error a temporary data dir is kept: its logs/ has each component's full output.
    throw err;
  }
}

interface StartContext {
  opts: ControlPlaneOptions;
  log: Logger;
  bins: BinaryPaths;
  dataDir: string;
  tempDir: boolean;
  pki: Pki;
  withCm: boolean;
  t0: number;
}

async function startOnce(ctx: StartContext): Promise<ControlPlane> {
  const { opts, log, bins, dataDir, pki, withCm, t0 } = ctx;
  const deadline = Date.now() + (opts.startTimeoutMs ?? 120_000);
  const since = () => Math.round(performance.now() - t0);
  const [apiserverPort, etcdClient, etcdPeer] = (await freePorts(3)) as [number, number, number];
  const ports: ControlPlanePorts = { apiserver: apiserverPort, etcdClient, etcdPeer };
  const logFiles: Partial<Record<BinaryName, string>> = {};
  const components: ComponentProcess[] = [];
  const reaper = await Reaper.start();
  if (ctx.tempDir) reaper.removeDirOnReap(dataDir);
  const tls: TlsMaterial = {
    ca: readFileSync(pki.caCert),
    cert: readFileSync(pki.adminCert),
    key: readFileSync(pki.adminKey),
  };

  const start = async (name: BinaryName, args: string[]) => {
    const logFile = join(dataDir, 'logs', `${name}.log`);
    logFiles[name] = logFile;
    const proc = await spawnComponent({ name, command: bins[name], args, logFile, log, reaper });
    components.push(proc);
    log.info({ component: name, pid: proc.pid, logFile, ms: since() }, `control plane: ${name} started`);
    return proc;
  };

  const stopAll = async () => {
    // Reverse start order: controller manager, API server, etcd.
    for (const proc of [...components].reverse()) {
      await proc.stop(proc.name === 'etcd' ? 15_000 : 10_000);
    }
    await reaper.close();
  };

  try {
    // 1. etcd
    const etcdUrl = `http://${LOOPBACK}:${etcdClient}`;
    const peerUrl = `http://${LOOPBACK}:${etcdPeer}`;
    const noFsync = opts.etcdUnsafeNoFsync ?? ctx.tempDir;
    const etcd = await start('etcd', [
      '--name=eventlog',
      `--data-dir=${join(dataDir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=eventlog=${peerUrl}`,
      '--initial-cluster-state=new', // ignored when the data dir already holds a member
      '--log-level=warn',
      ...(noFsync ? ['--unsafe-no-fsync=true'] : []),
    ]);
    await waitUntil('etcd /health', etcd, deadline, async () => {
      const res = await fetch(`${etcdUrl}/health`, { signal: AbortSignal.timeout(2_000) });
      const body = await res.text();
      return { ok: res.ok && /"health":\s*"true"/.test(body), detail: `${res.status} ${body}` };
    });
    log.info({ ms: since() }, 'control plane: etcd healthy');

    // 2. kube-apiserver
    const server = `https://${LOOPBACK}:${apiserverPort}`;
    const kubeconfigPath = join(dataDir, 'kubeconfig');
    const kubeConfig = await writeKubeconfig(kubeconfigPath, {
      server,
      caCertFile: pki.caCert,
      clientCertFile: pki.adminCert,
      clientKeyFile: pki.adminKey,
      user: ADMIN_USER,
    });
    const apiserverArgs = [
      `--etcd-servers=${etcdUrl}`,
      `--bind-address=${LOOPBACK}`,
      `--advertise-address=${LOOPBACK}`,
      `--secure-port=${apiserverPort}`,
      `--cert-dir=${pki.dir}`,
      `--tls-cert-file=${pki.servingCert}`,
      `--tls-private-key-file=${pki.servingKey}`,
      `--client-ca-file=${pki.caCert}`,
      `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
      `--service-account-key-file=${pki.serviceAccountPub}`,
      `--service-account-signing-key-file=${pki.serviceAccountKey}`,
      `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
      '--authorization-mode=Node,RBAC',
      '--allow-privileged=true',
      // The `kubernetes` Service would get 127.0.0.1 as endpoint, which Endpoints
      // validation rejects (loopback): the reconciler would log an error every 10 s.
      '--endpoint-reconciler-type=none',
      '--enable-priority-and-fairness=false', // saves CPU; no multi-tenant load here
      '--profiling=false',
      ...(opts.extraApiServerArgs ?? []),
    ];
    const apiserverReady = (proc: ComponentProcess, until: number) =>
      waitUntil('kube-apiserver /readyz', proc, until, async () => {
        const r = await apiGet(apiserverPort, '/readyz', tls);
        return { ok: r.status === 200 && r.body.trim() === 'ok', detail: `${r.status} ${r.body.slice(0, 300)}` };
      });
    let apiserver = await start('kube-apiserver', apiserverArgs);
    await apiserverReady(apiserver, deadline);
    log.info({ server, ms: since() }, 'control plane: kube-apiserver ready');

    // 3. kube-controller-manager
    if (withCm) {
      const cmKubeconfig = join(dataDir, 'controller-manager.kubeconfig');
      await writeKubeconfig(cmKubeconfig, {
        server,
        caCertFile: pki.caCert,
        clientCertFile: pki.controllerManagerCert,
        clientKeyFile: pki.controllerManagerKey,
        user: CONTROLLER_MANAGER_USER,
      });
      const cm = await start('kube-controller-manager', [
        `--kubeconfig=${cmKubeconfig}`,
        '--secure-port=0', // no HTTPS endpoint: no port to allocate, nothing to leak
        '--leader-elect=false', // single instance; saves a lease write every 2 s
        '--use-service-account-credentials=true', // each controller acts with its own RBAC role
        `--service-account-private-key-file=${pki.serviceAccountKey}`,
        `--root-ca-file=${pki.caCert}`,
        `--controllers=${(opts.controllers ?? DEFAULT_CONTROLLERS).join(',')}`,
        '--profiling=false',
      ]);
      // Working controllers are visible: the serviceaccount controller creates
      // `default` in every namespace (also what pod admission needs).
      await waitUntil('kube-controller-manager (ServiceAccount default/default)', cm, deadline, async () => {
        const r = await apiGet(apiserverPort, '/api/v1/namespaces/default/serviceaccounts/default', tls);
        return { ok: r.status === 200, detail: `${r.status}` };
      });
      log.info({ ms: since() }, 'control plane: kube-controller-manager running');
    }

    let stopping: Promise<void> | undefined;
    const cp: ControlPlane = {
      server,
      kubeconfigPath,
      kubeConfig,
      dataDir,
      caCertPath: pki.caCert,
      ports,
      logFiles,
      startupMs: since(),
      pids: () => [...components.filter((c) => c.running).map((c) => c.pid), reaper.pid],
      restartApiServer: async ({ downMs = 0 } = {}) => {
        if (stopping) throw new Error('control plane: restartApiServer after stop()');
        const r0 = performance.now();
        await apiserver.stop(10_000);
        components.splice(components.indexOf(apiserver), 1);
        if (downMs > 0) await sleep(downMs);
        // Same flags: same port, serving cert and etcd. The log file starts afresh.
        apiserver = await start('kube-apiserver', apiserverArgs);
        // Keep the start order (etcd, API server, controller manager) for stopAll.
        components.splice(components.indexOf(apiserver), 1);
        components.splice(1, 0, apiserver);
        await apiserverReady(apiserver, Date.now() + (opts.startTimeoutMs ?? 120_000));
        log.info({ server, ms: Math.round(performance.now() - r0) }, 'control plane: kube-apiserver restarted');
      },
      stop: () => {
        stopping ??= (async () => {
          const s0 = performance.now();
          running.delete(cp);
          if (running.size === 0) uninstallSignalHandlers();
          await stopAll();
          if (ctx.tempDir) await rm(dataDir, { recursive: true, force: true });
          log.info({ ms: Math.round(performance.now() - s0) }, 'control plane: stopped');
        })();
        return stopping;
      },
    };
    running.add(cp);
    if (opts.handleSignals ?? true) installSignalHandlers();
    log.info({ server, kubeconfig: kubeconfigPath, ports, startupMs: cp.startupMs, pids: cp.pids() }, 'control plane: ready');
    return cp;
  } catch (err) {
    await stopAll().catch((e: unknown) => log.error({ err: e }, 'control plane: cleanup after a failed start failed'));
    throw err;
  }
}

/** True if `dir` looks like a data dir a previous start left (etcd data present). */
export function hasControlPlaneData(dir: string): boolean {
  return existsSync(join(dir, 'etcd', 'member'));
}
