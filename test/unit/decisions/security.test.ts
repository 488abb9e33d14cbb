/** Token Secret, token fingerprint on the pod, and NetworkPolicy: desired objects and drift. */
import { describe, expect, it } from 'vitest';
import { desiredNetworkPolicy, desiredPod, desiredTokenSecret, networkPolicyName, tokenSecretName } from '../../../src/decisions/desired.ts';
import { TOKEN_HASH_PATH, classifyDifferences, diffOwned, podNeedsRecreate, podRolloutNeedsRecreate, type ManagedFieldsEntry } from '../../../src/decisions/drift.ts';
import { FIELD_MANAGER, SPEC_HASH_ANNOTATION, TOKEN_HASH_ANNOTATION } from '../../../src/decisions/labels.ts';
import { generateToken, isValidToken, tokenFingerprint, tokenFromSecret } from '../../../src/decisions/token.ts';
import { OPTS, asLive, makeEvl } from './fixtures.ts';

const OWNER = { apiVersion: 'eventlog.dev/v1alpha1', kind: 'EventLog', name: 'orders', uid: 'uid-1', controller: true, blockOwnerDeletion: true };
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('token', () => {
  it('generateToken: 256 random bits, base64url, valid, never the same twice', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const t = generateToken();
      expect(t).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(isValidToken(t)).toBe(true);
      seen.add(t);
    }
    expect(seen.size).toBe(100);
  });

  it('tokenFromSecret: decodes data.token; missing, empty or invalid tokens are undefined', () => {
    expect(tokenFromSecret({ data: { token: b64('abc\n') } })).toBe('abc');
    expect(tokenFromSecret(undefined)).toBeUndefined();
    expect(tokenFromSecret({})).toBeUndefined();
    expect(tokenFromSecret({ data: { other: b64('abc') } })).toBeUndefined();
    expect(tokenFromSecret({ data: { token: '' } })).toBeUndefined();
    expect(tokenFromSecret({ data: { token: b64('two words') } })).toBeUndefined();
  });

  it('tokenFingerprint: stable, differs per token, does not contain the token', () => {
    const t = generateToken();
    expect(tokenFingerprint(t)).toBe(tokenFingerprint(t));
    expect(tokenFingerprint(t)).toMatch(/^[0-9a-f]{16}$/);
    expect(tokenFingerprint(t)).not.toBe(tokenFingerprint(generateToken()));
    expect(t).not.toContain(tokenFingerprint(t));
  });
});

describe('desired token Secret', () => {
  it('is an owned, labelled Opaque Secret <name>-token with the given token under "token"', () => {
    const s = desiredTokenSecret(makeEvl(), 'tok-1');
    expect(s).toEqual({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: 'orders-token',
        namespace: 'shop',
        labels: { 'app.kubernetes.io/name': 'eventlog', 'app.kubernetes.io/instance': 'orders', 'app.kubernetes.io/managed-by': 'eventlog-operator', 'app.kubernetes.io/component': 'auth' },
        ownerReferences: [OWNER],
      },
      type: 'Opaque',
      data: { token: b64('tok-1') },
    });
    expect(tokenSecretName(makeEvl())).toBe('orders-token');
    expect(tokenFromSecret(s)).toBe('tok-1');
  });

  it('drift never compares the token; labels, owner reference and type are compared', () => {
    const desired = desiredTokenSecret(makeEvl(), 'current');
    const live = asLive(desired);
    live.data = { token: b64('someone-else-put-this') };
    expect(diffOwned('Secret', desired, live)).toEqual([]);
    delete live.data;
    expect(diffOwned('Secret', desired, live)).toEqual([]);
    const relabelled = asLive(desired);
    relabelled.metadata.labels['app.kubernetes.io/managed-by'] = 'someone';
    expect(diffOwned('Secret', desired, relabelled).map((d) => d.path)).toEqual(['metadata.labels["app.kubernetes.io/managed-by"]']);
    const orphaned = asLive(desired);
    orphaned.metadata.ownerReferences = [];
    expect(diffOwned('Secret', desired, orphaned).map((d) => d.path)).toEqual(['metadata.ownerReferences[uid=uid-1]']);
    const retyped = asLive(desired);
    retyped.type = 'kubernetes.io/basic-auth';
    expect(diffOwned('Secret', desired, retyped)).toEqual([{ kind: 'Secret', name: 'orders-token', path: 'type', expected: 'Opaque', actual: 'kubernetes.io/basic-auth' }]);
    expect(diffOwned('Secret', desired, undefined)[0]!.path).toBe('.');
  });
});

describe('pod and token', () => {
  it('without a token: an open server, no token volume or annotation', () => {
    const p = desiredPod(makeEvl(), OPTS);
    const s = p.spec as any;
    expect(s.containers[0].args).not.toContain('--auth-token-file');
    expect(s.volumes).toHaveLength(1);
    expect(p.metadata.annotations).not.toHaveProperty(TOKEN_HASH_ANNOTATION);
  });

  it('with a token: mounts the Secret read-only (0440), passes the file, annotates the fingerprint; probes stay on open routes', () => {
    const p = desiredPod(makeEvl(), { ...OPTS, tokenHash: 'aaaaaaaaaaaaaaaa' });
    const c = (p.spec as any).containers[0];
    expect(c.args.slice(-2)).toEqual(['--auth-token-file', '/etc/eventlog/token/token']);
    expect(c.volumeMounts).toContainEqual({ name: 'token', mountPath: '/etc/eventlog/token', readOnly: true });
    expect((p.spec as any).volumes).toContainEqual({ name: 'token', secret: { secretName: 'orders-token', defaultMode: 0o440 } });
    expect(c.env.map((e: { name: string }) => e.name)).toEqual(['POD_IP']);
    expect(c.readinessProbe.httpGet.path).toBe('/readyz');
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    expect(p.metadata.annotations[TOKEN_HASH_ANNOTATION]).toBe('aaaaaaaaaaaaaaaa');
  });

  it('a new token changes the spec hash: a rollout that recreates the pod', () => {
    const before = desiredPod(makeEvl(), { ...OPTS, tokenHash: 'aaaaaaaaaaaaaaaa' });
    const after = desiredPod(makeEvl(), { ...OPTS, tokenHash: 'bbbbbbbbbbbbbbbb' });
    expect(after.metadata.annotations[SPEC_HASH_ANNOTATION]).not.toBe(before.metadata.annotations[SPEC_HASH_ANNOTATION]);
    expect(after.spec).toEqual(before.spec);
    const live = asLive(before);
    const { drift, rollout } = classifyDifferences('Pod', after, live, FIELD_MANAGER);
    expect(drift).toEqual([]);
    expect(rollout.map((f) => f.path).sort()).toEqual([TOKEN_HASH_PATH, 'metadata.annotations["eventlog.dev/spec-hash"]'].sort());
    // Only annotations differ: without the token rule this would be a patch, not a restart.
    expect(podNeedsRecreate(rollout)).toBe(false);
    expect(podRolloutNeedsRecreate(rollout)).toBe(true);
  });

  it('someone editing the token annotation is drift that is patched back, not a restart', () => {
    const desired = desiredPod(makeEvl(), { ...OPTS, tokenHash: 'aaaaaaaaaaaaaaaa' });
    const live = asLive(desired);
    live.metadata.annotations[TOKEN_HASH_ANNOTATION] = 'edited';
    const { drift } = classifyDifferences('Pod', desired, live, FIELD_MANAGER);
    expect(drift.map((f) => f.path)).toEqual([TOKEN_HASH_PATH]);
    expect(podNeedsRecreate(drift)).toBe(false);
  });
});

describe('desired NetworkPolicy', () => {
  it('default: the log pod port only from the operator namespace and every pod of the EventLog namespace', () => {
    const np = desiredNetworkPolicy(makeEvl(), { operatorNamespace: 'eventlog-system' });
    expect(np).toEqual({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: {
        name: 'orders',
        namespace: 'shop',
        labels: { 'app.kubernetes.io/name': 'eventlog', 'app.kubernetes.io/instance': 'orders', 'app.kubernetes.io/managed-by': 'eventlog-operator', 'app.kubernetes.io/component': 'log-server' },
        ownerReferences: [OWNER],
      },
      spec: {
        podSelector: { matchLabels: { 'app.kubernetes.io/name': 'eventlog', 'app.kubernetes.io/instance': 'orders', 'app.kubernetes.io/component': 'log-server' } },
        policyTypes: ['Ingress'],
        ingress: [
          {
            from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'eventlog-system' } } }, { podSelector: {} }],
            ports: [{ protocol: 'TCP', port: 8080 }],
          },
        ],
      },
    });
    expect(networkPolicyName(makeEvl())).toBe('orders');
  });

  it('spec.clients.podSelector, the operator namespace and the port come through', () => {
    const evl = makeEvl({ clients: { podSelector: { matchLabels: { role: 'writer' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['api', 'jobs'] }, { key: 'canary', operator: 'DoesNotExist' }] } } });
    const np = desiredNetworkPolicy(evl, { operatorNamespace: 'ops', port: 9090 });
    const rule = (np.spec.ingress as any)[0];
    expect(rule.from).toEqual([
      { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ops' } } },
      { podSelector: { matchLabels: { role: 'writer' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['api', 'jobs'] }, { key: 'canary', operator: 'DoesNotExist' }] } },
    ]);
    expect(rule.ports).toEqual([{ protocol: 'TCP', port: 9090 }]);
    // An empty selector is "every pod", like omitting it.
    expect(desiredNetworkPolicy(makeEvl({ clients: { podSelector: {} } }), { operatorNamespace: 'ops' })).toEqual(desiredNetworkPolicy(makeEvl(), { operatorNamespace: 'ops' }));
  });
});

/** managedFields of our apply of a NetworkPolicy (atomic selector and lists). */
function ourNetpolFields(): ManagedFieldsEntry {
  return {
    manager: FIELD_MANAGER,
    operation: 'Apply',
    apiVersion: 'networking.k8s.io/v1',
    fieldsType: 'FieldsV1',
    fieldsV1: {
      'f:metadata': {
        'f:labels': { 'f:app.kubernetes.io/component': {}, 'f:app.kubernetes.io/instance': {}, 'f:app.kubernetes.io/managed-by': {}, 'f:app.kubernetes.io/name': {} },
        'f:ownerReferences': { 'k:{"uid":"uid-1"}': {} },
      },
      'f:spec': { 'f:ingress': {}, 'f:podSelector': {}, 'f:policyTypes': {} },
    },
  };
}

describe('NetworkPolicy drift', () => {
  const desired = desiredNetworkPolicy(makeEvl(), { operatorNamespace: 'eventlog-system' });

  it('a faithful live copy is no drift', () => {
    expect(diffOwned('NetworkPolicy', desired, asLive(desired))).toEqual([]);
  });

  it('an added peer, a widened selector, an extra port or an added policy type is drift (exact comparison)', () => {
    const addedPeer = asLive(desired);
    addedPeer.spec.ingress[0].from.push({ ipBlock: { cidr: '0.0.0.0/0' } });
    const widenedNs = asLive(desired);
    widenedNs.spec.ingress[0].from[0].namespaceSelector = {};
    const extraKey = asLive(desired);
    extraKey.spec.podSelector.matchLabels.extra = 'x';
    const allPods = asLive(desired);
    allPods.spec.podSelector = {};
    const extraPort = asLive(desired);
    extraPort.spec.ingress[0].ports.push({ protocol: 'TCP', port: 22 });
    const egress = asLive(desired);
    egress.spec.policyTypes = ['Ingress', 'Egress'];
    const openRule = asLive(desired);
    openRule.spec.ingress.push({});
    for (const [live, path] of [
      [addedPeer, 'spec.ingress'],
      [widenedNs, 'spec.ingress'],
      [extraKey, 'spec.podSelector'],
      [allPods, 'spec.podSelector'],
      [extraPort, 'spec.ingress'],
      [egress, 'spec.policyTypes'],
      [openRule, 'spec.ingress'],
    ] as const) {
      const d = diffOwned('NetworkPolicy', desired, live);
      expect(d.map((x) => x.path)).toEqual([path]);
      expect(d[0]!.kind).toBe('NetworkPolicy');
      expect(d[0]!.expected).toBe(JSON.stringify(path === 'spec.podSelector' ? desired.spec.podSelector : path === 'spec.ingress' ? desired.spec.ingress : desired.spec.policyTypes));
    }
    expect(diffOwned('NetworkPolicy', desired, undefined)).toEqual([{ kind: 'NetworkPolicy', name: 'orders', path: '.', expected: 'present', actual: 'deleted' }]);
  });

  it('someone else editing the rules is drift; a changed spec.clients while we still own the rules is a rollout', () => {
    const edited = asLive(desired);
    edited.spec.ingress[0].from.push({ ipBlock: { cidr: '10.0.0.0/8' } });
    const ours = ourNetpolFields();
    delete (ours.fieldsV1!['f:spec'] as Record<string, unknown>)['f:ingress'];
    edited.metadata.managedFields = [ours, { manager: 'kubectl-edit', operation: 'Update', fieldsV1: { 'f:spec': { 'f:ingress': {} } } }];
    expect(classifyDifferences('NetworkPolicy', desired, edited, FIELD_MANAGER)).toEqual({ drift: [expect.objectContaining({ path: 'spec.ingress' })], rollout: [] });

    const live = asLive(desired);
    live.metadata.managedFields = [ourNetpolFields()];
    const narrowed = desiredNetworkPolicy(makeEvl({ clients: { podSelector: { matchLabels: { role: 'writer' } } } }), { operatorNamespace: 'eventlog-system' });
    expect(classifyDifferences('NetworkPolicy', narrowed, live, FIELD_MANAGER)).toEqual({ drift: [], rollout: [expect.objectContaining({ path: 'spec.ingress' })] });
  });
});
