/**
 * `npm run dev` (`node dev/cli.ts`): a local playground on one machine — a real
 * control plane (etcd, kube-apiserver, kube-controller-manager), the node agent that
 * runs log pods as local processes, the EventLog CRD, the operator (in-process) and a
 * sample EventLog `playground/demo`. Everything
 * lives under one directory (default `.dev/`) that the next run reuses, so the
 * cluster's objects and the logs' data survive a restart of the playground.
 *
 * Ctrl-C (SIGINT) or SIGTERM stops the agent's processes and the control plane.
 */
import { resolve, join } from 'node:path';
import { parseArgs } from 'node:util';
import type { KubernetesObject } from '@kubernetes/client-node';
import { z } from 'zod';
import { createLogger } from '../src/common/logger.ts';
import { startControlPlane } from './cluster/controlplane.ts';
import { startNodeAgent } from './agent/agent.ts';
import { ManifestApplier } from '../src/kube/apply.ts';
import { installEventLogCrd } from './kube/eventlog-crd.ts';
import { KubeHttp } from '../src/runtime/kube-http.ts';
import { eventLogController } from '../src/operator/eventlog-controller.ts';
import { EventLogMetrics } from '../src/operator/eventlog-metrics.ts';
import { Manager } from '../src/runtime/manager.ts';
import { EventRecorder } from '../src/runtime/recorder.ts';
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { KubeConfig } from '@kubernetes/client-node';

const FIELD_MANAGER = 'eventlog-playground';

const Flags = z.object({
  dir: z.string().min(1),
  help: z.boolean(),
});

const HELP = `usage: npm run dev -- [--dir DIR]   (node dev/cli.ts [--dir DIR])

Starts a local Kubernetes control plane and a node agent that runs log pods as local
processes, applies the EventLog CRD, runs the operator in-process, applies a sample
EventLog (playground/demo) and prints how to look at it.
  --dir DIR   where the cluster and the logs keep their data (default .dev; reused)
Ctrl-C stops everything; the data stays for the next run.
`;

/**
 * The sample the playground applies: a namespace and an EventLog. The operator
 * (running in-process) creates the PVC `demo-data`, the pod `demo-0` and the Service.
 */
export function sampleObjects(namespace: string): KubernetesObject[] {
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
    {
      apiVersion: 'eventlog.dev/v1alpha1',
      kind: 'EventLog',
      metadata: { name: 'demo', namespace },
      spec: { storage: { size: '1Gi' } },
    } as KubernetesObject,
  ];
}

/** The operator, in-process: all namespaces, no leader election, probes/metrics on free loopback ports. */
function startOperator(kubeConfig: KubeConfig, log: ReturnType<typeof createLogger>): { manager: Manager; running: Promise<void> } {
  const http = new KubeHttp(kubeConfig);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const manager = new Manager({
    kubeConfig,
    controller: eventLogController({
      http,
      applier: ManifestApplier.forConfig(kubeConfig),
      recorder: new EventRecorder({ http, controller: 'eventlog.dev/eventlog-operator', instance: 'playground', log }),
      config: { defaultImage: 'eventlog:dev', pollInterval: 10_000, statusCounterInterval: 30_000 },
      metrics: EventLogMetrics.for(registry),
    }),
    registry,
    log: log.child({ component: 'operator' }),
    namespaces: [],
    workers: 2,
    probe: { host: '127.0.0.1', port: 0 },
    metrics: { host: '127.0.0.1', port: 0 },
    shutdownTimeoutMs: 10_000,
  });
  const running = manager.run();
  running.catch((error: unknown) => log.error({ err: error }, 'playground: the operator stopped with an error'));
  return { manager, running };
}

async function applyAll(api: ManifestApplier, objects: KubernetesObject[]): Promise<void> {
  for (const object of objects) await api.apply(object, FIELD_MANAGER, { force: true });
}

export async function main(argv: string[]): Promise<number> {
  let flags: z.infer<typeof Flags>;
  try {
    const { values } = parseArgs({ args: argv, options: { dir: { type: 'string', default: '.dev' }, help: { type: 'boolean', default: false } } });
    flags = Flags.parse(values);
  } catch (error) {
    process.stderr.write(`eventlog dev: ${(error as Error).message.split('\n')[0]}\n`);
    return 2;
  }
  if (flags.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const log = createLogger('playground');
  const dir = resolve(flags.dir);
  const t0 = performance.now();
  // The playground owns the signals: it stops the agent before the control plane.
  const controlPlane = await startControlPlane({ dataDir: join(dir, 'cluster'), log, handleSignals: false });
  let agent: Awaited<ReturnType<typeof startNodeAgent>> | undefined;
  let operator: ReturnType<typeof startOperator> | undefined;
  const stopAll = async () => {
    // Operator first (no reconcile races the shutdown), then pods, then the cluster.
    await operator?.manager.stop();
    await operator?.running.catch(() => undefined);
    await agent?.stop();
    await controlPlane.stop();
  };
  try {
    // Pods get 127.2.x.y addresses, apart from the test suite's 127.1.x.y, so the
    // playground and the tests can run side by side.
    agent = await startNodeAgent({ kubeConfig: controlPlane.kubeConfig, dataDir: join(dir, 'node'), log, podIpPrefix: [127, 2] });
    const api = ManifestApplier.forConfig(controlPlane.kubeConfig);
    await installEventLogCrd(controlPlane.kubeConfig, 'eventlog-playground');
    operator = startOperator(controlPlane.kubeConfig, log);
    await applyAll(api, sampleObjects('playground'));
  } catch (error) {
    await stopAll();
    throw error;
  }
  const seconds = ((performance.now() - t0) / 1000).toFixed(1);
  process.stdout.write(
    [
      `playground ready in ${seconds}s: control plane ${controlPlane.server}, data in ${dir}`,
      '',
      `  export KUBECONFIG=${controlPlane.kubeconfigPath}`,
      '  kubectl get nodes,pv',
      '  kubectl -n playground get evl,pods,pvc,svc -o wide',
      '  kubectl -n playground describe evl demo',
      "  TOKEN=$(kubectl -n playground get secret demo-token -o jsonpath='{.data.token}' | base64 -d)",
      "  curl -s -H \"Authorization: Bearer $TOKEN\" http://$(kubectl -n playground get evl demo -o jsonpath='{.status.pod.ip}'):8080/status",
      '',
      'Ctrl-C stops everything; the data stays for the next run.',
      '',
    ].join('\n'),
  );
  await new Promise<void>((resolveSignal) => {
    process.once('SIGINT', () => resolveSignal());
    process.once('SIGTERM', () => resolveSignal());
  });
  process.stdout.write('stopping the playground...\n');
  await stopAll();
  return 0;
}
