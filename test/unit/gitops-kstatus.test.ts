/**
 * What Flux (kstatus, the real sigs.k8s.io/cli-utils library through
 * test/tools/cmd/kstatus) and Argo CD (health.lua under gopher-lua) make of the statuses
 * the operator actually computes (`computeStatus`, pure) for each situation: just
 * created (operator not there yet), progressing, Ready, Stalled, a spec change not yet
 * observed, deleting, suspended. Both tools must agree with the operator's own summary:
 *
 *   Ready=True (not suspended)        -> Current     / Healthy
 *   Stalled=True                      -> Failed      / Degraded
 *   converging (Reconciling=True)     -> InProgress  / Progressing
 *   status older than the generation -> InProgress  / Progressing
 *   deleting                          -> Terminating / Progressing
 *   suspended                         -> Current     / Suspended
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { STATUS_DEFAULT } from '../../src/api/crd.ts';
import type { EventLog, EventLogStatus } from '../../src/api/eventlog.ts';
import { desiredPod } from '../../src/decisions/desired.ts';
import { SPEC_HASH_ANNOTATION } from '../../src/decisions/labels.ts';
import type { ServerStatus } from '../../src/decisions/server-status.ts';
import { computeStatus, type StatusInput } from '../../src/decisions/status.ts';
import { decideRollout } from '../../src/decisions/rollout.ts';
import { ensureArgoLua, runHealthChecks, type HealthStatus } from '../support/argocd-lua.ts';
import { TOOL_BUILD_TIMEOUT_MS } from '../support/go-tools.ts';
import { ensureKStatus, kstatusOfAll, type KStatusResult } from '../support/kstatus.ts';
import { NOW, OPTS, at, healthy, makeEvl, serverStatus, type LooseStatusInput } from './decisions/fixtures.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = any;
type Input = LooseStatusInput;

const server = (over: Partial<ServerStatus>) => (i: Input) => {
  i.server = { ok: true, status: serverStatus(over) };
};
const corruption = { id: 'c0ffee', segment: 'segments/1.seg', offset: 4096, reason: 'checksum mismatch' };

/** The EventLog as the API serves it: metadata, spec and the status the operator wrote. */
function served(evl: EventLog, status: EventLogStatus | undefined): Record<string, unknown> {
  return { apiVersion: 'eventlog.dev/v1alpha1', kind: 'EventLog', metadata: evl.metadata, spec: evl.spec, ...(status ? { status } : {}) };
}

interface Case {
  name: string;
  object: Record<string, unknown>;
  kstatus: KStatusResult['status'];
  kstatusMessage?: string | RegExp;
  argo: HealthStatus['status'];
}

function scenario(name: string, mutate: (i: Input) => void, kstatus: Case['kstatus'], argo: string): Case {
  const input = healthy();
  mutate(input);
  return { name, object: served(input.evl as EventLog, computeStatus(input)), kstatus, argo };
}

const ready = computeStatus(healthy());
const generation2 = makeEvl({ durability: 'Interval' }, { generation: 2 });

const cases: Case[] = [
  // Just created, operator not running: the API server's default status.
  { name: 'just created (the CRD default status)', object: served(makeEvl(), { ...STATUS_DEFAULT }), kstatus: 'InProgress', kstatusMessage: 'EventLog generation is 1, but latest observed generation is 0', argo: 'Progressing' },
  // The operator's first pass: nothing exists yet.
  { name: 'first reconcile: creating everything', object: served(makeEvl(), computeStatus({ evl: makeEvl(), now: NOW })), kstatus: 'InProgress', kstatusMessage: /^creating PersistentVolumeClaim orders-data/, argo: 'Progressing' },
  scenario('PVC pending', (i) => (i.pvc.status.phase = 'Pending'), 'InProgress', 'Progressing'),
  scenario('pod missing', (i) => ((i as StatusInput).pod = undefined), 'InProgress', 'Progressing'),
  scenario('server recovering', server({ state: 'recovering', recovery: null }), 'InProgress', 'Progressing'),
  scenario('server unreachable', (i) => (i.server = { ok: false, error: 'Timeout', message: 'no answer within 2000 ms' }), 'InProgress', 'Progressing'),
  scenario('storage failure (server failed)', server({ state: 'failed' }), 'InProgress', 'Progressing'),
  scenario('rollout pending', (i) => (i.desiredPodHash = 'newhash'), 'InProgress', 'Progressing'),
  // An operator upgrade: this pod runs an older template and waits for a rollout slot.
  scenario(
    'rollout queued behind another EventLog',
    (i) => {
      i.desiredPodHash = 'newhash';
      i.rollout = decideRollout({ desired: { template: 'newhash' }, pod: { template: 'oldhash', terminating: false, ready: true }, server: { bootId: 'b1' }, recorded: undefined, suspended: false, holders: ['shop/payments'], max: 1, now: '2026-11-22T05:00:00Z' });
    },
    'InProgress',
    'Progressing',
  ),
  scenario(
    'rolling out (holds a rollout slot)',
    (i) => {
      i.desiredPodHash = 'newhash';
      i.rollout = decideRollout({ desired: { template: 'newhash' }, pod: { template: 'oldhash', terminating: false, ready: true }, server: { bootId: 'b1' }, recorded: undefined, suspended: false, holders: [], max: 1, now: '2026-11-22T05:00:00Z' });
    },
    'InProgress',
    'Progressing',
  ),
  { name: 'Ready', object: served(makeEvl(), ready), kstatus: 'Current', kstatusMessage: 'Resource is Ready', argo: 'Healthy' },
  scenario('StorageClass missing', (i) => ((i.pvc.status.phase = 'Pending'), (i.storageClass = { name: 'fast', found: false })), 'Failed', 'Degraded'),
  scenario('corruption', server({ state: 'corrupt', recovery: { outcome: 'CorruptionDetected', startedAt: '2026-11-22T04:59:00.000Z', durationMs: 5, recordsRecovered: 7, bytesTruncated: 0, corruption } }), 'Failed', 'Degraded'),
  scenario('spec cannot work', (i) => (i.specError = 'podTemplate.affinity is rejected by the Pod API'), 'Failed', 'Degraded'),
  // A spec change the operator has not observed: the Ready status of generation 1 on a generation-2 object.
  { name: 'spec change not yet observed', object: served(generation2, ready), kstatus: 'InProgress', kstatusMessage: 'EventLog generation is 2, but latest observed generation is 1', argo: 'Progressing' },
  scenario(
    'spec change observed, pod rolling out',
    (i) => {
      i.evl = { ...generation2, status: ready };
      i.desiredPodHash = (desiredPod(generation2, OPTS).metadata as Loose).annotations[SPEC_HASH_ANNOTATION];
      i.now = at(5);
    },
    'InProgress',
    'Progressing',
  ),
  scenario('deleting', (i) => (i.evl = { ...i.evl, metadata: { ...i.evl.metadata, deletionTimestamp: '2026-11-22T04:00:00Z', finalizers: ['eventlog.dev/finalizer'] } }), 'Terminating', 'Progressing'),
  scenario('suspended', (i) => (i.evl = makeEvl({ suspend: true })), 'Current', 'Suspended'),
];

let verdicts: KStatusResult[];
let health: HealthStatus[];
beforeAll(async () => {
  ensureKStatus();
  ensureArgoLua();
  const objects = cases.map((c) => c.object);
  [verdicts, health] = await Promise.all([kstatusOfAll(objects), runHealthChecks(objects)]);
}, TOOL_BUILD_TIMEOUT_MS);

describe('the statuses the operator computes, as kstatus and Argo CD read them', () => {
  it.each(cases.map((c, i) => [c.name, i] as const))('%s', (_name, i) => {
    const c = cases[i]!;
    expect({ kstatus: verdicts[i]!.status, argo: health[i]!.status }).toEqual({ kstatus: c.kstatus, argo: c.argo });
    if (c.kstatusMessage !== undefined) expect(verdicts[i]!.message).toMatch(c.kstatusMessage);
  });

  it("kstatus's message is the operator's own: Reconciling's or Stalled's message", () => {
    cases.forEach((c, i) => {
      const status = c.object.status as EventLogStatus | undefined;
      const stalled = status?.conditions?.find((x) => x.type === 'Stalled' && x.status === 'True');
      const reconciling = status?.conditions?.find((x) => x.type === 'Reconciling' && x.status === 'True');
      if (c.kstatus === 'Failed') expect(verdicts[i]!.message, c.name).toBe(stalled?.message);
      if (c.kstatus === 'InProgress' && status?.observedGeneration === (c.object.metadata as { generation: number }).generation) expect(verdicts[i]!.message, c.name).toBe(reconciling?.message);
    });
  });

  it('Current only when Ready=True for this generation (or suspended, when Argo CD says Suspended)', () => {
    cases.forEach((c, i) => {
      if (verdicts[i]!.status !== 'Current') return;
      const status = c.object.status as EventLogStatus;
      const readyCond = status.conditions?.find((x) => x.type === 'Ready');
      expect(status.observedGeneration, c.name).toBe((c.object.metadata as { generation: number }).generation);
      expect(readyCond?.status === 'True' || health[i]!.status === 'Suspended', c.name).toBe(true);
    });
  });
});
