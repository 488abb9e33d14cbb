/**
 * The alerts of deploy/monitoring/prometheusrule.yaml under Prometheus' own tools:
 * `promtool check rules` and `promtool test rules` (test/unit/monitoring/alerts.promtool.yaml,
 * a firing and a quiet case for every alert), and every metric the rules and the test
 * series name checked against the metrics our code registers (the operator's
 * EventLogMetrics, RuntimeMetrics and process metrics; the log server's createMetrics),
 * with the labels they match and group on. A renamed metric or label fails here.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { RecoveryOutcome } from '../../src/api/eventlog.ts';
import { CONTROLLER_NAME } from '../../src/operator/eventlog-controller.ts';
import { EventLogMetrics } from '../../src/operator/eventlog-metrics.ts';
import { RuntimeMetrics } from '../../src/runtime/metrics.ts';
import { createMetrics } from '../../src/server/metrics.ts';
import { TOOL_BUILD_TIMEOUT_MS, jsonLines, toolPath } from '../support/go-tools.ts';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const RULE = join(repo, 'deploy/monitoring/prometheusrule.yaml');
const PROMTOOL_TESTS = join(repo, 'test/unit/monitoring/alerts.promtool.yaml');

type Source = 'operator' | 'server';
/** The job each source is scraped as (the PodMonitors' jobLabel: the pods' app.kubernetes.io/name). */
const JOB: Record<Source, string> = { operator: 'eventlog-operator', server: 'eventlog' };
/** Labels Prometheus adds to every series of a PodMonitor target (and `name` from the log pods' relabeling). */
const TARGET_LABELS: Record<Source, string[]> = {
  operator: ['job', 'instance', 'namespace', 'pod', 'container', 'endpoint'],
  server: ['job', 'instance', 'namespace', 'pod', 'container', 'endpoint', 'name'],
};

/**
 * Metrics the rules use that the code does not register (yet). Empty: every metric a
 * rule names is registered by our processes; the test below keeps it that way.
 */
const PENDING: Record<string, { source: Source; labels: string[] }> = {};

/** Series Prometheus makes itself. */
const SYNTHETIC: Record<string, { source: Source; labels: string[] }> = {
  up: { source: 'operator', labels: [] },
};

/** Values our code gives these labels. */
const LABEL_VALUES: Record<string, string[]> = {
  outcome: Object.values(RecoveryOutcome),
  controller: [CONTROLLER_NAME],
  reason: ['storage_full'],
};

interface Known {
  source: Source;
  labels: string[];
  type?: string;
}

/** Every metric name our processes register, with its labels (histograms with their series suffixes). */
function registeredMetrics(): Map<string, Known> {
  const out = new Map<string, Known>();
  const add = (registry: Registry, source: Source) => {
    for (const m of registry.getMetricsAsArray() as unknown as { name: string; labelNames?: string[]; type?: string }[]) {
      const known = { source, labels: [...(m.labelNames ?? [])], type: m.type };
      out.set(m.name, known);
      if (m.type === 'histogram') {
        out.set(`${m.name}_bucket`, { ...known, labels: [...known.labels, 'le'] });
        out.set(`${m.name}_sum`, known);
        out.set(`${m.name}_count`, known);
      }
    }
  };
  // The operator's registry, as src/operator/main.ts and the Manager fill it.
  const operator = new Registry();
  collectDefaultMetrics({ register: operator });
  EventLogMetrics.for(operator);
  RuntimeMetrics.for(operator);
  add(operator, 'operator');
  // The log server's (its collect functions run only when scraped; nothing is scraped here).
  const server = createMetrics(
    () => {
      throw new Error('not scraped in this test');
    },
    () => 'ready',
  );
  add(server.registry, 'server');
  return out;
}

interface RuleSelectors {
  group: string;
  rule: string;
  selectors: { name: string; matchers: { label: string; op: string; value: string }[] }[];
  grouping: string[];
}


/** What is wrong with the selectors of `rules` (see the test names below). */
function selectorProblems(rules: RuleSelectors[], known: (name: string) => Known | undefined): string[] {
  const problems: string[] = [];
  for (const r of rules) {
    for (const s of r.selectors) {
      const k = known(s.name);
      if (!k) {
        problems.push(`${r.rule}: ${s.name} is not a metric our code registers`);
        continue;
      }
      const job = s.matchers.find((m) => m.label === 'job');
      if (job?.op !== '=' || job.value !== JOB[k.source]) problems.push(`${r.rule}: ${s.name} must select job="${JOB[k.source]}" (it comes from the ${k.source})`);
      for (const m of s.matchers) {
        if (!k.labels.includes(m.label) && !TARGET_LABELS[k.source].includes(m.label)) problems.push(`${r.rule}: ${s.name} has no label ${m.label}`);
        const values = LABEL_VALUES[m.label];
        if (values && m.op === '=' && !values.includes(m.value)) problems.push(`${r.rule}: ${m.label}="${m.value}" is not a value our code sets (${values.join(', ')})`);
      }
    }
    // by/on/without/ignoring labels exist on some series the rule reads.
    const available = new Set(
      r.selectors.flatMap((s) => {
        const k = known(s.name);
        return k ? [...k.labels, ...TARGET_LABELS[k.source]] : [];
      }),
    );
    for (const l of r.grouping) if (!available.has(l)) problems.push(`${r.rule}: groups on ${l}, which none of its series has`);
  }
  return problems;
}

function ruleSelectors(file: string): Promise<RuleSelectors[]> {
  return new Promise((resolve, reject) =>
    execFile(toolPath('rule-metrics'), [file], (error, stdout, stderr) => (error ? reject(new Error(`rule-metrics ${file}: ${stderr}`)) : resolve(jsonLines<RuleSelectors>(stdout)))),
  );
}

let tmp: string;
const promtool = (...args: string[]) =>
  new Promise<{ code: number; out: string }>((resolve) => {
    execFile(toolPath('promtool'), args, { cwd: tmp, timeout: 60_000 }, (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, out: `${stdout}${stderr}` }));
  });
const writeRules = (groups: unknown, file = 'rules.yaml') => writeFileSync(join(tmp, file), stringify({ groups }, { lineWidth: 0 }));

const prometheusRule = parse(readFileSync(RULE, 'utf8')) as { kind: string; spec: { groups: { name: string; rules: { alert: string; expr: string; for?: string; labels: Record<string, string>; annotations: Record<string, string> }[] }[] } };
const alerts = prometheusRule.spec.groups.flatMap((g) => g.rules);
const tests = parse(readFileSync(PROMTOOL_TESTS, 'utf8')) as {
  tests: { name: string; input_series: { series: string }[]; alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
};

beforeAll(() => {
  toolPath('promtool');
  toolPath('rule-metrics');
  tmp = mkdtempSync(join(tmpdir(), 'eventlog-rules-'));
  writeRules(prometheusRule.spec.groups);
  copyFileSync(PROMTOOL_TESTS, join(tmp, 'alerts.promtool.yaml'));
}, TOOL_BUILD_TIMEOUT_MS);
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('promtool', () => {
  it('check rules: every rule parses and passes the linter', async () => {
    const r = await promtool('check', 'rules', '--lint=all', '--lint-fatal', 'rules.yaml');
    expect(r.out).toContain(`SUCCESS: ${alerts.length} rules found`);
    expect(r.code, r.out).toBe(0);
  });

  it('test rules: every case of alerts.promtool.yaml passes', async () => {
    const r = await promtool('test', 'rules', 'alerts.promtool.yaml');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('SUCCESS');
  });

  it('every alert has a case where it fires and one where it stays quiet', () => {
    const cases = tests.tests.flatMap((t) => t.alert_rule_test);
    for (const a of alerts) {
      expect(cases.some((c) => c.alertname === a.alert && c.exp_alerts.length > 0), `${a.alert} fires somewhere`).toBe(true);
      expect(cases.some((c) => c.alertname === a.alert && c.exp_alerts.length === 0), `${a.alert} stays quiet somewhere`).toBe(true);
    }
    expect(new Set(cases.map((c) => c.alertname))).toEqual(new Set(alerts.map((a) => a.alert)));
  });

  it('the cases can fail: NotReady without its `unless Stalled` also fires for the Stalled EventLog', async () => {
    const broken = structuredClone(prometheusRule.spec.groups);
    const notReady = broken.flatMap((g) => g.rules).find((r) => r.alert === 'EventLogNotReady')!;
    notReady.expr = notReady.expr.split('unless')[0]!;
    writeRules(broken);
    try {
      const r = await promtool('test', 'rules', 'alerts.promtool.yaml');
      expect(r.code).not.toBe(0);
      expect(r.out).toMatch(/alertname: EventLogNotReady/);
      expect(r.out).toContain('name="billing"');
    } finally {
      writeRules(prometheusRule.spec.groups);
    }
  });
});

describe('the rules name only metrics and labels our code exports', () => {
  const registered = registeredMetrics();
  const known = (name: string): Known | undefined => registered.get(name) ?? PENDING[name] ?? SYNTHETIC[name];
  let rules: RuleSelectors[];
  beforeAll(async () => {
    rules = await ruleSelectors(join(tmp, 'rules.yaml'));
  });

  it('rule-metrics saw every alert, each with at least one selector', () => {
    expect(rules.map((r) => r.rule)).toEqual(alerts.map((a) => a.alert));
    for (const r of rules) expect(r.selectors.length, r.rule).toBeGreaterThan(0);
  });

  it('every selected metric is registered, scraped under its job, matched on labels it has, with values our code uses', () => {
    expect(selectorProblems(rules, known)).toEqual([]);
  });

  it('every series of the promtool cases is a registered metric with its real labels', () => {
    const problems: string[] = [];
    for (const t of tests.tests) {
      for (const { series } of t.input_series) {
        const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\}$/.exec(series);
        if (!m) {
          problems.push(`${t.name}: cannot read ${series}`);
          continue;
        }
        const k = known(m[1]!);
        if (!k) {
          problems.push(`${t.name}: ${m[1]} is not a metric our code registers`);
          continue;
        }
        const labels = Object.fromEntries([...m[2]!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!]));
        const job = labels.job;
        // Other operators' series (a foreign job) only need a real name.
        if (job !== JOB[k.source]) {
          if (job === JOB.operator || job === JOB.server) problems.push(`${t.name}: ${m[1]} comes from the ${k.source}, not job="${job}"`);
          continue;
        }
        for (const l of Object.keys(labels)) if (!k.labels.includes(l) && !TARGET_LABELS[k.source].includes(l)) problems.push(`${t.name}: ${m[1]} has no label ${l}`);
        for (const l of k.labels) if (!(l in labels) && l !== 'le') problems.push(`${t.name}: ${m[1]} lacks its label ${l}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('the allow-list holds only metrics not registered yet (drop entries once the code registers them)', () => {
    expect(Object.keys(PENDING).filter((n) => registered.has(n))).toEqual([]);
  });

  it('the check can fail: an unknown metric or label is reported', () => {
    expect(known('eventlog_storage_used_precent')).toBeUndefined();
    expect(known('eventlog_recoveries_total')?.labels).toEqual(['outcome']);
    expect(known('eventlog_ready')?.labels).toEqual(['namespace', 'name']);
    expect(known('controller_runtime_reconcile_errors_total')?.labels).toEqual(['controller']);
    expect(known('eventlog_fsync_duration_seconds_bucket')).toMatchObject({ source: 'server', labels: ['le'] });
  });
});

describe('alerts carry what on-call needs', () => {
  it.each(alerts.map((a) => [a.alert, a] as const))('%s: severity, summary, description', (_name, a) => {
    expect(['critical', 'warning']).toContain(a.labels.severity);
    expect(a.annotations.summary?.length).toBeGreaterThan(10);
    expect(a.annotations.description?.length).toBeGreaterThan(40);
  });

  it('docs/monitoring.md has a section for every alert', () => {
    const doc = readFileSync(join(repo, 'docs/monitoring.md'), 'utf8');
    for (const a of alerts) expect(doc, a.alert).toMatch(new RegExp(`^### ${a.alert}$`, 'm'));
  });
});

describe('the Grafana dashboard (deploy/monitoring/grafana-dashboard.json) queries the same metrics', () => {
  const dashboard = JSON.parse(readFileSync(join(repo, 'deploy/monitoring/grafana-dashboard.json'), 'utf8')) as {
    uid: string;
    templating: { list: { type: string; name: string }[] };
    panels: { id: number; title: string; datasource: { uid: string }; targets: { refId: string; expr: string; datasource: { uid: string } }[] }[];
  };
  const queries = dashboard.panels.flatMap((p) => p.targets.map((t) => ({ record: `dashboard:panel_${p.id}_${t.refId}`, title: p.title, expr: t.expr })));
  const registered = registeredMetrics();
  const known = (name: string): Known | undefined => registered.get(name) ?? PENDING[name] ?? SYNTHETIC[name];
  let rules: RuleSelectors[];
  beforeAll(async () => {
    // Each query as a recording rule, so promtool and rule-metrics read them like the alerts.
    writeRules([{ name: 'dashboard', rules: queries.map((q) => ({ record: q.record, expr: q.expr })) }], 'dashboard-rules.yaml');
    rules = await ruleSelectors(join(tmp, 'dashboard-rules.yaml'));
  });

  it('every panel has queries, unique ids, and the Prometheus data source variable', () => {
    expect(dashboard.templating.list).toContainEqual(expect.objectContaining({ type: 'datasource', name: 'datasource' }));
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
    for (const p of dashboard.panels) {
      expect(p.targets.length, p.title).toBeGreaterThan(0);
      expect(p.datasource.uid).toBe('${datasource}');
      for (const t of p.targets) expect(t.datasource.uid).toBe('${datasource}');
    }
  });

  it('every query parses (promtool check rules)', async () => {
    const r = await promtool('check', 'rules', 'dashboard-rules.yaml');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain(`SUCCESS: ${queries.length} rules found`);
  });

  it('every query names registered metrics under their job, with their labels', () => {
    expect(rules.map((r) => r.rule)).toEqual(queries.map((q) => q.record));
    expect(selectorProblems(rules, known)).toEqual([]);
  });
});
