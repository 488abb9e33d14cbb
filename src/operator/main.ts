/**
 * `eventlog operator`: the operator process. Parses the configuration
 * (src/operator/config.ts), connects to the cluster, and runs the Manager with the
 * EventLog controller until SIGTERM/SIGINT.
 *
 * Exit codes: 0 after a graceful stop (signal), 1 on a runtime failure or lost
 * leadership (the Deployment restarts the process), 2 on a usage error (one line:
 * `eventlog operator: <msg>`).
 *
 * Leader election uses a Lease in `--leader-election-namespace` (env POD_NAMESPACE);
 * that namespace must exist (the operator does not create it).
 *
 * Memory: the official Kubernetes client (`@kubernetes/client-node`) is not loaded
 * unless the kubeconfig needs it (exec plugins, auth providers, proxies: see
 * src/runtime/kubeconfig.ts); everything goes through `KubeHttp`, and server-side
 * applies through `ServerSideApplier` (no discovery). docs/benchmarks.md has the figures.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { createLogger, type Logger } from '../common/logger.ts';
import { ServerSideApplier } from '../runtime/apply.ts';
import { KubeHttp, type KubeHttpOptions } from '../runtime/kube-http.ts';
import { loadKubeAccess, type KubeAccess } from '../runtime/kubeconfig.ts';
import { ConfigError, parseOperatorConfig, usage, type OperatorConfig } from './config.ts';
import { eventLogController } from './eventlog-controller.ts';
import { EventLogMetrics } from './eventlog-metrics.ts';
import { pollServerStatus } from './poller.ts';
import { Manager } from '../runtime/manager.ts';
import { EventRecorder } from '../runtime/recorder.ts';

export const REPORTING_CONTROLLER = 'eventlog.dev/eventlog-operator';

export interface MainIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  env: NodeJS.ProcessEnv;
  /** Where SIGTERM/SIGINT come from (tests pass an EventEmitter). */
  signals?: { once(signal: 'SIGTERM' | 'SIGINT', fn: () => void): unknown; off?(signal: 'SIGTERM' | 'SIGINT', fn: () => void): unknown };
  /** Logger override (tests: silent). */
  log?: Logger;
  /** Called with the running manager (tests: to read its URLs). */
  onStarted?: (manager: Manager) => void;
  /** Sees every API request the operator makes (tests: the RBAC comparison). */
  onRequest?: KubeHttpOptions['onRequest'];
}

/**
 * `--kubeconfig`, else in-cluster, else the default (KUBECONFIG, ~/.kube/config). The
 * light loader where it can, the official client's KubeConfig where it must.
 */
export async function loadKubeConfig(config: Pick<OperatorConfig, 'kubeconfig'>, env: NodeJS.ProcessEnv): Promise<KubeAccess> {
  return (await loadKubeAccess(config.kubeconfig, env)).access;
}

export async function main(argv: string[], io: MainIo = { stdout: process.stdout, stderr: process.stderr, env: process.env, signals: process }): Promise<number> {
  let config: OperatorConfig | undefined;
  try {
    config = parseOperatorConfig(argv, io.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr.write(`eventlog operator: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  if (!config) {
    io.stdout.write(usage());
    return 0;
  }
  const log = io.log ?? createLogger('eventlog-operator', config.logLevel);
  let kc: KubeAccess;
  try {
    kc = await loadKubeConfig(config, io.env);
    if (!kc.getCurrentCluster()) throw new Error('no current cluster in the kubeconfig');
  } catch (error) {
    io.stderr.write(`eventlog operator: cannot load a kubeconfig: ${(error as Error).message}\n`);
    return 2;
  }

  const identity = `${hostname()}_${randomBytes(4).toString('hex')}`;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // One API client for everything (watches, Lease, applies, status, Events).
  const http = new KubeHttp(kc, io.onRequest ? { onRequest: io.onRequest } : {});
  const recorder = new EventRecorder({ http, controller: REPORTING_CONTROLLER, instance: identity, log });
  const metrics = EventLogMetrics.for(registry);
  const controller = eventLogController({
    http,
    applier: new ServerSideApplier(http),
    recorder,
    config: { defaultImage: config.defaultImage, pollInterval: config.pollInterval, statusCounterInterval: config.statusCounterInterval, operatorNamespace: config.operatorNamespace, storageWarningPercent: config.storageWarningPercent, maxConcurrentRollouts: config.maxConcurrentRollouts },
    metrics,
    // Counted, so the load on the log servers is visible (eventlog_status_polls_total).
    poll: async (podIP, port, opts) => {
      const observation = await pollServerStatus(podIP, port, opts);
      metrics.countPoll(observation);
      return observation;
    },
  });
  const manager = new Manager({
    kubeConfig: kc,
    http,
    controller,
    registry,
    log,
    namespaces: config.namespaces,
    workers: config.workers,
    ...(config.leaderElect ? { leaderElection: { namespace: config.leaderElectionNamespace, name: config.leaderElectionId, identity } } : {}),
    probe: config.probeAddr,
    metrics: config.metricsAddr,
    shutdownTimeoutMs: config.shutdownTimeout,
  });

  const signals = io.signals;
  let signalled: string | undefined;
  const onSignal = (name: 'SIGTERM' | 'SIGINT') => () => {
    signalled = name;
    log.info({ signal: name }, 'stopping');
    void manager.stop();
  };
  const onTerm = onSignal('SIGTERM');
  const onInt = onSignal('SIGINT');
  signals?.once('SIGTERM', onTerm);
  signals?.once('SIGINT', onInt);
  log.info(
    { identity, namespaces: config.namespaces.length > 0 ? config.namespaces : 'all', leaderElection: config.leaderElect ? `${config.leaderElectionNamespace}/${config.leaderElectionId}` : false, workers: config.workers },
    'starting the EventLog operator',
  );
  const running = manager.run();
  io.onStarted?.(manager);
  try {
    await running;
    log.info({ signal: signalled }, 'operator stopped');
    return 0;
  } catch (error) {
    log.error({ err: error }, 'operator failed');
    await manager.stop().catch(() => undefined);
    io.stderr.write(`eventlog operator: ${(error as Error).message}\n`);
    return 1;
  } finally {
    signals?.off?.('SIGTERM', onTerm);
    signals?.off?.('SIGINT', onInt);
  }
}
