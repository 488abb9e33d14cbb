/**
 * deploy/monitoring/ is a kustomize Component that renders next to deploy/ (as
 * docs/monitoring.md tells users to include it), and its PodMonitors select exactly the
 * pods and ports our manifests and the operator create: the operator Deployment's pods
 * (deploy/deployment.yaml) and the log pods (desiredPod: labels from
 * src/decisions/labels.ts, the server port). The example NetworkPolicy admits scrapes to
 * the same pods and port.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { DEFAULT_PORT, PORT_NAME, desiredPod } from '../../src/decisions/desired.ts';
import { LABEL_INSTANCE, LABEL_NAME } from '../../src/decisions/labels.ts';
import { OPTS, makeEvl } from './decisions/fixtures.ts';

const exec = promisify(execFile);
const repo = fileURLToPath(new URL('../../', import.meta.url));
const load = (path: string) => parse(readFileSync(join(repo, path), 'utf8')) as Record<string, any>;
const matches = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);

const component = load('deploy/monitoring/kustomization.yaml');
const operatorMonitor = load('deploy/monitoring/podmonitor-operator.yaml');
const logMonitor = load('deploy/monitoring/podmonitor-log-servers.yaml');
const deployment = load('deploy/deployment.yaml');
const logPod = desiredPod(makeEvl({ podTemplate: { labels: { team: 'payments' } } }), OPTS) as unknown as {
  metadata: { labels: Record<string, string> };
  spec: { containers: { name: string; ports: { name: string; containerPort: number }[] }[] };
};

describe('deploy/monitoring (kustomize Component)', () => {
  it('is a Component of two PodMonitors, a PrometheusRule and the Grafana dashboard ConfigMap', () => {
    expect(component).toMatchObject({ apiVersion: 'kustomize.config.k8s.io/v1alpha1', kind: 'Component' });
    expect(component.resources).toEqual(['podmonitor-operator.yaml', 'podmonitor-log-servers.yaml', 'prometheusrule.yaml']);
    expect(component.configMapGenerator).toEqual([
      { name: 'eventlog-grafana-dashboard', namespace: 'eventlog-system', files: ['eventlog.json=grafana-dashboard.json'], options: { disableNameSuffixHash: true, labels: { grafana_dashboard: '1' } } },
    ]);
  });

  it('renders next to deploy/ with kubectl kustomize (the overlay docs/monitoring.md shows)', async () => {
    const { stdout } = await exec('kubectl', ['kustomize', 'test/unit/monitoring/overlay'], { cwd: repo, maxBuffer: 32 << 20 });
    const objects = parseAllDocuments(stdout).map((d) => d.toJSON() as { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; data?: Record<string, string> });
    const monitoring = objects.filter((o) => o.apiVersion === 'monitoring.coreos.com/v1').map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`);
    expect(monitoring.sort()).toEqual(['PodMonitor/eventlog-system/eventlog-log-servers', 'PodMonitor/eventlog-system/eventlog-operator', 'PrometheusRule/eventlog-system/eventlog']);
    expect(objects.some((o) => o.kind === 'Deployment' && o.metadata.name === 'eventlog-operator')).toBe(true);
    const dashboard = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'eventlog-grafana-dashboard');
    expect(dashboard?.metadata).toMatchObject({ namespace: 'eventlog-system', labels: { grafana_dashboard: '1' } });
    expect(JSON.parse(dashboard!.data!['eventlog.json']!)).toEqual(load('deploy/monitoring/grafana-dashboard.json'));
  });

  it("the operator PodMonitor selects the Deployment's pods on its metrics port, keeps the EventLogs' namespace label and names the job eventlog-operator", () => {
    const template = deployment.spec.template;
    expect(matches(operatorMonitor.spec.selector.matchLabels, template.metadata.labels)).toBe(true);
    expect(operatorMonitor.spec.namespaceSelector).toBeUndefined(); // its own namespace: the operator's
    expect(operatorMonitor.metadata.namespace).toBe('eventlog-system');
    const [endpoint] = operatorMonitor.spec.podMetricsEndpoints;
    const port = template.spec.containers[0].ports.find((p: { name: string }) => p.name === endpoint.port);
    expect(port).toEqual({ name: 'metrics', containerPort: 8080 });
    expect(template.spec.containers[0].args).toContain(`--metrics-addr=:${port.containerPort}`);
    expect(endpoint).toMatchObject({ path: '/metrics', honorLabels: true });
    expect(operatorMonitor.spec.jobLabel).toBe(LABEL_NAME);
    expect(template.metadata.labels[LABEL_NAME]).toBe('eventlog-operator');
  });

  it('the log-server PodMonitor selects every log pod (whatever podTemplate.labels adds) on the server port, in every namespace, and labels series with the EventLog name', () => {
    expect(matches(logMonitor.spec.selector.matchLabels, logPod.metadata.labels)).toBe(true);
    expect(logMonitor.spec.namespaceSelector).toEqual({ any: true });
    const [endpoint] = logMonitor.spec.podMetricsEndpoints;
    const server = logPod.spec.containers.find((c) => c.ports?.some((p) => p.name === endpoint.port));
    expect(server?.ports.find((p) => p.name === endpoint.port)).toEqual({ name: PORT_NAME, containerPort: DEFAULT_PORT });
    expect(endpoint.path).toBe('/metrics');
    expect(endpoint.relabelings).toEqual([{ sourceLabels: [`__meta_kubernetes_pod_label_${LABEL_INSTANCE.replace(/[^a-zA-Z0-9]/g, '_')}`], targetLabel: 'name' }]);
    expect(logPod.metadata.labels[LABEL_INSTANCE]).toBe('orders');
    expect(logMonitor.spec.jobLabel).toBe(LABEL_NAME);
    expect(logPod.metadata.labels[LABEL_NAME]).toBe('eventlog');
    // Only the operator's log pods: the operator's own pods carry another name.
    expect(matches(logMonitor.spec.selector.matchLabels, deployment.spec.template.metadata.labels)).toBe(false);
  });

  it('the example NetworkPolicy admits scrapes of the same pods on the same port', () => {
    const np = load('deploy/monitoring/networkpolicy-allow-prometheus.yaml');
    expect(np.kind).toBe('NetworkPolicy');
    expect(np.metadata.namespace).toBeUndefined(); // applied with -n into each EventLog namespace
    expect(np.spec.podSelector.matchLabels).toEqual(logMonitor.spec.selector.matchLabels);
    expect(np.spec.ingress).toEqual([{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }], ports: [{ protocol: 'TCP', port: DEFAULT_PORT }] }]);
    expect(component.resources).not.toContain('networkpolicy-allow-prometheus.yaml');
  });
});
