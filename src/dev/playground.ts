/**
 * `npm run dev` / `eventlog dev`: a local playground on one machine — a real
 * control plane (etcd, kube-apiserver, kube-controller-manager), the node agent that
 * runs log pods as local processes, the EventLog CRD and a sample log. Everything
 * lives under one directory (default `.dev/`) that the next run reuses, so the
 * cluster's objects and the logs' data survive a restart of the playground.
 *
 * Ctrl-C (SIGINT) or SIGTERM stops the agent's processes and the control plane.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve, join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { createLogger } from '../common/logger.ts';
import { startControlPlane } from '../cluster/controlplane.ts';
import { startNodeAgent } from '../agent/agent.ts';
import { ManifestApplier } from '../kube/apply.ts';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FIELD_MANAGER = 'eventlog-playground';

const Flags = z.object({
  dir: z.string().min(1),
  help: z.boolean(),
});

const HELP = `usage: eventlog dev [--dir DIR]

Starts a local Kubernetes control plane and a node agent that runs log pods as local
processes, applies the EventLog CRD and a sample log, and prints how to look at it.
  --dir DIR   where the cluster and the logs keep their data (default .dev; reused)
Ctrl-C stops everything; the data stays for the next run.
`;

/** The sample the playground applies: a log server pod on a PVC, behind a Service. */
export function sampleObjects(namespace: string): KubernetesObject[] {
  const labels = { 'app.kubernetes.io/name': 'eventlog', 'app.kubernetes.io/instance': 'demo' };
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
    {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'demo-data', namespace, labels },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
    } as KubernetesObject,
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'demo', namespace, labels },
      spec: {
        containers: [
          {
            name: 'log',
            image: 'eventlog:dev',
            command: ['eventlog-server'],
            args: ['--data-dir', '/var/lib/eventlog', '--host', '$(POD_IP)', '--port', '8080'],
            env: [{ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }],
            ports: [{ name: 'http', containerPort: 8080 }],
            readinessProbe: { httpGet: { path: '/readyz', port: 8080 }, periodSeconds: 2 },
            livenessProbe: { httpGet: { path: '/healthz', port: 8080 }, periodSeconds: 10 },
            volumeMounts: [{ name: 'data', mountPath: '/var/lib/eventlog' }],
          },
        ],
        volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'demo-data' } }],
      },
    } as KubernetesObject,
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'demo', namespace, labels },
      spec: { selector: labels, ports: [{ name: 'http', port: 8080, targetPort: 'http' }] },
    } as KubernetesObject,
  ];
}

function crdObjects(): KubernetesObject[] {
  const dir = join(repo, 'crds');
  const file = join(dir, 'eventlog.dev_eventlogs.yaml');
  if (!existsSync(file)) return [];
  return parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJSON() as KubernetesObject);
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
  const stopAll = async () => {
    await agent?.stop();
    await controlPlane.stop();
  };
  try {
    // Pods get 127.2.x.y addresses, apart from the test suite's 127.1.x.y, so the
    // playground and the tests can run side by side.
    agent = await startNodeAgent({ kubeConfig: controlPlane.kubeConfig, dataDir: join(dir, 'node'), log, podIpPrefix: [127, 2] });
    const api = ManifestApplier.forConfig(controlPlane.kubeConfig);
    await applyAll(api, crdObjects());
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
      '  kubectl -n playground get pods,pvc,svc -o wide -w',
      "  curl -s http://$(kubectl -n playground get pod demo -o jsonpath='{.status.podIP}'):8080/status",
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
