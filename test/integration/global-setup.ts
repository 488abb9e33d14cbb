/**
 * vitest globalSetup for the `integration` project: starts ONE local control
 * plane (etcd + kube-apiserver + kube-controller-manager, dev/cluster/) and the
 * node agent for the whole suite, and tears them down after it.
 *
 * Tests reach the cluster through `inject('kubeconfigPath')` (see helpers.ts,
 * `kubeConfigFromInject()`); child processes spawned by tests find it through
 * KUBECONFIG, set here before the test workers start.
 *
 * If the control plane cannot start, this throws and the run fails loudly. There
 * is no skip: install the binaries with test/envtest/install.sh (or set
 * KUBEBUILDER_ASSETS) first.
 */
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startNodeAgent } from '../../dev/agent/agent.ts';
import { startControlPlane, type ControlPlane } from '../../dev/cluster/controlplane.ts';
import { createLogger } from '../../src/common/logger.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin kubeconfig of the shared control plane (client cert in system:masters). */
    kubeconfigPath: string;
    /** https://127.0.0.1:PORT of the shared kube-apiserver. */
    apiServer: string;
    /** PEM file of the CA that signed the API server's certificate. */
    caCertPath: string;
  }
}

function podIpPrefixFromEnv(): readonly [number, number] | undefined {
  const raw = process.env.EVENTLOG_TEST_POD_IP_PREFIX;
  if (!raw) return undefined;
  const m = /^127\.(\d{1,3})$/.exec(raw);
  const second = m ? Number(m[1]) : NaN;
  if (!(second >= 1 && second <= 254)) throw new Error(`EVENTLOG_TEST_POD_IP_PREFIX must look like 127.N with N in 1..254, got "${raw}"`);
  return [127, second];
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const log = createLogger('integration-setup');
  let cp: ControlPlane;
  try {
    cp = await startControlPlane({ log });
  } catch (err) {
    throw new Error(`integration tests need a local control plane and it did not start: ${(err as Error).message}`, { cause: err });
  }
  log.info({ server: cp.server, startupMs: cp.startupMs }, 'integration: control plane up');

  const stops: Array<() => Promise<void>> = [() => cp.stop()];
  try {
    // ---- NODE AGENT HOOK ---------------------------------------------------------
    // The node agent (dev/agent/, issue 3 item 3) runs pods as local processes. It
    // starts after the control plane and stops before it (`stops` run in order).
    // Its data lives in the control plane's temporary data dir.
    const podIpPrefix = podIpPrefixFromEnv();
    const agent = await startNodeAgent({
      kubeConfig: cp.kubeConfig,
      dataDir: join(cp.dataDir, 'agent'),
      // Per-pod lines are noise in a test run; LOG_LEVEL=info brings them back.
      log: createLogger('node-agent', process.env.LOG_LEVEL ?? 'warn'),
      // kubelet back-off shape (doubling, capped at 30x) from 0.5 s instead of 10 s,
      // so crash-loop tests take seconds.
      crashLoopBaseMs: 500,
      // Two suites running at once on one machine (e.g. two checkouts) must not
      // hand out the same 127.1.x.y; EVENTLOG_TEST_POD_IP_PREFIX=127.5 moves this one.
      ...(podIpPrefix ? { podIpPrefix } : {}),
    });
    stops.unshift(() => agent.stop());
    log.info({ node: agent.nodeName }, 'integration: node agent up');
    // ---- END NODE AGENT HOOK -----------------------------------------------------
  } catch (err) {
    for (const stop of stops) await stop().catch((e: unknown) => log.error({ err: e }, 'integration: cleanup failed'));
    throw err;
  }

  project.provide('kubeconfigPath', cp.kubeconfigPath);
  project.provide('apiServer', cp.server);
  project.provide('caCertPath', cp.caCertPath);
  process.env.KUBECONFIG = cp.kubeconfigPath;

  return async () => {
    for (const stop of stops) {
      await stop().catch((err: unknown) => log.error({ err }, 'integration: teardown step failed'));
    }
  };
}
