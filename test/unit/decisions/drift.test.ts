import { describe, expect, it } from 'vitest';
import { desiredPod, desiredPvc, desiredService } from '../../../src/decisions/desired.ts';
import {
  classifyDifferences,
  diffOwned,
  listsToReplace,
  managesPath,
  podNeedsRecreate,
  renderValue,
  takenOver,
  type DriftFinding,
  type ManagedFieldsEntry,
} from '../../../src/decisions/drift.ts';
import { FIELD_MANAGER, SPEC_HASH_ANNOTATION } from '../../../src/decisions/labels.ts';
import { OPTS, asLive, makeEvl } from './fixtures.ts';

const evl = makeEvl({
  resources: { requests: { cpu: '500m', memory: '1024Mi' } },
  podTemplate: { tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'logs', effect: 'NoSchedule' }], nodeSelector: { disk: 'ssd' } },
});
const pod = desiredPod(evl, OPTS);
const svc = desiredService(evl, OPTS);
const pvc = desiredPvc(evl, OPTS);

describe('diffOwned', () => {
  it('reports nothing for defaulted and added fields', () => {
    const livePod = asLive(pod);
    // The API server canonicalises quantities.
    livePod.spec.containers[0].resources.requests = { cpu: '0.5', memory: '1Gi' };
    expect(diffOwned('Pod', pod, livePod)).toEqual([]);
    expect(diffOwned('Service', svc, asLive(svc))).toEqual([]);
    expect(diffOwned('PersistentVolumeClaim', pvc, asLive(pvc))).toEqual([]);
  });

  it('reports a deleted object as path "."', () => {
    expect(diffOwned('Service', svc, undefined)).toEqual([{ kind: 'Service', name: 'orders', path: '.', expected: 'present', actual: 'deleted' }]);
  });

  type Case = [string, 'Pod' | 'Service' | 'PersistentVolumeClaim', (o: Record<string, any>) => void, Partial<DriftFinding>[]];
  const cases: Case[] = [
    ['pod label changed', 'Pod', (o) => (o.metadata.labels['app.kubernetes.io/component'] = 'other'), [{ path: 'metadata.labels["app.kubernetes.io/component"]', expected: 'log-server', actual: 'other' }]],
    ['pod label removed', 'Pod', (o) => delete o.metadata.labels['app.kubernetes.io/managed-by'], [{ path: 'metadata.labels["app.kubernetes.io/managed-by"]', expected: 'eventlog-operator', actual: undefined }]],
    ['pod image changed', 'Pod', (o) => (o.spec.containers[0].image = 'evil:latest'), [{ path: 'spec.containers[name=server].image', expected: 'eventlog:dev', actual: 'evil:latest' }]],
    ['pod env changed', 'Pod', (o) => (o.spec.containers[0].env[0].valueFrom.fieldRef.fieldPath = 'status.hostIP'), [{ path: 'spec.containers[name=server].env[name=POD_IP].valueFrom.fieldRef.fieldPath', expected: 'status.podIP', actual: 'status.hostIP' }]],
    ['pod env removed', 'Pod', (o) => (o.spec.containers[0].env = []), [{ path: 'spec.containers[name=server].env[name=POD_IP]', actual: undefined }]],
    ['pod args changed', 'Pod', (o) => (o.spec.containers[0].args[7] = 'none'), [{ path: 'spec.containers[name=server].args' }]],
    ['pod security loosened', 'Pod', (o) => (o.spec.containers[0].securityContext.allowPrivilegeEscalation = true), [{ path: 'spec.containers[name=server].securityContext.allowPrivilegeEscalation', expected: 'true'.replace('true', 'false'), actual: 'true' }]],
    ['pod resources changed', 'Pod', (o) => (o.spec.containers[0].resources.requests.cpu = '1'), [{ path: 'spec.containers[name=server].resources.requests.cpu', expected: '500m', actual: '1' }]],
    ['pod toleration removed', 'Pod', (o) => (o.spec.tolerations = o.spec.tolerations.slice(1)), [{ path: 'spec.tolerations' }]],
    ['pod nodeSelector key added', 'Pod', (o) => (o.spec.nodeSelector.zone = 'a'), [{ path: 'spec.nodeSelector' }]],
    ['pod owner reference removed', 'Pod', (o) => (o.metadata.ownerReferences = []), [{ path: 'metadata.ownerReferences[uid=uid-1]' }]],
    ['service port changed', 'Service', (o) => (o.spec.ports[0].port = 80), [{ path: 'spec.ports[name=http].port', expected: '8080', actual: '80' }]],
    ['service port renamed', 'Service', (o) => (o.spec.ports[0].name = 'web'), [{ path: 'spec.ports[name=http]', actual: undefined }]],
    ['service selector changed', 'Service', (o) => (o.spec.selector['app.kubernetes.io/instance'] = 'other'), [{ path: 'spec.selector' }]],
    ['service selector key added', 'Service', (o) => (o.spec.selector.extra = 'x'), [{ path: 'spec.selector' }]],
    ['service type changed', 'Service', (o) => (o.spec.type = 'NodePort'), [{ path: 'spec.type', expected: 'ClusterIP', actual: 'NodePort' }]],
    ['pvc size shrunk', 'PersistentVolumeClaim', (o) => (o.spec.resources.requests.storage = '512Mi'), [{ path: 'spec.resources.requests.storage', expected: '1Gi', actual: '512Mi' }]],
    ['pvc access mode changed', 'PersistentVolumeClaim', (o) => (o.spec.accessModes = ['ReadWriteMany']), [{ path: 'spec.accessModes', expected: '["ReadWriteOnce"]', actual: '["ReadWriteMany"]' }]],
  ];

  it.each(cases)('%s', (_name, kind, mutate, expected) => {
    const desired = kind === 'Pod' ? pod : kind === 'Service' ? svc : pvc;
    const live = asLive(desired);
    mutate(live);
    const got = diffOwned(kind, desired, live);
    expect(got).toHaveLength(expected.length);
    expected.forEach((e, i) => expect(got[i]).toMatchObject({ kind, name: desired.metadata.name, ...e }));
    if ('actual' in expected[0]! && expected[0]!.actual === undefined) expect(got[0]!.actual).toBeUndefined();
  });

  it('compares quantities by value, strings elsewhere', () => {
    const live = asLive(pvc);
    live.spec.resources.requests.storage = '1073741824';
    expect(diffOwned('PersistentVolumeClaim', pvc, live)).toEqual([]);
    const l2 = asLive(svc);
    l2.spec.type = 'ClusterIP ';
    expect(diffOwned('Service', svc, l2)).toHaveLength(1);
  });

  it('renders values as JSON and truncates them', () => {
    expect(renderValue('x')).toBe('x');
    expect(renderValue(8080)).toBe('8080');
    expect(renderValue({ a: 1 })).toBe('{"a":1}');
    expect(renderValue('y'.repeat(5000))).toHaveLength(1024);
    expect(renderValue(undefined)).toBeUndefined();
  });
});

describe('podNeedsRecreate', () => {
  const item = (path: string, kind: DriftFinding['kind'] = 'Pod'): DriftFinding => ({ kind, name: 'orders-0', path });
  it.each([
    [['spec.containers[name=server].image'], false],
    [['spec.activeDeadlineSeconds'], false],
    [['spec.tolerations'], false],
    [['metadata.labels["app.kubernetes.io/name"]'], false],
    [['metadata.annotations["eventlog.dev/spec-hash"]'], false],
    [['spec.containers[name=server].env[name=POD_IP]'], true],
    [['spec.containers[name=server].args'], true],
    [['spec.volumes[name=data].persistentVolumeClaim.claimName'], true],
    [['spec.containers[name=server].image', 'spec.securityContext.runAsUser'], true],
    [['.'], true],
  ])('%j -> %s', (paths, expected) => {
    expect(podNeedsRecreate(paths.map((p) => item(p)))).toBe(expected);
  });
  it('ignores other kinds', () => {
    expect(podNeedsRecreate([item('spec.ports[name=http].port', 'Service')])).toBe(false);
  });
});

describe('listsToReplace', () => {
  const item = (path: string, kind: DriftFinding['kind'] = 'Service'): DriftFinding => ({ kind, name: 'orders', path });
  it.each([
    [['spec.ports[name=http].port'], ['spec.ports']],
    [['spec.ports[name=http]'], ['spec.ports']],
    [['spec.ports'], ['spec.ports']],
    [['spec.selector', 'metadata.labels["app.kubernetes.io/name"]'], []],
    [['spec.portsExtra'], []],
    [['.'], []],
  ])('Service %j -> %j', (paths, expected) => {
    expect(listsToReplace('Service', paths.map((p) => item(p)))).toEqual(expected);
  });
  it('is empty for kinds whose lists a forced apply corrects', () => {
    expect(listsToReplace('Pod', [item('spec.containers[name=server].env[name=POD_IP]', 'Pod')])).toEqual([]);
    expect(listsToReplace('NetworkPolicy', [item('spec.ingress', 'NetworkPolicy')])).toEqual([]);
  });
  it('sees a port changed in a live Service as a drift it must replace', () => {
    const live = asLive(svc);
    live.spec.ports[0].port = 9090;
    expect(listsToReplace('Service', diffOwned('Service', svc, live))).toEqual(['spec.ports']);
  });
});

/** managedFields as the API server records them for an apply of `desired` by us. */
function ourFields(): ManagedFieldsEntry {
  return {
    manager: FIELD_MANAGER,
    operation: 'Apply',
    apiVersion: 'v1',
    fieldsType: 'FieldsV1',
    fieldsV1: {
      'f:metadata': {
        'f:labels': { 'f:app.kubernetes.io/component': {}, 'f:app.kubernetes.io/instance': {}, 'f:app.kubernetes.io/managed-by': {}, 'f:app.kubernetes.io/name': {} },
        'f:ownerReferences': { 'k:{"uid":"uid-1"}': {} },
      },
      'f:spec': {
        'f:ports': { 'k:{"port":8080,"protocol":"TCP"}': { '.': {}, 'f:name': {}, 'f:port': {}, 'f:targetPort': {} } },
        'f:selector': {},
        'f:type': {},
      },
    },
  };
}

describe('managedFields', () => {
  it('managesPath follows f: and k: keys', () => {
    const f = ourFields().fieldsV1;
    expect(managesPath(f, [{ f: 'spec' }, { f: 'type' }])).toBe(true);
    expect(managesPath(f, [{ f: 'spec' }, { f: 'ports' }, { item: { name: 'http', port: 8080, targetPort: 'http' } }, { f: 'port' }])).toBe(true);
    expect(managesPath(f, [{ f: 'spec' }, { f: 'ports' }, { item: { name: 'http', port: 80 } }, { f: 'port' }])).toBe(false);
    expect(managesPath(f, [{ f: 'spec' }, { f: 'clusterIP' }])).toBe(false);
  });

  it('takenOver: nothing when we own every field', () => {
    expect(takenOver(svc, [ourFields(), { manager: 'kube-controller-manager', operation: 'Update', subresource: 'status', fieldsV1: { 'f:status': {} } }], FIELD_MANAGER)).toEqual([]);
  });

  it('takenOver: fields another manager updated', () => {
    const ours = ourFields();
    const spec = ours.fieldsV1!['f:spec'] as Record<string, any>;
    delete spec['f:type'];
    const labels = (ours.fieldsV1!['f:metadata'] as Record<string, any>)['f:labels'];
    delete labels['f:app.kubernetes.io/component'];
    const editor: ManagedFieldsEntry = {
      manager: 'kubectl-edit',
      operation: 'Update',
      fieldsV1: { 'f:spec': { 'f:type': {} }, 'f:metadata': { 'f:labels': { 'f:app.kubernetes.io/component': {} } } },
    };
    expect(takenOver(svc, [ours, editor], FIELD_MANAGER)).toEqual([
      { path: 'metadata.labels["app.kubernetes.io/component"]', managers: ['kubectl-edit'] },
      { path: 'spec.type', managers: ['kubectl-edit'] },
    ]);
  });

  it('classifyDifferences: a field someone else changed is drift, one we still own is a rollout', () => {
    const live = asLive(svc);
    live.spec.type = 'NodePort';
    live.spec.ports[0].port = 9090; // we applied 9090 earlier; the spec now says 8080
    const ours = ourFields();
    const spec = ours.fieldsV1!['f:spec'] as Record<string, any>;
    delete spec['f:type'];
    spec['f:ports'] = { 'k:{"port":9090,"protocol":"TCP"}': { '.': {}, 'f:name': {}, 'f:port': {}, 'f:targetPort': {} } };
    live.metadata.managedFields = [ours, { manager: 'kubectl-patch', operation: 'Update', fieldsV1: { 'f:spec': { 'f:type': {} } } }];
    // Our entry is keyed by the live port (9090): the item is matched by name, ownership by the live key.
    const { drift, rollout } = classifyDifferences('Service', svc, live, FIELD_MANAGER);
    expect(drift.map((d) => d.path)).toEqual(['spec.type']);
    expect(rollout.map((d) => d.path)).toEqual(['spec.ports[name=http].port']);
    // Rollout: same live/desired difference, the field still ours.
    const live2 = asLive(svc);
    live2.spec.type = 'NodePort';
    live2.metadata.managedFields = [ourFields()];
    expect(classifyDifferences('Service', svc, live2, FIELD_MANAGER)).toEqual({ drift: [], rollout: [expect.objectContaining({ path: 'spec.type' })] });
  });

  it('classifyDifferences: a removed field or a deleted object is drift; without managedFields everything is drift', () => {
    const live = asLive(svc);
    delete live.metadata.labels['app.kubernetes.io/name'];
    live.metadata.managedFields = [ourFields()];
    expect(classifyDifferences('Service', svc, live, FIELD_MANAGER).drift).toHaveLength(1);
    expect(classifyDifferences('Service', svc, undefined, FIELD_MANAGER).drift[0]!.path).toBe('.');
    const l2 = asLive(svc);
    l2.spec.type = 'NodePort';
    expect(classifyDifferences('Service', svc, l2, FIELD_MANAGER).drift).toHaveLength(1);
  });

  it('classifyDifferences: a pod with an older spec hash is a rollout', () => {
    const live = asLive(pod);
    live.metadata.annotations[SPEC_HASH_ANNOTATION] = 'oldhash';
    live.spec.containers[0].image = 'eventlog:old';
    const r = classifyDifferences('Pod', pod, live, FIELD_MANAGER);
    expect(r.drift).toEqual([]);
    expect(r.rollout.map((x) => x.path)).toEqual(['metadata.annotations["eventlog.dev/spec-hash"]', 'spec.containers[name=server].image']);
  });
});
