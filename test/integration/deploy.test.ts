/**
 * deploy/ as users meet it: `kubectl apply -k deploy/` (client-side and
 * `--server-side`) against the local cluster, the sample from deploy/samples/, and the
 * GitOps view of live EventLogs: kstatus (test/support/kstatus.ts, the rules Flux's
 * `wait: true` applies) and the Argo CD Lua health check (run in lua5.1) on the
 * objects the operator (in-process, admin credentials) actually writes.
 *
 * Not covered here: the operator Deployment becoming available. The local control
 * plane runs no Deployment/ReplicaSet controllers (dev/cluster/controlplane.ts
 * DEFAULT_CONTROLLERS), so the Deployment is checked as an applied object only.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { KubeHttp } from '../../src/runtime/kube-http.ts';
import { runHealthCheck } from '../support/argocd-lua.ts';
import { computeKStatus } from '../support/kstatus.ts';
import { ensureEventLogCrd, freshNamespace, kubeConfigFromInject, waitFor, type FreshNamespace } from './helpers.ts';
import { cond, EventLogApi, startInProcessOperator, type Evl, type InProcessOperator } from './operator-helpers.ts';

const exec = promisify(execFile);
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  [key: string]: unknown;
}

async function kubectl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return exec('kubectl', ['--kubeconfig', inject('kubeconfigPath'), ...args], { cwd: repoRoot, maxBuffer: 32 << 20 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
  );
}

function kubectlStdin(input: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile('kubectl', ['--kubeconfig', inject('kubeconfigPath'), ...args], { cwd: repoRoot }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr }),
    );
    child.stdin?.end(input);
  });
}

async function render(dir: string): Promise<Manifest[]> {
  const r = await kubectl('kustomize', dir);
  expect(r.code, r.stderr).toBe(0);
  return parseAllDocuments(r.stdout).map((d) => d.toJSON() as Manifest).filter((m) => m !== null);
}

const find = (ms: Manifest[], kind: string, name: string) => {
  const m = ms.find((x) => x.kind === kind && x.metadata.name === name);
  if (!m) throw new Error(`kubectl kustomize deploy/ has no ${kind} ${name}`);
  return m as Manifest & Record<string, any>;
};

let kc: KubeConfig;
let http: KubeHttp;

beforeAll(async () => {
  kc = kubeConfigFromInject();
  http = new KubeHttp(kc);
});

describe('deploy/ (kustomize)', () => {
  it('renders the namespace, CRD, RBAC and a restricted operator Deployment', async () => {
    const ms = await render('deploy/');
    expect(ms.map((m) => `${m.kind}/${m.metadata.name}`).sort()).toEqual(
      [
        'ClusterRole/eventlog-operator',
        'ClusterRoleBinding/eventlog-operator',
        'CustomResourceDefinition/eventlogs.eventlog.dev',
        'Deployment/eventlog-operator',
        'Namespace/eventlog-system',
        'Role/eventlog-operator-leader-election',
        'RoleBinding/eventlog-operator-leader-election',
        'ServiceAccount/eventlog-operator',
      ].sort(),
    );
    for (const m of ms) {
      if (['ServiceAccount', 'Role', 'RoleBinding', 'Deployment'].includes(m.kind)) expect(m.metadata.namespace, `${m.kind} ${m.metadata.name}`).toBe('eventlog-system');
    }
    expect(find(ms, 'CustomResourceDefinition', 'eventlogs.eventlog.dev').metadata.annotations?.['argocd.argoproj.io/sync-wave']).toBe('-1');

    const clusterRole = find(ms, 'ClusterRole', 'eventlog-operator');
    for (const rule of clusterRole.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[]) {
      expect([...rule.apiGroups, ...rule.resources, ...rule.verbs]).not.toContain('*');
    }
    for (const binding of [find(ms, 'ClusterRoleBinding', 'eventlog-operator'), find(ms, 'RoleBinding', 'eventlog-operator-leader-election')]) {
      expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'eventlog-operator', namespace: 'eventlog-system' }]);
    }

    const deploy = find(ms, 'Deployment', 'eventlog-operator');
    expect(deploy.spec.replicas).toBe(2);
    const pod = deploy.spec.template.spec;
    expect(pod.serviceAccountName).toBe('eventlog-operator');
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    const [c] = pod.containers;
    expect(c.image).toBe('eventlog:dev');
    expect(c.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(c.args).toContain('--leader-elect=true');
    expect(c.env).toContainEqual({ name: 'POD_NAMESPACE', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } } });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'probes' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'probes' });
    expect(c.ports).toContainEqual({ name: 'probes', containerPort: 8081 });
    expect(c.resources.requests).toBeDefined();
    expect(c.resources.limits.memory).toBeDefined();
  });

  it('kubectl apply -k deploy/ succeeds client-side, then server-side', async () => {
    const client = await kubectl('apply', '-k', 'deploy/');
    expect(client.code, client.stderr).toBe(0);
    expect(client.stdout).toMatch(/deployment\.apps\/eventlog-operator (created|configured|unchanged)/);
    expect(client.stdout).toMatch(/customresourcedefinition\.apiextensions\.k8s\.io\/eventlogs\.eventlog\.dev (created|configured|unchanged)/);

    // The namespace enforces the restricted Pod Security Standard; the API server warns
    // about a workload whose pods it would reject. Ours draws no warning; one without a
    // securityContext does (so the check can fail).
    expect(client.stderr).not.toMatch(/PodSecurity/);
    const bare = JSON.stringify({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'bare', namespace: 'eventlog-system' },
      spec: { selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'eventlog:dev' }] } } },
    });
    const control = await kubectlStdin(bare, 'apply', '--dry-run=server', '-f', '-');
    expect(control.code, control.stderr).toBe(0);
    expect(control.stderr).toMatch(/would violate PodSecurity "restricted/);

    const server = await kubectl('apply', '-k', 'deploy/', '--server-side');
    expect(server.code, server.stderr).toBe(0);
    expect(server.stdout).toMatch(/clusterrole\.rbac\.authorization\.k8s\.io\/eventlog-operator serverside-applied/);
    // Applying the same again changes nothing and conflicts with nobody.
    const again = await kubectl('apply', '-k', 'deploy/', '--server-side');
    expect(again.code, again.stderr).toBe(0);

    const deploy = await http.json<{ spec: { replicas: number; template: { spec: { containers: { image: string }[] } } } }>('GET', '/apis/apps/v1/namespaces/eventlog-system/deployments/eventlog-operator');
    expect(deploy.spec.replicas).toBe(2);
    expect(deploy.spec.template.spec.containers[0]!.image).toBe('eventlog:dev');
    const crd = await http.json<{ status: { conditions: { type: string; status: string }[] } }>('GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/eventlogs.eventlog.dev');
    expect(crd.status.conditions.find((c) => c.type === 'Established')?.status).toBe('True');
    // The ServiceAccount the RBAC binds to is the one the Deployment runs as.
    await http.json('GET', '/api/v1/namespaces/eventlog-system/serviceaccounts/eventlog-operator');
    const can = await kubectl('auth', 'can-i', 'patch', 'eventlogs.eventlog.dev', '--subresource=status', '--as', 'system:serviceaccount:eventlog-system:eventlog-operator', '-A');
    expect(can.stdout.trim()).toBe('yes');
    for (const denied of [['delete', 'secrets'], ['list', 'configmaps'], ['update', 'eventlogs.eventlog.dev']]) {
      const r = await kubectl('auth', 'can-i', ...denied, '--as', 'system:serviceaccount:eventlog-system:eventlog-operator', '-n', 'kube-system');
      expect(r.stdout.trim(), denied.join(' ')).toBe('no');
    }
  });
});

describe('live EventLogs as GitOps tools see them', () => {
  let ns: FreshNamespace;
  let api: EventLogApi;
  let op: InProcessOperator;

  const startOperator = (identity: string) => startInProcessOperator({ kc, namespaces: [ns.name], identity, pollMs: 1_000 });

  beforeAll(async () => {
    await ensureEventLogCrd(kc);
    ns = await freshNamespace('deploy-gitops');
    api = new EventLogApi(http, ns.name);
    op = startOperator('deploy-test-1');
  });

  afterAll(async () => {
    if (op && api) await api.deleteAll(90_000);
    await op?.stop();
    await ns?.cleanup();
  });

  it('the sample: InProgress / Progressing while reconciling, then Current / Healthy when Ready', async () => {
    // Watch first, so every version the operator writes is seen.
    const seen: Evl[] = [];
    const ctl = new AbortController();
    let opened!: () => void;
    const open = new Promise<void>((resolve) => (opened = resolve));
    const watching = http
      .stream(api.evlPath(), {
        query: { watch: true, fieldSelector: 'metadata.name=orders' },
        signal: ctl.signal,
        onOpen: () => opened(),
        onLine: (line) => {
          const ev = JSON.parse(line) as { type: string; object: Evl };
          if (ev.type === 'ADDED' || ev.type === 'MODIFIED') seen.push(ev.object);
        },
      })
      .catch((error: unknown) => error);
    try {
      await Promise.race([open, watching.then((e) => Promise.reject(new Error(`the watch ended before it opened: ${String(e)}`)))]);
      const applied = await kubectl('apply', '-k', 'deploy/samples/', '-n', ns.name);
      expect(applied.code, applied.stderr).toBe(0);
      expect(applied.stdout).toContain('eventlog.eventlog.dev/orders created');
      const ready = await api.waitReady('orders', 150_000);
      await waitFor(() => seen.some((o) => o.metadata.resourceVersion === ready.metadata.resourceVersion), { message: 'the watch to deliver the Ready version', timeoutMs: 30_000 });

      expect(computeKStatus(ready)).toEqual({ status: 'Current', message: cond(ready, 'Ready')?.message });
      expect(await runHealthCheck(ready)).toEqual({ status: 'Healthy', message: cond(ready, 'Ready')?.message });

      // On the way there, the operator said it was still converging.
      const converging = seen.filter((o) => cond(o, 'Reconciling')?.status === 'True' && o.status?.observedGeneration === o.metadata.generation);
      expect(converging.length, `versions seen: ${seen.map((o) => `${cond(o, 'Ready')?.reason ?? '-'}/${cond(o, 'Reconciling')?.status ?? '-'}`).join(' ')}`).toBeGreaterThan(0);
      for (const o of converging) {
        expect(computeKStatus(o).status).toBe('InProgress');
        expect((await runHealthCheck(o)).status).toBe('Progressing');
      }
      // Before the operator wrote anything: the Lua check waits; kstatus has nothing to go on yet.
      const fresh = seen.find((o) => o.status === undefined);
      if (fresh) expect(await runHealthCheck(fresh)).toEqual({ status: 'Progressing', message: 'waiting for the operator to observe generation 1' });

      // Server-side apply of the unchanged sample is a no-op for the operator's fields.
      const ssa = await kubectl('apply', '-k', 'deploy/samples/', '-n', ns.name, '--server-side');
      expect(ssa.code, ssa.stderr).toBe(0);
      const after = await api.get<Evl>(api.evlPath('orders'));
      expect(after?.metadata.generation).toBe(ready.metadata.generation);
    } finally {
      ctl.abort();
      await watching;
    }
  });

  it('a stale observedGeneration: InProgress / Progressing until the operator catches up', async () => {
    await op.stop();
    const changed = await api.patchSpec('orders', { durability: 'Interval' });
    const generation = changed.metadata.generation!;
    expect(changed.status?.observedGeneration).toBe(generation - 1);
    const k = computeKStatus(changed);
    expect(k.status).toBe('InProgress');
    expect(k.message).toContain(`generation is ${generation}`);
    expect(await runHealthCheck(changed)).toEqual({ status: 'Progressing', message: `waiting for the operator to observe generation ${generation}` });

    op = startOperator('deploy-test-2');
    const ready = await api.waitReady('orders', 150_000);
    expect(ready.metadata.generation).toBe(generation);
    expect(computeKStatus(ready).status).toBe('Current');
    expect((await runHealthCheck(ready)).status).toBe('Healthy');
  });

  it('Stalled: Failed / Degraded (a StorageClass that does not exist)', async () => {
    await api.create('nowhere', {}, { storageClassName: 'no-such-class' });
    const stalled = await waitFor(
      async () => {
        const e = await api.get<Evl>(api.evlPath('nowhere'));
        const s = cond(e, 'Stalled');
        return s?.status === 'True' && s.observedGeneration === e?.metadata.generation ? e : undefined;
      },
      { message: 'EventLog nowhere to be Stalled', timeoutMs: 90_000, intervalMs: 300 },
    );
    expect(cond(stalled, 'Stalled')?.reason).toBe('StorageClassNotFound');
    const k = computeKStatus(stalled);
    expect(k.status).toBe('Failed');
    expect(k.message).toMatch(/^StorageClassNotFound: /);
    const hs = await runHealthCheck(stalled);
    expect(hs.status).toBe('Degraded');
    expect(hs.message).toBe(`StorageClassNotFound: ${cond(stalled, 'Stalled')?.message}`);
  });

  it('GitOps tracking labels and annotations stay on the EventLog: no child carries them', async () => {
    const tracking = {
      labels: { 'app.kubernetes.io/instance': 'eventlog-apps', 'kustomize.toolkit.fluxcd.io/name': 'apps', 'kustomize.toolkit.fluxcd.io/namespace': 'flux-system' },
      annotations: { 'argocd.argoproj.io/tracking-id': `apps:eventlog.dev/EventLog:${ns.name}/tracked`, 'kubectl.kubernetes.io/last-applied-configuration': '{}' },
    };
    await http.json('POST', api.evlPath(), {
      body: { apiVersion: 'eventlog.dev/v1alpha1', kind: 'EventLog', metadata: { name: 'tracked', ...tracking }, spec: { storage: { size: '16Mi', retentionPolicy: 'Delete' } } },
    });
    const ready = await api.waitReady('tracked', 150_000);
    expect(ready.metadata.generation).toBe(1); // the operator never wrote the spec
    const children = [
      ...(await api.list(api.corePath('persistentvolumeclaims'))),
      ...(await api.list(api.corePath('pods'))),
      ...(await api.list(api.corePath('services'))),
      ...(await api.list(api.corePath('secrets'))),
      ...(await api.list(`/apis/networking.k8s.io/v1/namespaces/${ns.name}/networkpolicies`)),
    ].filter((o) => o.metadata.name.startsWith('tracked'));
    expect(children.length).toBeGreaterThanOrEqual(5);
    for (const child of children) {
      const meta = child.metadata as { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
      // Not copied. (The operator sets its own app.kubernetes.io/instance = the EventLog's
      // name on children, the recommended label; it never takes the EventLog's value.)
      for (const [k, v] of Object.entries(tracking.labels)) expect(meta.labels?.[k], `${meta.name} label ${k}`).not.toBe(v);
      for (const k of Object.keys(tracking.labels).filter((x) => x.startsWith('kustomize.toolkit.fluxcd.io/'))) expect(meta.labels?.[k], `${meta.name} label ${k}`).toBeUndefined();
      for (const k of Object.keys(tracking.annotations)) expect(meta.annotations?.[k], `${meta.name} annotation ${k}`).toBeUndefined();
    }
  });

  it('suspend: Suspended in Argo CD', async () => {
    await api.patchSpec('orders', { suspend: true });
    const suspended = await waitFor(
      async () => {
        const e = await api.get<Evl>(api.evlPath('orders'));
        return e?.status?.observedGeneration === e?.metadata.generation && cond(e, 'Reconciling')?.reason === 'Suspended' ? e : undefined;
      },
      { message: 'EventLog orders to report Suspended', timeoutMs: 60_000, intervalMs: 300 },
    );
    expect((await runHealthCheck(suspended)).status).toBe('Suspended');
    await api.patchSpec('orders', { suspend: false });
    expect((await runHealthCheck(await api.waitReady('orders', 90_000))).status).toBe('Healthy');
  });
});
