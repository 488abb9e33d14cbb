import { describe, expect, it } from 'vitest';
import {
  DURABILITY_FLAG,
  desiredNetworkPolicy,
  desiredPod,
  desiredPvc,
  desiredService,
  desiredTokenSecret,
  endpointUrl,
  ownerReference,
  podName,
  pvcName,
  serviceName,
} from '../../../src/decisions/desired.ts';
import {
  FIELD_MANAGER,
  LABEL_INSTANCE,
  SPEC_HASH_ANNOTATION,
  commonLabels,
  isGitOpsTrackingKey,
  podLabels,
  selectorLabels,
  withoutGitOpsKeys,
} from '../../../src/decisions/labels.ts';
import { OPTS, makeEvl } from './fixtures.ts';

const OWNER = { apiVersion: 'eventlog.dev/v1alpha1', kind: 'EventLog', name: 'orders', uid: 'uid-1', controller: true, blockOwnerDeletion: true };
const BASE_LABELS = {
  'app.kubernetes.io/name': 'eventlog',
  'app.kubernetes.io/instance': 'orders',
  'app.kubernetes.io/managed-by': 'eventlog-operator',
};

describe('labels', () => {
  it('uses the recommended labels and a stable selector subset', () => {
    const evl = makeEvl();
    expect(FIELD_MANAGER).toBe('eventlog-operator');
    expect(selectorLabels(evl)).toEqual({ 'app.kubernetes.io/name': 'eventlog', 'app.kubernetes.io/instance': 'orders', 'app.kubernetes.io/component': 'log-server' });
    const all = commonLabels(evl, 'log-server');
    for (const [k, v] of Object.entries(selectorLabels(evl))) expect(all[k]).toBe(v);
    // User labels cannot change the selector or our labels.
    const custom = makeEvl({ podTemplate: { labels: { team: 'payments', 'app.kubernetes.io/name': 'other' } } });
    expect(selectorLabels(custom)).toEqual(selectorLabels(evl));
    expect(podLabels(custom)).toEqual({ ...all, team: 'payments' });
  });

  it.each([
    ['argocd.argoproj.io/instance', true],
    ['argocd.argoproj.io/tracking-id', true],
    ['kustomize.toolkit.fluxcd.io/name', true],
    ['helm.toolkit.fluxcd.io/namespace', true],
    ['kubectl.kubernetes.io/last-applied-configuration', true],
    [LABEL_INSTANCE, true],
    ['team', false],
    ['example.com/owner', false],
  ])('isGitOpsTrackingKey(%s) = %s', (key, expected) => {
    expect(isGitOpsTrackingKey(key)).toBe(expected);
  });

  it('withoutGitOpsKeys drops only tracking keys', () => {
    expect(withoutGitOpsKeys({ team: 'a', 'argocd.argoproj.io/instance': 'app' })).toEqual({ team: 'a' });
    expect(withoutGitOpsKeys(undefined)).toBeUndefined();
  });
});

describe('names and owner reference', () => {
  it('derives fixed names from the EventLog name', () => {
    const evl = makeEvl();
    expect([pvcName(evl), podName(evl), serviceName(evl)]).toEqual(['orders-data', 'orders-0', 'orders']);
    expect(endpointUrl(evl)).toBe('http://orders.shop.svc:8080');
    expect(ownerReference(evl)).toEqual(OWNER);
  });

  it('refuses to build without uid or namespace', () => {
    expect(() => ownerReference(makeEvl({}, { uid: undefined }))).toThrow(/metadata.uid/);
    expect(() => desiredPvc(makeEvl({}, { namespace: undefined }))).toThrow(/namespace/);
  });
});

describe('desiredPvc', () => {
  it('has exactly the owned fields', () => {
    expect(desiredPvc(makeEvl(), OPTS)).toEqual({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'orders-data', namespace: 'shop', labels: { ...BASE_LABELS, 'app.kubernetes.io/component': 'storage' }, ownerReferences: [OWNER] },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
    });
  });

  it('sets storageClassName only when the spec names one', () => {
    expect(desiredPvc(makeEvl({ storage: { size: '5Gi', storageClassName: 'fast-ssd' } })).spec).toEqual({
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: '5Gi' } },
      storageClassName: 'fast-ssd',
    });
    expect('storageClassName' in desiredPvc(makeEvl()).spec).toBe(false);
  });
});

describe('desiredService', () => {
  it('is a ClusterIP on port 8080 named http selecting the pod', () => {
    const evl = makeEvl();
    expect(desiredService(evl, OPTS)).toEqual({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'orders', namespace: 'shop', labels: { ...BASE_LABELS, 'app.kubernetes.io/component': 'log-server' }, ownerReferences: [OWNER] },
      spec: { type: 'ClusterIP', selector: selectorLabels(evl), ports: [{ name: 'http', port: 8080, targetPort: 'http' }] },
    });
    // The Service selects the pod.
    const pod = desiredPod(evl, OPTS);
    for (const [k, v] of Object.entries(desiredService(evl).spec.selector)) expect(pod.metadata.labels[k]).toBe(v);
  });
});

describe('desiredPod', () => {
  const pod = desiredPod(makeEvl(), OPTS);
  const spec = pod.spec as Record<string, any>;
  const c = spec.containers[0];

  it('runs eventlog-server on the PVC with the pod IP', () => {
    expect(pod.metadata.name).toBe('orders-0');
    expect(pod.metadata.ownerReferences).toEqual([OWNER]);
    expect(c.name).toBe('server');
    expect(c.image).toBe('eventlog:dev');
    expect(c.command).toEqual(['eventlog-server']);
    expect(c.args).toEqual(['--data-dir', '/var/lib/eventlog', '--host', '$(POD_IP)', '--port', '8080', '--durability', 'fsync']);
    expect(c.env).toEqual([{ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }]);
    expect(c.ports).toEqual([{ name: 'http', containerPort: 8080 }]);
    expect(c.volumeMounts).toEqual([{ name: 'data', mountPath: '/var/lib/eventlog' }]);
    expect(spec.volumes).toEqual([{ name: 'data', persistentVolumeClaim: { claimName: 'orders-data' } }]);
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(spec.terminationGracePeriodSeconds).toBe(30);
  });

  it('is restricted', () => {
    expect(spec.securityContext).toEqual({ runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    expect(c.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(spec.automountServiceAccountToken).toBe(false);
  });

  it('leaves API-server and kubelet defaults alone', () => {
    for (const k of ['restartPolicy', 'dnsPolicy', 'schedulerName', 'serviceAccountName', 'nodeName', 'priority', 'enableServiceLinks', 'tolerations', 'nodeSelector', 'affinity']) {
      expect(k in spec, k).toBe(false);
    }
    for (const k of ['terminationMessagePath', 'imagePullPolicy', 'resources']) expect(k in c, k).toBe(false);
    expect('protocol' in c.ports[0]).toBe(false);
    expect('apiVersion' in c.env[0].valueFrom.fieldRef).toBe(false);
    expect(JSON.stringify(pod)).not.toContain('undefined');
  });

  it.each([
    ['Fsync', 'fsync'],
    ['Interval', 'interval'],
    ['None', 'none'],
  ] as const)('maps durability %s to --durability %s', (durability, flag) => {
    expect(DURABILITY_FLAG[durability]).toBe(flag);
    const args = (desiredPod(makeEvl({ durability }), OPTS).spec as any).containers[0].args as string[];
    expect(args[args.indexOf('--durability') + 1]).toBe(flag);
  });

  it('applies options: image, port, mount path, token Secret, grace period', () => {
    const p = desiredPod(makeEvl({ image: 'registry.example/eventlog:1.2' }), {
      defaultImage: 'ignored',
      port: 9090,
      dataMountPath: '/data',
      tokenHash: '0123456789abcdef',
      terminationGracePeriodSeconds: 45,
    });
    const s = p.spec as any;
    const cc = s.containers[0];
    expect(cc.image).toBe('registry.example/eventlog:1.2');
    expect(cc.args).toEqual(['--data-dir', '/data', '--host', '$(POD_IP)', '--port', '9090', '--durability', 'fsync', '--auth-token-file', '/etc/eventlog/token/token']);
    expect(cc.ports).toEqual([{ name: 'http', containerPort: 9090 }]);
    expect(cc.volumeMounts[0].mountPath).toBe('/data');
    expect(cc.volumeMounts[1]).toEqual({ name: 'token', mountPath: '/etc/eventlog/token', readOnly: true });
    expect(s.volumes[1]).toEqual({ name: 'token', secret: { secretName: 'orders-token', defaultMode: 0o440 } });
    expect(s.terminationGracePeriodSeconds).toBe(45);
    expect(desiredService(makeEvl(), { port: 9090 }).spec.ports[0].port).toBe(9090);
  });

  it('takes resources and podTemplate fields from the spec', () => {
    const evl = makeEvl({
      resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } },
      podTemplate: {
        labels: { team: 'payments', 'argocd.argoproj.io/instance': 'shop' },
        annotations: { 'prometheus.io/scrape': 'true', 'kubectl.kubernetes.io/last-applied-configuration': '{}' },
        nodeSelector: { disk: 'ssd' },
        tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'logs', effect: 'NoSchedule' }],
        affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [] } } },
        priorityClassName: 'high',
      },
    });
    const p = desiredPod(evl, OPTS);
    const s = p.spec as any;
    expect(s.containers[0].resources).toEqual({ requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } });
    expect(s.nodeSelector).toEqual({ disk: 'ssd' });
    expect(s.tolerations).toEqual([{ key: 'dedicated', operator: 'Equal', value: 'logs', effect: 'NoSchedule' }]);
    expect(s.affinity).toEqual({ nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [] } } });
    expect(s.priorityClassName).toBe('high');
    expect(p.metadata.labels).toEqual({ ...BASE_LABELS, 'app.kubernetes.io/component': 'log-server', team: 'payments' });
    expect(p.metadata.annotations).toEqual({ 'prometheus.io/scrape': 'true', [SPEC_HASH_ANNOTATION]: expect.stringMatching(/^[0-9a-f]{16}$/) });
    // podTemplate labels/annotations go to the pod only.
    expect(desiredPvc(evl).metadata.labels).not.toHaveProperty('team');
    expect(desiredService(evl).metadata.labels).not.toHaveProperty('team');
    expect(desiredService(evl).metadata).not.toHaveProperty('annotations');
  });

  it('never copies the EventLog labels or annotations (GitOps tracking) to children', () => {
    const evl = makeEvl(
      {},
      {
        labels: { 'argocd.argoproj.io/instance': 'shop', 'kustomize.toolkit.fluxcd.io/name': 'apps', 'app.kubernetes.io/instance': 'argo-app', team: 'x' },
        annotations: { 'argocd.argoproj.io/tracking-id': 'shop:eventlog.dev/EventLog:shop/orders', 'kubectl.kubernetes.io/last-applied-configuration': '{}' },
      },
    );
    const owned = [desiredPvc(evl, OPTS), desiredService(evl, OPTS), desiredPod(evl, OPTS), desiredTokenSecret(evl, 'a-token'), desiredNetworkPolicy(evl, OPTS)];
    for (const o of owned) {
      const text = JSON.stringify(o.metadata);
      expect(text).not.toMatch(/argocd|fluxcd|last-applied|argo-app/);
      expect(o.metadata.labels['app.kubernetes.io/instance']).toBe('orders');
      expect(o.metadata.labels).not.toHaveProperty('team');
    }
  });

  it('has a stable spec hash that changes with the pod spec or user labels', () => {
    const h = (evl: ReturnType<typeof makeEvl>) => desiredPod(evl, OPTS).metadata.annotations[SPEC_HASH_ANNOTATION];
    expect(h(makeEvl())).toBe(h(makeEvl()));
    expect(h(makeEvl({ durability: 'None' }))).not.toBe(h(makeEvl()));
    expect(h(makeEvl({ image: 'eventlog:2' }))).not.toBe(h(makeEvl()));
    expect(h(makeEvl({ podTemplate: { labels: { team: 'a' } } }))).not.toBe(h(makeEvl()));
    // Storage size and drift policy are not pod fields.
    expect(h(makeEvl({ storage: { size: '2Gi' }, driftPolicy: 'Report' }))).toBe(h(makeEvl()));
  });
});
