/**
 * The Event recorder against the real API server: Events are accepted (MicroTime
 * format, required fields), repeats within the window become one Event's series, a
 * different reason is its own Event, and a failure does not throw.
 */
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { silentLogger } from '../../src/common/logger.ts';
import { EventRecorder, type EventObjectRef } from '../../src/runtime/recorder.ts';
import { KubeHttp } from '../../src/runtime/kube-http.ts';
import { freshNamespace, kubeConfigFromInject, type FreshNamespace } from './helpers.ts';

let kc: KubeConfig;
let ns: FreshNamespace;
let target: EventObjectRef;

type EventList = { items: Array<{ reason: string; type: string; note: string; regarding: { uid: string }; series?: { count: number }; reportingController: string }> };

beforeAll(async () => {
  kc = kubeConfigFromInject();
  ns = await freshNamespace('recorder');
  const cm = await kc.makeApiClient(CoreV1Api).createNamespacedConfigMap({ namespace: ns.name, body: { metadata: { name: 'subject' } } });
  target = { apiVersion: 'v1', kind: 'ConfigMap', namespace: ns.name, name: 'subject', uid: cm.metadata!.uid! };
});

afterAll(async () => {
  await ns?.cleanup();
});

describe('EventRecorder', () => {
  it('records events.k8s.io/v1 Events and folds repeats into a series', async () => {
    const http = new KubeHttp(kc);
    let t = Date.parse('2026-01-01T00:00:00Z');
    const recorder = new EventRecorder({ http, controller: 'eventlog.dev/eventlog-operator', instance: 'test', log: silentLogger, now: () => new Date((t += 1000)) });
    await recorder.record(target, { type: 'Warning', reason: 'DriftDetected', note: 'Service subject: .spec.ports[http].port is 9090, expected 8080', action: 'Reconcile' });
    await recorder.record(target, { type: 'Warning', reason: 'DriftDetected', note: 'Service subject: .spec.ports[http].port is 9090, expected 8080', action: 'Reconcile' });
    await recorder.record(target, { type: 'Warning', reason: 'DriftDetected', note: 'Service subject: .spec.ports[http].port is 9090, expected 8080', action: 'Reconcile' });
    await recorder.record(target, { type: 'Normal', reason: 'DriftCorrected', note: 'Service subject: put .spec.ports[http].port back to 8080', action: 'Reconcile' });

    const list = await http.json<EventList>('GET', `/apis/events.k8s.io/v1/namespaces/${ns.name}/events`);
    const byReason = Object.fromEntries(list.items.map((e) => [e.reason, e]));
    expect(list.items).toHaveLength(2);
    expect(byReason.DriftDetected).toMatchObject({ type: 'Warning', regarding: { uid: target.uid }, series: { count: 3 }, reportingController: 'eventlog.dev/eventlog-operator' });
    expect(byReason.DriftCorrected).toMatchObject({ type: 'Normal', note: 'Service subject: put .spec.ports[http].port back to 8080' });
    expect(byReason.DriftCorrected!.series).toBeUndefined();
  });

  it('logs instead of throwing when the API server refuses the Event', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (l: string) => lines.push(l) });
    const recorder = new EventRecorder({ http: new KubeHttp(kc), controller: 'eventlog.dev/eventlog-operator', instance: 'test', log });
    await recorder.record({ ...target, namespace: 'no-such-namespace-xyz' }, { type: 'Normal', reason: 'Test', note: 'n', action: 'Reconcile' });
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ msg: 'could not record a Kubernetes Event', object: 'ConfigMap no-such-namespace-xyz/subject', reason: 'Test' });
  });
});
