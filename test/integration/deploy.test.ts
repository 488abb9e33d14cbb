/**
 * deploy/ as users meet it: `kubectl apply -k deploy/` (client-side and
 * `--server-side`) against the local cluster, the sample from deploy/samples/, and the
 * GitOps view of live EventLogs: kstatus (the real sigs.k8s.io/cli-utils library through
 * test/tools/cmd/kstatus: the rules Flux's `wait: true` applies) and the Argo CD health
 * check and resource actions (gopher-lua, test/tools/cmd/argocd-lua) on the objects the
 * API server and the operator (in-process, admin credentials) actually serve: just
 * created with no operator (the CRD's default status closes the kstatus race),
 * progressing, Ready, a spec change not yet observed, Stalled, suspended, deleting.
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
import { STATUS_DEFAULT } from '../../src/api/crd.ts';
import { ensureArgoLua, runAction, runDiscovery, runHealthCheck, runHealthChecks, type ActionName } from '../support/argocd-lua.ts';
import { TOOL_BUILD_TIMEOUT_MS } from '../support/go-tools.ts';
import { ensureKStatus, kstatusOf, kstatusOfAll } from '../support/kstatus.ts';
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
  ensureKStatus();
  ensureArgoLua();
}, TOOL_BUILD_TIMEOUT_MS);

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

      expect(await kstatusOf(ready)).toMatchObject({ status: 'Current', message: 'Resource is Ready' });
      expect(await runHealthCheck(ready)).toEqual({ status: 'Healthy', message: cond(ready, 'Ready')?.message });

      // On the way there, the operator said it was still converging.
      const converging = seen.filter((o) => cond(o, 'Reconciling')?.status === 'True' && o.status?.observedGeneration === o.metadata.generation);
      expect(converging.length, `versions seen: ${seen.map((o) => `${cond(o, 'Ready')?.reason ?? '-'}/${cond(o, 'Reconciling')?.status ?? '-'}`).join(' ')}`).toBeGreaterThan(0);
      const [k, h] = await Promise.all([kstatusOfAll(converging), runHealthChecks(converging)]);
      converging.forEach((o, i) => {
        expect(k[i]).toMatchObject({ status: 'InProgress', message: cond(o, 'Reconciling')?.message });
        expect(h[i]!.status).toBe('Progressing');
      });
      // The version the watch delivered first is the created object, before the operator
      // wrote anything: the CRD's default status makes both tools wait.
      const first = seen[0]!;
      expect(first.metadata.generation).toBe(1);
      expect(first.status).toEqual(STATUS_DEFAULT);
      expect(await kstatusOf(first)).toMatchObject({ status: 'InProgress', message: 'EventLog generation is 1, but latest observed generation is 0' });
      expect(await runHealthCheck(first)).toEqual({ status: 'Progressing', message: 'waiting for the operator to observe generation 1' });

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
    expect(await kstatusOf(changed)).toMatchObject({ status: 'InProgress', message: `EventLog generation is ${generation}, but latest observed generation is ${generation - 1}` });
    expect(await runHealthCheck(changed)).toEqual({ status: 'Progressing', message: `waiting for the operator to observe generation ${generation}` });

    op = startOperator('deploy-test-2');
    const ready = await api.waitReady('orders', 150_000);
    expect(ready.metadata.generation).toBe(generation);
    expect((await kstatusOf(ready)).status).toBe('Current');
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
    expect(await kstatusOf(stalled)).toMatchObject({
      status: 'Failed',
      message: cond(stalled, 'Stalled')?.message,
      conditions: [{ type: 'Stalled', status: 'True', reason: 'StorageClassNotFound', message: cond(stalled, 'Stalled')?.message }],
    });
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

  /**
   * Runs an Argo CD resource action the way the Argo CD API server does: discovery on the
   * live object (the action must be offered and enabled), the action's Lua on it, then the
   * JSON merge patch between the two sent to the API server.
   */
  async function runArgoAction(path: string, action: ActionName): Promise<Evl> {
    const live = await http.json<Evl>('GET', path);
    expect((await runDiscovery(live)).find((a) => a.name === action), `${action} offered and enabled`).toMatchObject({ name: action, disabled: false });
    const { mergePatch } = await runAction(action, live);
    return http.json<Evl>('PATCH', path, { contentType: 'application/merge-patch+json', body: mergePatch });
  }

  it('the suspend and resume actions: Suspended in Argo CD (Current for kstatus), then Healthy again', async () => {
    const patched = await runArgoAction(api.evlPath('orders'), 'suspend');
    expect(patched.spec?.suspend).toBe(true);
    const suspended = await waitFor(
      async () => {
        const e = await api.get<Evl>(api.evlPath('orders'));
        return e?.status?.observedGeneration === e?.metadata.generation && cond(e, 'Reconciling')?.reason === 'Suspended' ? e : undefined;
      },
      { message: 'EventLog orders to report Suspended', timeoutMs: 60_000, intervalMs: 300 },
    );
    expect((await runHealthCheck(suspended)).status).toBe('Suspended');
    expect((await kstatusOf(suspended)).status).toBe('Current');
    expect((await runDiscovery(suspended)).map((a) => `${a.name}:${a.disabled ? 'off' : 'on'}`)).toEqual(['approve-repair:off', 'resume:on', 'suspend:off']);

    expect((await runArgoAction(api.evlPath('orders'), 'resume')).spec?.suspend).toBe(false);
    const ready = await api.waitReady('orders', 90_000);
    expect((await runHealthCheck(ready)).status).toBe('Healthy');
    expect((await kstatusOf(ready)).status).toBe('Current');
  });

  describe('with no operator watching (a namespace it does not watch)', () => {
    let unwatched: FreshNamespace;
    let other: EventLogApi;
    beforeAll(async () => {
      unwatched = await freshNamespace('deploy-gitops-unwatched');
      other = new EventLogApi(http, unwatched.name);
    });
    afterAll(async () => {
      await unwatched?.cleanup();
    });

    it('just created: the API server serves the default status, so kstatus says InProgress and Argo CD Progressing', async () => {
      const created = await other.create('fresh');
      const got = (await other.get<Evl>(other.evlPath('fresh')))!;
      const [listed] = await other.list<Evl>(other.evlPath());
      for (const o of [created, got, listed!]) {
        expect(o.metadata.generation).toBe(1);
        expect(o.status).toEqual(STATUS_DEFAULT);
      }
      expect(await kstatusOf(got)).toEqual({
        kind: 'EventLog',
        namespace: unwatched.name,
        name: 'fresh',
        status: 'InProgress',
        message: 'EventLog generation is 1, but latest observed generation is 0',
        conditions: [{ type: 'Reconciling', status: 'True', reason: 'LatestGenerationNotObserved', message: 'EventLog generation is 1, but latest observed generation is 0' }],
      });
      expect(await runHealthCheck(got)).toEqual({ status: 'Progressing', message: 'waiting for the operator to observe generation 1' });
      // A spec change before any operator ran: still waiting, for the new generation.
      const changed = await other.patchSpec('fresh', { durability: 'Interval' });
      expect(changed.status).toEqual(STATUS_DEFAULT);
      expect((await kstatusOf(changed)).message).toBe('EventLog generation is 2, but latest observed generation is 0');
      expect((await runHealthCheck(changed)).message).toBe('waiting for the operator to observe generation 2');
    });

    it('approve-repair on a live object: offered while a corruption is reported, writes exactly its id, then is disabled', async () => {
      await other.create('broken');
      // The status the operator writes for interior corruption (no operator runs here to overwrite it).
      const at = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      const condition = (type: string, status: string, reason: string, message: string) => ({ type, status, reason, message, observedGeneration: 1, lastTransitionTime: at });
      await http.json('PATCH', `${other.evlPath('broken')}/status`, {
        contentType: 'application/merge-patch+json',
        body: {
          status: {
            observedGeneration: 1,
            phase: 'Stalled',
            conditions: [
              condition('Ready', 'False', 'CorruptionDetected', 'writes refused'),
              condition('Reconciling', 'False', 'Stalled', 'not converging: CorruptionDetected (see Stalled)'),
              condition('Stalled', 'True', 'CorruptionDetected', 'corruption c0ffee: set eventlog.dev/approve-repair=c0ffee to repair'),
            ],
            recovery: { lastOutcome: 'CorruptionDetected', corruption: { id: 'c0ffee', segment: 'segments/1.seg', offset: 4096, reason: 'checksum mismatch' } },
          },
        },
      });
      const before = (await other.get<Evl>(other.evlPath('broken')))!;
      expect(await runHealthCheck(before)).toEqual({ status: 'Degraded', message: 'CorruptionDetected: corruption c0ffee: set eventlog.dev/approve-repair=c0ffee to repair' });
      expect((await kstatusOf(before)).status).toBe('Failed');
      expect((await runDiscovery(before)).find((a) => a.name === 'approve-repair')).toEqual({ name: 'approve-repair', disabled: false, iconClass: 'fa fa-fw fa-wrench', displayName: 'Approve repair of c0ffee' });

      const approved = await runArgoAction(other.evlPath('broken'), 'approve-repair');
      expect((approved.metadata as { annotations?: Record<string, string> }).annotations?.['eventlog.dev/approve-repair']).toBe('c0ffee');
      expect(approved.metadata.generation).toBe(1); // metadata only: no new generation
      expect((await runDiscovery(approved)).find((a) => a.name === 'approve-repair')?.disabled).toBe(true);
    });
  });

  it('deleting: Terminating for kstatus, Progressing in Argo CD, while the finalizer holds it', async () => {
    await op.stop(); // nobody removes the finalizer now
    await http.json('DELETE', api.evlPath('nowhere'));
    const deleting = (await api.get<Evl>(api.evlPath('nowhere')))!;
    expect(deleting.metadata.deletionTimestamp).toBeTruthy();
    expect(deleting.metadata.finalizers).toContain('eventlog.dev/finalizer');
    expect(await kstatusOf(deleting)).toMatchObject({ status: 'Terminating', message: 'Resource scheduled for deletion' });
    expect((await runHealthCheck(deleting)).status).toBe('Progressing');

    op = startOperator('deploy-test-3');
    await waitFor(async () => ((await api.get<Evl>(api.evlPath('nowhere'))) === undefined ? true : undefined), { message: 'EventLog nowhere to be finalized', timeoutMs: 90_000, intervalMs: 300 });
  });
});
