/**
 * The log server's access control end to end: the operator (in-process, against the
 * shared control plane) gives each EventLog a token Secret and a NetworkPolicy; the node
 * agent runs the log server with the token file from the Secret volume. The local
 * cluster has no CNI, so the NetworkPolicy is checked as an object (owned, corrected),
 * not as enforced traffic; the token is checked on the real server.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventLogStatus } from '../../src/api/eventlog.ts';
import { KubeHttp, statusCodeOf } from '../../src/runtime/kube-http.ts';
import { ensureEventLogCrd, freshNamespace, kubeConfigFromInject, waitFor, type FreshNamespace } from './helpers.ts';
import { EventLogApi, startInProcessOperator, type InProcessOperator } from './operator-helpers.ts';

const POLL_MS = 1_000;
/** A namespace name the NetworkPolicies must admit (the operator's, from its config). */
const OPERATOR_NS = 'eventlog-ops-test';

let kc: KubeConfig;
let ns: FreshNamespace;
let http: KubeHttp;
let operator: InProcessOperator | undefined;

type Meta = { name: string; uid: string; resourceVersion: string; generation?: number; labels?: Record<string, string>; annotations?: Record<string, string>; ownerReferences?: { uid: string; controller?: boolean; kind: string }[]; deletionTimestamp?: string };
type Evl = { metadata: Meta; status?: EventLogStatus };
type Secret = { metadata: Meta; type?: string; data?: Record<string, string> };
type NetPol = { metadata: Meta; spec: { podSelector: unknown; policyTypes: string[]; ingress: Array<{ from: unknown[]; ports: unknown[] }> } };
type Pod = { metadata: Meta; spec: { volumes?: Array<{ name: string; secret?: { secretName: string } }>; containers: Array<{ args?: string[] }> }; status?: { podIP?: string } };

const evlPath = (name = '') => `/apis/eventlog.dev/v1alpha1/namespaces/${ns.name}/eventlogs${name ? `/${name}` : ''}`;
const corePath = (plural: string, name: string) => `/api/v1/namespaces/${ns.name}/${plural}/${name}`;
const npPath = (name: string) => `/apis/networking.k8s.io/v1/namespaces/${ns.name}/networkpolicies/${name}`;

async function get<T>(path: string): Promise<T | undefined> {
  try {
    return await http.json<T>('GET', path);
  } catch (error) {
    if (statusCodeOf(error) === 404) return undefined;
    throw error;
  }
}

const cond = (e: Evl | undefined, type: string) => e?.status?.conditions?.find((c) => c.type === type);
const tokenOf = (s: Secret | undefined) => (s?.data?.token ? Buffer.from(s.data.token, 'base64').toString('utf8') : undefined);
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function waitReadyOn(name: string, podUid: string | undefined, message: string): Promise<Evl> {
  return waitFor(
    async () => {
      const e = await get<Evl>(evlPath(name));
      const ready = cond(e, 'Ready');
      const fresh = podUid === undefined || (e?.status?.pod?.uid !== undefined && e.status.pod.uid !== podUid);
      return ready?.status === 'True' && ready.observedGeneration === e?.metadata.generation && fresh ? e : undefined;
    },
    { message, timeoutMs: 120_000, intervalMs: 300 },
  );
}

beforeAll(async () => {
  kc = kubeConfigFromInject();
  await ensureEventLogCrd(kc);
  ns = await freshNamespace('opsec');
  http = new KubeHttp(kc);
  operator = startInProcessOperator({ kc, namespaces: [ns.name], identity: 'security-test', pollMs: POLL_MS, operatorNamespace: OPERATOR_NS });
});

afterAll(async () => {
  if (operator && ns) await new EventLogApi(http, ns.name).deleteAll();
  await operator?.stop();
  await ns?.cleanup();
});

describe('EventLog access control', () => {
  let evlUid = '';
  let token = '';
  let podUid = '';
  let eventId = '';

  it('creates an owned token Secret and NetworkPolicy; status says where the token is; Ready with the operator polling by token', async () => {
    const created = await http.json<Evl>('POST', evlPath(), {
      body: { apiVersion: 'eventlog.dev/v1alpha1', kind: 'EventLog', metadata: { name: 'vault' }, spec: { storage: { size: '64Mi', retentionPolicy: 'Delete' } } },
    });
    evlUid = created.metadata.uid;
    const evl = await waitReadyOn('vault', undefined, 'EventLog vault to become Ready');
    // Ready/LogAvailable needs a successful GET /status: the operator sent the token.
    expect(cond(evl, 'Ready')?.reason).toBe('LogAvailable');
    expect(evl.status?.recovery?.lastOutcome).toBe('Clean');
    expect(evl.status?.tokenSecret).toEqual({ name: 'vault-token', key: 'token' });

    const secret = (await get<Secret>(corePath('secrets', 'vault-token')))!;
    expect(secret.type).toBe('Opaque');
    expect(secret.metadata.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'eventlog-operator', 'app.kubernetes.io/instance': 'vault', 'app.kubernetes.io/component': 'auth' });
    expect(secret.metadata.ownerReferences).toEqual([expect.objectContaining({ uid: evlUid, kind: 'EventLog', controller: true })]);
    token = tokenOf(secret)!;
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const np = (await get<NetPol>(npPath('vault')))!;
    expect(np.metadata.ownerReferences).toEqual([expect.objectContaining({ uid: evlUid, kind: 'EventLog', controller: true })]);
    expect(np.metadata.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'eventlog-operator', 'app.kubernetes.io/instance': 'vault' });
    expect(np.spec.podSelector).toEqual({ matchLabels: { 'app.kubernetes.io/name': 'eventlog', 'app.kubernetes.io/instance': 'vault', 'app.kubernetes.io/component': 'log-server' } });
    expect(np.spec.policyTypes).toEqual(['Ingress']);
    expect(np.spec.ingress).toEqual([{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': OPERATOR_NS } } }, { podSelector: {} }], ports: [{ protocol: 'TCP', port: 8080 }] }]);

    const pod = (await get<Pod>(corePath('pods', 'vault-0')))!;
    expect(pod.spec.volumes).toContainEqual(expect.objectContaining({ name: 'token', secret: expect.objectContaining({ secretName: 'vault-token' }) }));
    expect(pod.spec.containers[0]!.args).toEqual(expect.arrayContaining(['--auth-token-file', '/etc/eventlog/token/token']));
    expect(pod.metadata.annotations?.['eventlog.dev/token-hash']).toMatch(/^[0-9a-f]{16}$/);
    podUid = pod.metadata.uid;
  });

  it('the log server refuses requests without the token (401) and serves them with it; probes stay open', async () => {
    const ip = (await get<Pod>(corePath('pods', 'vault-0')))!.status!.podIP!;
    const base = `http://${ip}:8080`;
    for (const [path, init] of [
      ['/events?after=0', {}],
      ['/status', {}],
      ['/stats', {}],
      ['/events', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"type":"sneaky"}' }],
    ] as Array<[string, RequestInit]>) {
      const none = await fetch(`${base}${path}`, init);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(await none.json()).toMatchObject({ error: 'unauthorized' });
      const wrong = await fetch(`${base}${path}`, { ...init, headers: { ...(init.headers as Record<string, string> | undefined), ...bearer('not-the-token') } });
      expect(wrong.status).toBe(401);
    }
    const posted = await fetch(`${base}/events`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer(token) }, body: JSON.stringify({ type: 'secret-kept', n: 1 }) });
    expect(posted.status).toBe(201);
    eventId = ((await posted.json()) as { id: string }).id;
    const read = await fetch(`${base}/events?after=0`, { headers: bearer(token) });
    expect(read.status).toBe(200);
    const lines = (await read.text()).split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(1); // the refused POSTs appended nothing
    expect(JSON.parse(lines[0]!)).toMatchObject({ id: eventId, type: 'secret-kept' });
    for (const open of ['/healthz', '/readyz', '/metrics']) expect((await fetch(`${base}${open}`)).status).toBe(200);
  });

  it('puts back an edited NetworkPolicy (driftPolicy Correct) and records it', async () => {
    const before = await get<Evl>(evlPath('vault'));
    const corrections = before?.status?.drift?.corrections ?? 0;
    // Someone opens the policy to the world: an extra peer and a wider port list.
    await http.json('PATCH', npPath('vault'), {
      query: { fieldManager: 'kubectl-edit' },
      contentType: 'application/merge-patch+json',
      body: { spec: { ingress: [{ from: [{ ipBlock: { cidr: '0.0.0.0/0' } }], ports: [{ protocol: 'TCP', port: 8080 }] }] } },
    });
    const np = await waitFor(
      async () => {
        const p = await get<NetPol>(npPath('vault'));
        return p && JSON.stringify(p.spec.ingress).includes(OPERATOR_NS) && !JSON.stringify(p.spec.ingress).includes('ipBlock') ? p : undefined;
      },
      { message: 'NetworkPolicy vault to be put back', timeoutMs: 60_000 },
    );
    expect(np.spec.ingress).toEqual([{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': OPERATOR_NS } } }, { podSelector: {} }], ports: [{ protocol: 'TCP', port: 8080 }] }]);
    const evl = await waitFor(
      async () => {
        const e = await get<Evl>(evlPath('vault'));
        return (e?.status?.drift?.corrections ?? 0) > corrections ? e : undefined;
      },
      { message: 'the NetworkPolicy correction to be counted in status.drift', timeoutMs: 60_000 },
    );
    expect(evl.status?.drift?.lastCorrectedAt).toBeDefined();
    const events = await http.json<{ items: { reason: string; note?: string; regarding: { uid: string } }[] }>('GET', `/apis/events.k8s.io/v1/namespaces/${ns.name}/events`);
    const mine = events.items.filter((e) => e.regarding.uid === evlUid);
    expect(mine.some((e) => e.reason === 'DriftDetected' && (e.note ?? '').includes('NetworkPolicy vault spec.ingress'))).toBe(true);
    expect(mine.some((e) => e.reason === 'DriftCorrected')).toBe(true);
  });

  it('spec.clients.podSelector narrows who the NetworkPolicy admits (a rollout, not drift)', async () => {
    await http.json('PATCH', evlPath('vault'), {
      contentType: 'application/merge-patch+json',
      body: { spec: { clients: { podSelector: { matchLabels: { role: 'writer' } } } } },
    });
    const np = await waitFor(
      async () => {
        const p = await get<NetPol>(npPath('vault'));
        return p && JSON.stringify(p.spec.ingress).includes('writer') ? p : undefined;
      },
      { message: 'NetworkPolicy vault to follow spec.clients', timeoutMs: 60_000 },
    );
    expect(np.spec.ingress[0]!.from).toEqual([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': OPERATOR_NS } } }, { podSelector: { matchLabels: { role: 'writer' } } }]);
    const evl = await waitReadyOn('vault', undefined, 'EventLog vault to be Ready for the new generation');
    expect(cond(evl, 'Drifted')?.status).toBe('False');
    // The pod is not touched by a client change.
    expect((await get<Pod>(corePath('pods', 'vault-0')))?.metadata.uid).toBe(podUid);
  });

  it('a deleted token Secret gets a new token; the pod is recreated with it and Ready; the data is still there', async () => {
    await http.json('DELETE', corePath('secrets', 'vault-token'));
    const secret = await waitFor(
      async () => {
        const s = await get<Secret>(corePath('secrets', 'vault-token'));
        const t = tokenOf(s);
        return s && t && t !== token && !s.metadata.deletionTimestamp ? s : undefined;
      },
      { message: 'Secret vault-token to be recreated with a new token', timeoutMs: 60_000 },
    );
    const fresh = tokenOf(secret)!;
    expect(secret.metadata.ownerReferences).toEqual([expect.objectContaining({ uid: evlUid, controller: true })]);
    const evl = await waitReadyOn('vault', podUid, 'EventLog vault to be Ready on a pod started with the new token');
    expect(evl.status?.tokenSecret).toEqual({ name: 'vault-token', key: 'token' });
    const pod = (await get<Pod>(corePath('pods', 'vault-0')))!;
    expect(pod.metadata.uid).not.toBe(podUid);
    const base = `http://${pod.status!.podIP}:8080`;
    expect((await fetch(`${base}/events/${eventId}`, { headers: bearer(token) })).status).toBe(401);
    const read = await fetch(`${base}/events/${eventId}`, { headers: bearer(fresh) });
    expect(read.status).toBe(200);
    expect(await read.json()).toMatchObject({ id: eventId, type: 'secret-kept' });
    // The token is now stable: later passes neither rotate it nor restart the pod.
    await new Promise((r) => setTimeout(r, 4 * POLL_MS));
    expect(tokenOf(await get<Secret>(corePath('secrets', 'vault-token')))).toBe(fresh);
    expect((await get<Pod>(corePath('pods', 'vault-0')))?.metadata.uid).toBe(pod.metadata.uid);
  });
});
