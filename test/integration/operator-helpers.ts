/**
 * Helpers for integration tests that run the EventLog operator: EventLog/core object
 * access through KubeHttp, waiting for Ready at the current generation, an in-process
 * operator (Manager + the real EventLog controller + EventLog gauges) that records which
 * keys it reconciled, and the operator as a child process (`node src/cli.ts operator`)
 * with its pid tracked and its metrics URL read from its own log.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import type { EventLogStatus } from '../../src/api/eventlog.ts';
import { createLogger, silentLogger } from '../../src/common/logger.ts';
import { ManifestApplier } from '../../src/kube/apply.ts';
import { eventLogController } from '../../src/operator/eventlog-controller.ts';
import { EventLogMetrics } from '../../src/operator/eventlog-metrics.ts';
import { Manager, type ManagerOptions } from '../../src/runtime/manager.ts';
import { EventRecorder } from '../../src/runtime/recorder.ts';
import { KubeHttp, statusCodeOf } from '../../src/runtime/kube-http.ts';
import { waitFor } from './helpers.ts';

export type Obj = {
  metadata: {
    name: string;
    namespace?: string;
    uid: string;
    resourceVersion: string;
    generation?: number;
    finalizers?: string[];
    labels?: Record<string, string>;
    ownerReferences?: { uid: string; controller?: boolean }[];
    deletionTimestamp?: string;
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
};
export type Evl = Obj & { spec: { storage: Record<string, unknown> } & Record<string, unknown>; status?: EventLogStatus };

export const cond = (e: Evl | undefined, type: string) => e?.status?.conditions?.find((c) => c.type === type);

/** EventLog and core object access in one namespace. */
export class EventLogApi {
  readonly http: KubeHttp;
  readonly ns: string;
  constructor(http: KubeHttp, ns: string) {
    this.http = http;
    this.ns = ns;
  }

  evlPath(name = ''): string {
    return `/apis/eventlog.dev/v1alpha1/namespaces/${this.ns}/eventlogs${name ? `/${name}` : ''}`;
  }

  corePath(plural: string, name = ''): string {
    return `/api/v1/namespaces/${this.ns}/${plural}${name ? `/${name}` : ''}`;
  }

  async get<T = Obj>(path: string): Promise<T | undefined> {
    try {
      return await this.http.json<T>('GET', path, { timeoutMs: 10_000 });
    } catch (error) {
      if (statusCodeOf(error) === 404) return undefined;
      throw error;
    }
  }

  async list<T = Obj>(path: string): Promise<T[]> {
    return (await this.http.json<{ items: T[] }>('GET', path, { timeoutMs: 10_000 })).items;
  }

  create(name: string, spec: Record<string, unknown> = {}, storage: Record<string, unknown> = {}): Promise<Evl> {
    return this.http.json<Evl>('POST', this.evlPath(), {
      body: { apiVersion: 'eventlog.dev/v1alpha1', kind: 'EventLog', metadata: { name }, spec: { ...spec, storage: { size: '16Mi', retentionPolicy: 'Delete', ...storage } } },
      timeoutMs: 10_000,
    });
  }

  patchSpec(name: string, spec: Record<string, unknown>): Promise<Evl> {
    return this.http.json<Evl>('PATCH', this.evlPath(name), { contentType: 'application/merge-patch+json', body: { spec }, timeoutMs: 10_000 });
  }

  /** Ready=True for the current generation (what `kubectl wait` checks). */
  waitReady(name: string, timeoutMs = 120_000): Promise<Evl> {
    return waitFor(
      async () => {
        const e = await this.get<Evl>(this.evlPath(name));
        const ready = cond(e, 'Ready');
        return ready?.status === 'True' && ready.observedGeneration === e?.metadata.generation && e?.status?.observedGeneration === e?.metadata.generation ? e : undefined;
      },
      { message: `EventLog ${this.ns}/${name} to become Ready at its current generation`, timeoutMs, intervalMs: 300 },
    );
  }

  /** Deletes every EventLog and waits until they are finalized (needs a running operator). */
  async deleteAll(timeoutMs = 60_000): Promise<void> {
    const items = await this.list<Evl>(this.evlPath()).catch(() => [] as Evl[]);
    for (const e of items) await this.http.json('DELETE', this.evlPath(e.metadata.name)).catch(() => undefined);
    await waitFor(async () => (await this.list(this.evlPath())).length === 0, { message: `EventLogs in ${this.ns} to be finalized`, timeoutMs }).catch(() => undefined);
  }
}

export interface InProcessOperator {
  manager: Manager;
  registry: Registry;
  running: Promise<void>;
  /** Keys this instance reconciled, in order. */
  reconciled: string[];
  metricsText(): Promise<string>;
  stop(): Promise<void>;
}

/** The Manager with the real EventLog controller and gauges, in this process. */
export function startInProcessOperator(opts: {
  kc: KubeConfig;
  namespaces: string[];
  identity: string;
  pollMs?: number;
  /** How often counters alone may be written to status (default 2 s). */
  statusCounterIntervalMs?: number;
  /** The operator's own namespace, admitted by every NetworkPolicy (default: the operator's default). */
  operatorNamespace?: string;
  leaderElection?: ManagerOptions['leaderElection'];
}): InProcessOperator {
  const http = new KubeHttp(opts.kc);
  const registry = new Registry();
  const reconciled: string[] = [];
  const controller = eventLogController({
    http,
    applier: ManifestApplier.forConfig(opts.kc),
    recorder: new EventRecorder({ http, controller: 'eventlog.dev/eventlog-operator', instance: opts.identity, log: silentLogger }),
    config: {
      defaultImage: 'eventlog:dev',
      pollInterval: opts.pollMs ?? 1_000,
      statusCounterInterval: opts.statusCounterIntervalMs ?? 2_000,
      ...(opts.operatorNamespace ? { operatorNamespace: opts.operatorNamespace } : {}),
    },
    metrics: EventLogMetrics.for(registry),
  });
  const manager = new Manager({
    kubeConfig: opts.kc,
    controller: {
      ...controller,
      reconcile: (req) => {
        reconciled.push(`${req.namespace}/${req.name}`);
        return controller.reconcile(req);
      },
    },
    registry,
    // OPERATOR_TEST_LOG=info shows the operator's own log lines.
    log: process.env.OPERATOR_TEST_LOG ? createLogger(`operator-${opts.identity}`, process.env.OPERATOR_TEST_LOG) : silentLogger,
    namespaces: opts.namespaces,
    workers: 2,
    ...(opts.leaderElection ? { leaderElection: { ...opts.leaderElection, identity: opts.identity } } : {}),
    probe: { host: '127.0.0.1', port: 0 },
    metrics: { host: '127.0.0.1', port: 0 },
    shutdownTimeoutMs: 5_000,
  });
  const running = manager.run();
  // A rejection (lost leadership) is asserted by the test that expects it; avoid an unhandled one.
  running.catch(() => undefined);
  return {
    manager,
    registry,
    running,
    reconciled,
    metricsText: () => registry.metrics(),
    stop: async () => {
      await manager.stop();
      await running.catch(() => undefined);
    },
  };
}

export { spawnOperator, type ChildOperator } from '../support/operator-process.ts';

/** One sample of a metric from Prometheus text (undefined: no such series). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[4]);
  }
  return undefined;
}
