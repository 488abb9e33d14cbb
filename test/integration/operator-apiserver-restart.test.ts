/**
 * The operator survives its API server restarting. This needs a control plane of its
 * own (restarting the shared one would disturb every other test file): etcd +
 * kube-apiserver + kube-controller-manager and a node agent of its own, the operator
 * in-process against it. kube-apiserver alone is restarted (same port, certificates and
 * etcd: `ControlPlane.restartApiServer`); then changes made right after it is back (a
 * new EventLog, a spec change of an existing one) must be reconciled: the watches
 * resumed and nothing was lost.
 *
 * The private node agent's pod addresses: 127.(N+100).x.y for EVENTLOG_TEST_POD_IP_PREFIX
 * 127.N (N <= 154; else 127.(N-100)), so they never clash with the shared agent's.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNodeAgent, type NodeAgent } from '../../dev/agent/agent.ts';
import { startControlPlane, type ControlPlane } from '../../dev/cluster/controlplane.ts';
import { createLogger } from '../../src/common/logger.ts';
import { KubeHttp } from '../../src/runtime/kube-http.ts';
import { ensureEventLogCrd, freshNamespace, waitFor, type FreshNamespace } from './helpers.ts';
import { cond, EventLogApi, metricValue, startInProcessOperator, type InProcessOperator } from './operator-helpers.ts';

function privatePodIpPrefix(): readonly [number, number] {
  const m = /^127\.(\d{1,3})$/.exec(process.env.EVENTLOG_TEST_POD_IP_PREFIX ?? '127.1');
  const n = m ? Number(m[1]) : 1;
  return [127, n <= 154 ? n + 100 : n - 100];
}

let cp: ControlPlane | undefined;
let agent: NodeAgent | undefined;
let op: InProcessOperator | undefined;
let ns: FreshNamespace | undefined;

beforeAll(async () => {
  const log = createLogger('apiserver-restart-test', process.env.LOG_LEVEL ?? 'warn');
  cp = await startControlPlane({ log, handleSignals: false });
  agent = await startNodeAgent({ kubeConfig: cp.kubeConfig, dataDir: join(cp.dataDir, 'agent'), log, crashLoopBaseMs: 500, podIpPrefix: privatePodIpPrefix() });
  await ensureEventLogCrd(cp.kubeConfig);
  ns = await freshNamespace('op-restart', cp.kubeConfig);
}, 180_000);

afterAll(async () => {
  await op?.stop();
  await agent?.stop();
  await cp?.stop();
}, 120_000);

describe('EventLog operator across an API server restart', () => {
  it('resumes its watches and reconciles changes made after the restart (new EventLog, spec change)', async () => {
    const kc = cp!.kubeConfig;
    const api = new EventLogApi(new KubeHttp(kc), ns!.name);
    op = startInProcessOperator({ kc, namespaces: [api.ns], identity: 'restart' });
    await api.create('before');
    const before = await api.waitReady('before');
    expect(before.status?.pod?.ip).toMatch(new RegExp(`^127\\.${privatePodIpPrefix()[1]}\\.`));
    const probe = op.manager.probeUrl!;
    expect((await fetch(`${probe}/readyz`)).status).toBe(200);

    const oldApiServerPids = cp!.pids();
    await cp!.restartApiServer({ downMs: 3_000 });
    expect(cp!.pids()).not.toEqual(oldApiServerPids);

    // Right after the API server is back, before the operator's watches reconnect (their
    // back-off is still running): a new EventLog and a spec change.
    await api.create('after');
    const changed = await api.patchSpec('before', { driftPolicy: 'Report' });
    expect(changed.metadata.generation).toBe((before.metadata.generation ?? 0) + 1);

    const after = await api.waitReady('after', 180_000);
    expect(after.metadata.finalizers).toContain('eventlog.dev/finalizer');
    for (const kind of ['persistentvolumeclaims', 'pods', 'services']) {
      const name = kind === 'persistentvolumeclaims' ? 'after-data' : kind === 'pods' ? 'after-0' : 'after';
      expect(await api.get(api.corePath(kind, name)), `${kind} ${name}`).toBeDefined();
    }
    const beforeNow = await api.waitReady('before', 180_000);
    expect(beforeNow.status?.observedGeneration).toBe(changed.metadata.generation);
    expect(cond(beforeNow, 'Ready')?.observedGeneration).toBe(changed.metadata.generation);
    // A driftPolicy change is not a pod rollout: the same pod kept serving.
    expect(beforeNow.status?.pod?.uid).toBe(before.status?.pod?.uid);

    // Readiness recovered with the watches.
    await waitFor(async () => (await fetch(`${probe}/readyz`)).status === 200, { message: 'the operator /readyz to be 200 again', timeoutMs: 60_000 });
    // The gauges follow the stored status. Waited for, not sampled once: on a loaded
    // machine a poll may time out right after Ready (ServerUnreachable for one pass).
    await waitFor(
      async () => {
        const text = await op!.metricsText();
        return metricValue(text, 'eventlog_ready', { namespace: api.ns, name: 'after' }) === 1 && metricValue(text, 'eventlog_ready', { namespace: api.ns, name: 'before' }) === 1;
      },
      { message: 'eventlog_ready to be 1 for both EventLogs', timeoutMs: 60_000 },
    );

    await api.deleteAll();
  });
});
